"""Session fixtures shared by every test package.

- ``tiny_repository``: a model repository holding one tiny trained and exported version of each
  architecture (``mf``, ``dense``, ``lstm``, ``gcn``), built once per session in a few seconds.
- ``tiny_checkpoints``: the trainer checkpoints those versions were exported from.
- ``free_port``: a port nobody listens on, on 127.0.0.1.
- ``served``: a real server of ``tiny_repository`` on 127.0.0.1, parametrised over both backends,
  shared by the session. It is a :class:`ServerThread`: the server runs its own event loop in a
  background thread, so sync and async tests can both call it, and it is always stopped at teardown.
- ``start_server(repository, **config_overrides)``: starts a private server for one test
  (stopped at the test's teardown); ``copy_repository(destination, models)`` gives a test its own
  copy of ``tiny_repository`` to change.

Training and exporting happen here, in tests; the server and client never import either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

ARCHITECTURES = ("mf", "dense", "lstm", "gcn")
BACKENDS = ("onnx", "torchscript")
_LOGGER = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Architecture -> checkpoint of a tiny model trained on synthetic data (seed 0)."""
    from trainer import train_tiny_checkpoint

    run = tmp_path_factory.mktemp("tiny-run")
    with warnings.catch_warnings(), _one_torch_thread():
        warnings.simplefilter("ignore")
        return {arch: train_tiny_checkpoint(arch, run, seed=0) for arch in ARCHITECTURES}


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Tiny models train 4-6x faster on one thread when other processes share the 2 CPU cores
    (OpenMP workers spin-wait for each other); measured 3.7-5.6 s vs 22-25 s for all four."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoints: dict[str, Path]) -> Path:
    """A model repository with version 1 of each architecture, named after it. Treat as read-only."""
    from exporter import export_checkpoint

    repository = tmp_path_factory.mktemp("tiny-repository")
    with warnings.catch_warnings(), _one_torch_thread():
        warnings.simplefilter("ignore")
        for checkpoint in tiny_checkpoints.values():
            export_checkpoint(checkpoint, repository)
    return repository


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """A TorchScript server sets torch's process-wide thread count; later tests get theirs back."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    return _free_port()


@pytest.fixture
def copy_repository(tiny_repository: Path) -> Callable[..., Path]:
    """``copy(destination, models=ARCHITECTURES) -> destination``: a private, changeable repository copy."""

    def copy(destination: Path, models: tuple[str, ...] = ARCHITECTURES) -> Path:
        destination.mkdir(parents=True, exist_ok=True)
        for name in models:
            shutil.copytree(tiny_repository / name, destination / name)
        return destination

    return copy


class ServerThread:
    """A ``RunningServer`` on its own event loop in a daemon thread.

    Args:
        config: The server config (use port 0 or ``free_port()``).
        start_timeout: Seconds to wait for the server to load the repository.
        server_kwargs: Extra keyword arguments of ``RunningServer`` (interceptors, credentials).
    """

    def __init__(self, config: Any, start_timeout: float = 120.0, **server_kwargs: Any) -> None:
        self.config = config
        self._start_timeout = start_timeout
        self._server_kwargs = server_kwargs
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)
        self.server: Any = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        from server import RunningServer

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = RunningServer(self.config, **self._server_kwargs)
        try:
            await self.server.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await self.server.stop(grace_s=1.0)

    def start(self) -> ServerThread:
        """Starts the server and waits until the repository is loaded.

        Raises:
            RuntimeError: the server failed to start, or did not start in time.
        """
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise RuntimeError(f"test server did not start within {self._start_timeout}s")
        if self._error is not None:
            raise RuntimeError(f"test server failed to start: {self._error!r}") from self._error
        return self

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        """Runs a coroutine on the server's loop (e.g. ``registry.refresh()``) and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def target(self) -> str:
        """``127.0.0.1:<port>``."""
        return self.server.target

    @property
    def metrics(self) -> Any:
        """The server's ``Metrics``."""
        return self.server.metrics

    def stop(self) -> None:
        """Stops the server (grace 1 s) and joins its thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._thread.is_alive():
            _LOGGER.error("test server thread did not stop within 30s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _server_config(repository: Path, **overrides: Any) -> Any:
    """A ServerConfig for tests: 127.0.0.1, a free port, no polling, short grace, small batching delay."""
    from server import ServerConfig

    settings: dict[str, Any] = {
        "repository": repository,
        "host": "127.0.0.1",
        "port": 0,
        "poll_interval_s": 0.0,
        "grace_s": 2.0,
        "max_queue_delay_us": 2000,
    }
    settings.update(overrides)
    return ServerConfig(**settings)


@pytest.fixture(scope="session", params=BACKENDS)
def served(request: pytest.FixtureRequest, tiny_repository: Path) -> Iterator[ServerThread]:
    """A server of ``tiny_repository`` on each backend in turn, shared by the session."""
    with ServerThread(_server_config(tiny_repository, backend=request.param)) as thread:
        yield thread


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerThread]]:
    """``start(repository, **config_overrides) -> ServerThread``, stopped when the test ends."""
    started: list[ServerThread] = []

    def start(repository: Path, server_kwargs: dict[str, Any] | None = None, **overrides: Any) -> ServerThread:
        thread = ServerThread(_server_config(repository, **overrides), **(server_kwargs or {}))
        started.append(thread)
        return thread.start()

    try:
        yield start
    finally:
        for thread in started:
            thread.stop()
