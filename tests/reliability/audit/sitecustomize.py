"""Logs the file-system events of a server started by the path-safety test.

Put on PYTHONPATH with RECSYS_TEST_AUDIT_LOG=<file> set, Python imports it at start-up; it adds an
audit hook (PEP 578) that appends ``time<TAB>event<TAB>path`` for every file opened or folder listed.
Without the variable it does nothing.
"""

import os
import sys
import time

_EVENTS = {"open", "os.listdir", "os.scandir", "glob.glob", "os.remove", "os.rename", "os.mkdir", "os.chdir"}
_LOG_PATH = os.environ.get("RECSYS_TEST_AUDIT_LOG")

if _LOG_PATH:
    _log = open(_LOG_PATH, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process lifetime

    def _hook(event: str, args: tuple) -> None:
        if event in _EVENTS and args:
            target = args[0]
            path = os.fsdecode(target) if isinstance(target, (str, bytes, os.PathLike)) else repr(target)
            _log.write(f"{time.time():.6f}\t{event}\t{path}\n")

    sys.addaudithook(_hook)
