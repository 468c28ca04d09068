"""Fixtures of the load tester's tests: a fake recsys server on a free loopback port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from loadtest.fake_server import FakeServerConfig, start_fake_server


class ServerThread:
    """A fake server on its own event loop in a background thread, usable from sync and async tests."""

    def __init__(self, config: FakeServerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(config,), daemon=True)
        self._server = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"fake server did not start: {self._error}")

    def _run(self, config: FakeServerConfig) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._server, self.port = self.loop.run_until_complete(start_fake_server(config, "127.0.0.1", 0))
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., ServerThread]]:
    """Start fake servers with ``fake_server(**FakeServerConfig fields)``; all are stopped at teardown."""
    started: list[ServerThread] = []

    def start(**fields: object) -> ServerThread:
        server = ServerThread(FakeServerConfig(**fields))
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
