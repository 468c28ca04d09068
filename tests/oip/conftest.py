"""Fixtures of the OIP tests: a tritonclient driver process, the tiny models' ids, recsys.v1 reference calls.

``triton``: a :class:`TritonDriver` (``triton_driver.py`` in a subprocess: tritonclient cannot share a
process with our ``inference`` stubs), stopped at the end of the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.inference import open_inference_grpc_pb2_grpc as oip_grpc

DRIVER = Path(__file__).with_name("triton_driver.py")


class TritonDriver:
    """Sends requests to ``triton_driver.py`` and returns its answers."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def call(self, target: str, op: str, **fields: Any) -> dict[str, Any]:
        """One request; the answer is ``{"ok": True, "result": ...}`` or ``{"ok": False, "code", "message"}``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"target": target, "op": op, **fields}) + "\n")
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"triton driver exited with {self._process.wait(10)}; see its stderr above")
        return json.loads(line)

    def result(self, target: str, op: str, **fields: Any) -> Any:
        """The result of a request that must succeed."""
        answer = self.call(target, op, **fields)
        assert answer["ok"], answer
        return answer["result"]

    def error(self, target: str, op: str, **fields: Any) -> tuple[str, str]:
        """``(code, message)`` of a request that must fail."""
        answer = self.call(target, op, **fields)
        assert not answer["ok"], answer
        return answer["code"], answer["message"]

    def close(self) -> None:
        """Ends the driver (closing its stdin), killing it if it does not exit in time."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)


@pytest.fixture(scope="session")
def triton() -> Iterator[TritonDriver]:
    driver = TritonDriver()
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def oip_stub(served: Any) -> Iterator[oip_grpc.GRPCInferenceServiceStub]:
    """A raw OIP stub on the shared server (in this process: our own generated stubs)."""
    with grpc.insecure_channel(served.target) as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)
