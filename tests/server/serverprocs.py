"""Helpers for tests that run ``python -m server`` as a child process and drive it with traffic.

Imported by module name (pytest puts ``tests/server`` on ``sys.path``), like ``eager_reference``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
NO_RETRIES = [("grpc.enable_retries", 0)]  # a retried call would hide the failure these tests look for


@dataclass
class Server:
    """A running server process and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def health(target: str, service: str = "", timeout: float = 2.0) -> str:
    """``SERVING`` / ``NOT_SERVING`` of ``service`` on a fresh connection (raises grpc.RpcError)."""
    with grpc.insecure_channel(target, options=NO_RETRIES) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def wait_serving(server: Server, timeout_s: float = 120.0) -> None:
    """Waits until health "" reads SERVING; fails with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        with contextlib.suppress(grpc.RpcError):
            if health(server.target) == "SERVING":
                return
        time.sleep(0.1)
    raise AssertionError(f"server not SERVING after {timeout_s:.0f}s:\n{server.log()[-4000:]}")


@contextlib.contextmanager
def running_server(
    command: Sequence[str], port: int, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Starts ``command`` (a server on 127.0.0.1:``port``), waits for SERVING, always stops it."""
    log_path = log_dir / f"server-{port}.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(command), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
    server = Server(process, port, log_path)
    try:
        wait_serving(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def server_command(repository: Path, port: int, *args: str) -> list[str]:
    """``python -m server`` on 127.0.0.1:``port`` without polling, plus ``args``."""
    return [
        sys.executable,
        "-m",
        "server",
        "--repository",
        str(repository),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--poll-interval-s",
        "0",
        "--log-level",
        "INFO",
        *args,
    ]


@dataclass
class Outcome:
    """One call: when it was sent (monotonic seconds) and its status code name."""

    sent: float
    code: str


@dataclass
class Load:
    """Closed-loop Predict traffic over several connections, recording every outcome."""

    target: str
    connections: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._loop(i)) for i in range(self.connections)]

    async def _loop(self, index: int) -> None:
        # A distinct channel argument gives each loop its own TCP connection (SO_REUSEPORT spreads connections).
        options = [*NO_RETRIES, ("grpc.primary_user_agent", f"load-{index}")]
        async with grpc.aio.insecure_channel(self.target, options=options) as channel:
            stub = service_pb2_grpc.RecommenderServiceStub(channel)
            request = pb.PredictRequest(model=pb.ModelSpec(name="mf"), user_ids=["u0"], item_ids=["i1"])
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    await stub.Predict(request, timeout=5)
                    code = "OK"
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                self.outcomes.append(Outcome(sent, code))
                await asyncio.sleep(0.005)

    def ok(self) -> int:
        return sum(outcome.code == "OK" for outcome in self.outcomes)

    async def wait_ok(self, count: int, timeout_s: float = 60.0) -> None:
        """Waits until ``count`` calls succeeded."""
        deadline = time.monotonic() + timeout_s
        while self.ok() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.ok()} calls succeeded: {self.outcomes[-5:]}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
