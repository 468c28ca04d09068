"""The registry's state machine with a stub loader: loads outside the lock, drains woken by the last call.

The stub loader blocks on a ``threading.Event`` per version, so each test decides when a load ends and
asserts states and order; no test depends on how fast the machine is (timeouts are only a safety net
against a hang, far longer than any step takes).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.errors import ModelLoadError, ModelNotFound, ModelNotReady
from server.metrics import Metrics
from server.registry import LOADING, READY, UNAVAILABLE, UNLOADING, ModelRegistry
from server.repository import VersionFolder

SAFETY_S = 30.0  # only against a hang; every wait below ends on an event long before


@dataclass
class FakeModel:
    """What the registry touches of a ServedModel."""

    name: str
    version: int
    inflight: int = 0
    closed: bool = False
    batchers: dict = field(default_factory=dict)
    config: object = None

    @property
    def label(self) -> str:
        return f"{self.name!r} v{self.version}"

    async def close(self) -> None:
        self.closed = True


class StubLoader:
    """Loads instantly, or, for a gated version, when the test opens its gate; can fail a version."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.gates: dict[tuple[str, int], threading.Event] = {}
        self.broken: set[tuple[str, int]] = set()
        self.models: dict[tuple[str, int], FakeModel] = {}
        self._started: dict[tuple[str, int], threading.Event] = {}

    async def started(self, name: str, version: int) -> None:
        """Returns once the load of ``name`` v``version`` has begun in its loader thread."""
        event = self._started.setdefault((name, version), threading.Event())
        assert await asyncio.to_thread(event.wait, SAFETY_S), f"{name} v{version} never began loading"

    def gate(self, name: str, version: int) -> threading.Event:
        return self.gates.setdefault((name, version), threading.Event())

    def __call__(self, folder: VersionFolder, config: ServerConfig, executor, observers) -> FakeModel:
        key = (folder.name, folder.version)
        self.calls.append(key)
        self._started.setdefault(key, threading.Event()).set()
        if key in self.gates and not self.gates[key].wait(SAFETY_S):
            raise RuntimeError(f"test never opened the gate of {key}")
        if key in self.broken:
            raise ModelLoadError("predict.onnx: sha256 mismatch")
        self.models[key] = FakeModel(*key)
        return self.models[key]


class Changes:
    """The registry's ``on_change``: lets a test wait for a state, woken by each change."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(SAFETY_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def publish(repository: Path, name: str, version: int) -> None:
    folder = repository / name / str(version)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # the stub loader never reads it


@pytest.fixture
def pool():
    executor = ThreadPoolExecutor(1)
    yield executor
    executor.shutdown(wait=False)


@pytest.fixture
def loader() -> StubLoader:
    return StubLoader()


@pytest.fixture
def make_registry(tmp_path, pool, loader):
    made: list[ModelRegistry] = []
    changes = Changes()

    def make(**overrides) -> tuple[ModelRegistry, Changes]:
        config = ServerConfig(repository=tmp_path, poll_interval_s=0, grace_s=3600, **overrides)
        registry = ModelRegistry(config, pool, Metrics(), on_change=changes, load=loader)
        made.append(registry)
        return registry, changes

    yield make
    for gate in loader.gates.values():
        gate.set()  # a failed test must not leave a loader thread blocked


def state(registry: ModelRegistry, name: str, version: int) -> int:
    return registry.record(name, version).state


def served(registry: ModelRegistry, name: str) -> int:
    """The version a call naming version 0 runs on (acquired and released at once)."""
    model = registry.acquire(name)
    registry.release(model)
    return model.version


async def test_a_slow_load_blocks_neither_another_model_nor_the_next_scan(tmp_path, make_registry, loader):
    publish(tmp_path, "slow", 1)
    publish(tmp_path, "fast", 1)
    slow_gate = loader.gate("slow", 1)
    registry, changes = make_registry()
    await registry.rescan()
    await changes.until(lambda: state(registry, "fast", 1) == READY)
    assert state(registry, "slow", 1) == LOADING
    assert served(registry, "fast") == 1
    with pytest.raises(ModelNotReady, match="no ready version"):
        registry.acquire("slow")

    publish(tmp_path, "fast", 2)
    await registry.rescan()  # the lock is free although slow v1 still loads
    await changes.until(lambda: state(registry, "fast", 2) == READY)
    assert served(registry, "fast") == 2
    assert state(registry, "slow", 1) == LOADING

    slow_gate.set()
    await changes.until(lambda: state(registry, "slow", 1) == READY)
    assert served(registry, "slow") == 1
    assert sorted(loader.calls) == [("fast", 1), ("fast", 2), ("slow", 1)], "a version was loaded twice"
    await registry.close()


async def test_concurrent_scans_load_a_version_once(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    gate = loader.gate("mf", 1)
    registry, _ = make_registry()
    refreshing = asyncio.ensure_future(registry.refresh())
    await asyncio.gather(registry.rescan(), registry.rescan())
    await loader.started("mf", 1)
    assert not refreshing.done(), "refresh returned before the load it started ended"
    gate.set()
    await asyncio.wait_for(refreshing, SAFETY_S)
    assert state(registry, "mf", 1) == READY
    assert loader.calls == [("mf", 1)]
    await registry.close()


async def test_refresh_waits_for_the_fallback_when_the_newest_version_breaks(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    publish(tmp_path, "mf", 2)
    loader.broken.add(("mf", 2))
    registry, _ = make_registry()
    await registry.refresh()
    assert loader.calls == [("mf", 2), ("mf", 1)], "the older version loads only once the newest failed"
    assert state(registry, "mf", 2) == UNAVAILABLE and "sha256 mismatch" in registry.record("mf", 2).reason
    assert served(registry, "mf") == 1
    await registry.close()


async def test_an_older_version_serves_until_the_newer_one_is_ready(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    registry, changes = make_registry()
    await registry.refresh()
    publish(tmp_path, "mf", 2)
    gate = loader.gate("mf", 2)
    await registry.rescan()
    assert state(registry, "mf", 2) == LOADING
    assert served(registry, "mf") == 1, "v1 stopped serving while v2 was still loading"
    gate.set()
    await changes.until(lambda: state(registry, "mf", 1) == UNLOADING)
    assert served(registry, "mf") == 2
    await registry.close()


async def spin(iterations: int = 20) -> None:
    """Lets the event loop run ``iterations`` times, without waiting for any timer on purpose."""
    for _ in range(iterations):
        await asyncio.sleep(0)


async def test_drain_ends_when_the_last_call_ends_not_at_the_grace_period(tmp_path, make_registry, monkeypatch):
    publish(tmp_path, "mf", 1)
    registry, _ = make_registry()  # grace_s=3600: only the release can end this drain
    await registry.refresh()
    first, second = registry.acquire("mf"), registry.acquire("mf")
    publish(tmp_path, "mf", 2)
    await registry.refresh()
    assert state(registry, "mf", 1) == UNLOADING and first.inflight == 2
    registry.release(first)
    await spin()
    assert not first.closed and state(registry, "mf", 1) == UNLOADING, "drained while a call still ran"
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def recording_call_at(when, callback, *args, **kwargs):
        timers.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", recording_call_at)
    registry.release(second)
    await spin()  # the release alone must end the drain
    assert state(registry, "mf", 1) == UNAVAILABLE and first.closed and first.inflight == 0
    assert timers == [], "the drain armed a timer to look at the calls instead of being woken by the last one"
    assert "superseded by version 2" in registry.record("mf", 1).reason
    await registry.close()


async def test_a_removed_version_serves_until_the_one_it_falls_back_to_is_ready(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    publish(tmp_path, "mf", 2)
    registry, changes = make_registry()
    await registry.refresh()
    assert loader.calls == [("mf", 2)] and state(registry, "mf", 1) == UNAVAILABLE
    gate = loader.gate("mf", 1)
    for path in sorted((tmp_path / "mf" / "2").iterdir()):
        path.unlink()
    (tmp_path / "mf" / "2").rmdir()
    await registry.rescan()
    await loader.started("mf", 1)
    assert served(registry, "mf") == 2, "the removed version stopped serving before v1 was ready"
    gate.set()
    await changes.until(lambda: state(registry, "mf", 1) == READY)
    assert served(registry, "mf") == 1
    await changes.until(lambda: [r.version for r in registry.models()["mf"]] == [1] and loader.models[("mf", 2)].closed)
    await registry.close()


async def test_a_version_removed_while_it_loads_is_unloaded_when_its_load_ends(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    gate = loader.gate("mf", 1)
    registry, _ = make_registry()
    await registry.rescan()
    (tmp_path / "mf" / "1" / "config.json").unlink()
    await registry.rescan()
    with pytest.raises(ModelNotFound):
        registry.record("mf")
    gate.set()
    await registry.refresh()  # returns once every load has ended
    assert loader.models[("mf", 1)].closed
    with pytest.raises(ModelNotFound):
        registry.acquire("mf")
    await registry.close()


async def test_lease_releases_on_exit_and_on_errors(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    registry, _ = make_registry()
    await registry.refresh()
    async with registry.lease("mf") as model:
        assert model.version == 1 and model.inflight == 1
    assert model.inflight == 0
    with pytest.raises(ValueError, match="inside the call"):
        async with registry.lease("mf", 1) as model:
            assert model.inflight == 1
            raise ValueError("inside the call")
    assert model.inflight == 0
    with pytest.raises(ModelNotFound, match="unknown model 'nope'"):
        async with registry.lease("nope"):
            pass
    assert model.inflight == 0
    await registry.close()


async def test_close_waits_for_a_running_load_and_unloads_it(tmp_path, make_registry, loader):
    publish(tmp_path, "mf", 1)
    gate = loader.gate("mf", 1)
    registry, _ = make_registry()
    await registry.rescan()
    await loader.started("mf", 1)
    closing = asyncio.ensure_future(registry.close())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not closing.done(), "close returned while a load was still running"
    gate.set()
    await asyncio.wait_for(closing, SAFETY_S)
    assert loader.models[("mf", 1)].closed
    assert registry.ready_models() == set()
