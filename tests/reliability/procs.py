"""The real server as a child process: start it on a free 127.0.0.1 port, watch it, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line: is the process a zombie?")


@dataclass
class ServerProcess:
    """A running ``python -m server``: its process, gRPC port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self, service: str = "", timeout: float = 2.0) -> int:
        """The health status of ``service`` (raises grpc.RpcError when the server does not answer)."""
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status

    def wait_listening(self, timeout_s: float = 60.0) -> None:
        """Waits until the port accepts TCP connections (for servers whose health needs TLS or a token).

        Raises:
            RuntimeError: the server exited or did not listen in time; the message holds its log.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode} while starting:\n{self.log()[-4000:]}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not listening after {timeout_s:.0f} s:\n{self.log()[-4000:]}")

    def wait_serving(self, services: Sequence[str] = ("",), timeout_s: float = 60.0) -> None:
        """Waits until each health service (``""`` overall, or a model name) is SERVING.

        Raises:
            RuntimeError: the server exited or did not get there in time; the message holds its log.
        """
        deadline = time.monotonic() + timeout_s
        pending = list(services)
        while pending and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode} while starting:\n{self.log()[-4000:]}"
                )
            with contextlib.suppress(grpc.RpcError):
                while pending and self.health(pending[0]) == health_pb2.HealthCheckResponse.SERVING:
                    pending.pop(0)
            if pending:
                time.sleep(0.1)
        if pending:
            raise RuntimeError(f"health of {pending} not SERVING after {timeout_s:.0f} s:\n{self.log()[-4000:]}")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """Sends SIGTERM and waits; kills after ``timeout_s``. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


@contextlib.contextmanager
def server_process(
    repository: Path,
    log_dir: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    wait_for: Sequence[str] | None = None,
) -> Iterator[ServerProcess]:
    """Runs the server on a free 127.0.0.1 port until the block ends, then stops it (always).

    Args:
        repository: Model repository to serve.
        log_dir: Where the server's stdout and stderr go (``server-<port>.log``).
        args: Extra command-line flags.
        env: Extra environment variables.
        wait_for: Health services that must be SERVING before the block runs; by default every model
            folder of the repository; ``()`` only waits until the port accepts connections.
    """
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, "-m", "server", "--repository", str(repository), "--host", "127.0.0.1"]
    command += ["--port", str(port), *args]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
    handle = ServerProcess(process, port, log_path)
    try:
        if wait_for is None:
            wait_for = sorted(path.name for path in repository.iterdir() if path.is_dir())
        if wait_for:
            handle.wait_serving(wait_for)
        else:
            handle.wait_listening()
        yield handle
    finally:
        handle.terminate()
