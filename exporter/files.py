"""Small file helpers shared by the writers: content hashes and flushing a folder to disk.

The hash is the contract's (``protos.rules.file_sha256``), re-exported here under the name the
writers use, so that what the exporter records is by construction what the server checks.
"""

from __future__ import annotations

import os
from pathlib import Path

from protos.rules import file_sha256 as sha256_file

__all__ = ["fsync_dir", "fsync_tree", "sha256_file"]


def fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` (not recursive) and the folder entry itself to disk.

    Done before the staging folder is renamed into place: the rename is atomic in the namespace, but
    without the flush a power cut right after it could leave a version folder of empty files.
    """
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
