"""``--processes N``: N server processes on one port, supervised by the parent.

Python serves one event loop per process; a host with more cores than one loop can fill runs
several. Each child is a whole :func:`server.app.serve` (own event loop, batchers, runtime
sessions and health servicer, every child loading the same repository, so health answers the
same from each) bound to the same port with SO_REUSEPORT: the kernel spreads new connections
over the children. The parent:

* restarts a child that exits on its own, after a back-off that doubles with each quick crash,
  and gives up (stopping the others, exit 1) after ``RestartPolicy.max_crashes`` quick crashes in a
  row, so that a child that always crashes does not spin;
* on SIGTERM or SIGINT forwards SIGTERM to every child once; each drains (``drain_delay_s``) and
  stops (``grace_s``) on its own, and the parent waits for all of them;
* owns the Prometheus multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``: created before the first
  child, removed at exit) and serves ``/metrics`` on ``metrics_port``, summing the children's files.

Port 0 is refused with more than one process (``ServerConfig.validate``): each child would pick its
own port. Children are started with the ``spawn`` method (a fresh interpreter, no inherited gRPC or
ONNX Runtime state, which do not survive ``fork``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from server.config import ServerConfig

_LOGGER = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_FORMAT = "%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s"


@dataclass(frozen=True)
class RestartPolicy:
    """How the parent restarts children that exit on their own.

    Attributes:
        initial_backoff_s: Wait before the first restart after a quick crash, in seconds.
        max_backoff_s: Longest wait between two restarts, in seconds.
        backoff_multiplier: Factor between the waits of two quick crashes in a row.
        healthy_after_s: A child that ran at least this long before exiting starts a new count of
            quick crashes (a crash after an hour of serving is not a crash loop).
        max_crashes: Quick crashes in a row of one child after which the parent gives up.
        stop_margin_s: Seconds a child gets beyond ``drain_delay_s + grace_s`` to exit on SIGTERM
            before it is killed.
    """

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    backoff_multiplier: float = 2.0
    healthy_after_s: float = 60.0
    max_crashes: int = 5
    stop_margin_s: float = 15.0


class CrashBackoff:
    """Back-off of one child slot: the wait before its next restart, or None to give up."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self.crashes = 0

    def next_delay(self, lived_s: float) -> float | None:
        """Counts one exit of a child that ran ``lived_s`` seconds; returns the wait before restarting it.

        Returns:
            Seconds to wait, or None once ``max_crashes`` quick crashes happened in a row.
        """
        policy = self._policy
        if lived_s >= policy.healthy_after_s:
            self.crashes = 0
        self.crashes += 1
        if self.crashes > policy.max_crashes:
            return None
        return min(policy.max_backoff_s, policy.initial_backoff_s * policy.backoff_multiplier ** (self.crashes - 1))


def _child_main(config: ServerConfig, log_level: str, index: int) -> None:
    """Body of one child process: a whole server that stops on SIGTERM (the parent forwards Ctrl-C)."""
    import asyncio

    from server.app import serve

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    _LOGGER.info("child %d of %d starting (pid %d)", index, config.processes, os.getpid())
    asyncio.run(serve(config, signals=(signal.SIGTERM,)))


@dataclass
class _Slot:
    index: int
    backoff: CrashBackoff
    process: BaseProcess | None = None
    started_at: float = 0.0
    restart_at: float | None = None


class Supervisor:
    """Starts, watches and stops the children of ``--processes N``.

    Args:
        config: The server's config (``processes`` above 1, a fixed port).
        log_level: Logging level of the children.
        policy: When to restart crashed children.
    """

    def __init__(self, config: ServerConfig, log_level: str = "INFO", policy: RestartPolicy | None = None) -> None:
        self.config = config
        self._child_config = config.replace(metrics_port=0)  # the parent serves /metrics for all
        self._log_level = log_level
        self._policy = policy or RestartPolicy()
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i, CrashBackoff(self._policy)) for i in range(config.processes)]
        self._stop = threading.Event()
        self.restarts = 0

    def request_stop(self, *_: object) -> None:
        """Starts the shutdown (a signal handler; also for tests)."""
        self._stop.set()

    def run(self) -> int:
        """Runs the children until SIGTERM/SIGINT or a crash loop; returns the exit status (0 or 1).

        Raises:
            FileNotFoundError: the repository folder does not exist.
            OSError: the port is taken by another program.
        """
        if not self.config.repository.is_dir():
            raise FileNotFoundError(f"model repository {self.config.repository} is not a folder; pass --repository")
        _check_port_free(self.config.host, self.config.port)
        previous = {signum: signal.signal(signum, self.request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            with _multiprocess_dir() as metrics_dir:
                _LOGGER.info("metrics files in %s", metrics_dir)
                http = self._serve_metrics(metrics_dir)
                try:
                    return self._supervise(metrics_dir)
                finally:
                    if http is not None:
                        http.shutdown()
                        http.server_close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _supervise(self, metrics_dir: Path) -> int:
        for slot in self._slots:
            self._start(slot)
        status = 0
        while not self._stop.wait(0.1):
            if not self._watch(metrics_dir):
                status = 1
                break
        self._stop_children()
        _LOGGER.info("all %d server processes stopped", len(self._slots))
        return status

    def _watch(self, metrics_dir: Path) -> bool:
        """Restarts exited children when their back-off is over; False when one is given up."""
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and not process.is_alive():
                _mark_dead(process.pid, metrics_dir)
                lived = now - slot.started_at
                delay = slot.backoff.next_delay(lived)
                if delay is None:
                    _LOGGER.error(
                        "server process %d (pid %s) crashed %d times in a row (last exit code %s); giving up: "
                        "its log above says why; stopping the others",
                        slot.index,
                        process.pid,
                        slot.backoff.crashes - 1,
                        process.exitcode,
                    )
                    return False
                _LOGGER.warning(
                    "server process %d (pid %s) exited with %s after %.1fs; restarting it in %.1fs",
                    slot.index,
                    process.pid,
                    process.exitcode,
                    lived,
                    delay,
                )
                slot.process, slot.restart_at = None, now + delay
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                self.restarts += 1
                self._start(slot)
        return True

    def _start(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=_child_main,
            args=(self._child_config, self._log_level, slot.index),
            name=f"recsys-serve-{slot.index}",
        )
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        _LOGGER.info("started server process %d (pid %d) on port %d", slot.index, process.pid, self.config.port)

    def _stop_children(self) -> None:
        running = [slot.process for slot in self._slots if slot.process is not None and slot.process.is_alive()]
        _LOGGER.info(
            "stopping %d server processes: each drains %.1fs, then finishes calls within %.1fs",
            len(running),
            self.config.drain_delay_s,
            self.config.grace_s,
        )
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_delay_s + self.config.grace_s + self._policy.stop_margin_s
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                _LOGGER.error("server process pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.join(10)
            elif process.exitcode != 0:
                _LOGGER.warning("server process pid %d exited with %s while stopping", process.pid, process.exitcode)

    def _serve_metrics(self, metrics_dir: Path) -> WSGIServer | None:
        if not self.config.metrics_port:
            return None
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(metrics_dir))
        registry.register(_RestartCounter(self))
        server, _thread = start_http_server(self.config.metrics_port, addr=self.config.host, registry=registry)
        _LOGGER.info(
            "metrics of %d processes on http://%s:%d/metrics", len(self._slots), self.config.host, server.server_port
        )
        return server


class _RestartCounter:
    """``recsys_process_restarts_total``: children the supervisor restarted after they exited on their own."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily(
            "recsys_process_restarts",
            "Server processes restarted by the supervisor after exiting on their own.",
            value=self._supervisor.restarts,
        )


@contextlib.contextmanager
def _multiprocess_dir() -> Iterator[Path]:
    """A fresh PROMETHEUS_MULTIPROC_DIR, in this process's environment (children inherit it), then removed."""
    path = Path(tempfile.mkdtemp(prefix="recsys-metrics-"))
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def _mark_dead(pid: int | None, metrics_dir: Path) -> None:
    """Drops a dead child's live gauges (its counters stay: totals must not go down)."""
    if pid is None:
        return
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, str(metrics_dir))


def _check_port_free(host: str, port: int) -> None:
    """Fails at once when another program holds the port (the children would crash-loop on it).

    Raises:
        OSError: the port cannot be bound; the message says which and what to do.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no conflict
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            raise OSError(
                f"could not listen on {host}:{port} ({error.strerror}): is the port in use? pick another --port"
            ) from None


def run(config: ServerConfig, log_level: str) -> int:
    """Entry point of ``recsys-serve --processes N`` (N > 1): supervises until stopped; returns the exit status."""
    return Supervisor(config, log_level).run()
