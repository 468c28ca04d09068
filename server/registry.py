"""Model registry: which versions exist, which are served, and their hot loading and unloading.

The registry polls the repository. A new version is loaded and warmed up in a background
thread, then published; by default only the newest ready version of each model is served, so
publishing it retires the previous one: new calls go to the new version at once, calls already
running finish on the old one (drain), then the old one is unloaded. A version that fails to load
is marked UNAVAILABLE with the reason and never affects other versions or models; it is tried
again only when its ``config.json`` changes. Removing the newest version folder brings the
previous one back.

Loading takes seconds, so it never happens under the registry's lock: a scan decides, under the
lock, which versions to load and marks them LOADING (a version with a load in flight is never
started again), the loads run in their own tasks, and each one settles its model when it ends.
One slow model therefore delays neither the other models nor the next scan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

from protos.recsys.v1 import model_config_pb2 as mc
from protos.recsys.v1 import service_pb2 as pb
from server.batching import BatchObserver
from server.config import ServerConfig
from server.errors import ModelLoadError, ModelNotFound, ModelNotReady
from server.loader import load_version
from server.metrics import Metrics
from server.model import ServedModel
from server.repository import VersionFolder, scan

_LOGGER = logging.getLogger(__name__)
_LOAD_THREADS = 2
"""Versions loading at once: enough that one slow model does not hold up the others, few enough that
loads (CPU-bound: sessions, warm-up) do not crowd out the serving threads."""

LoadFn = Callable[[VersionFolder, ServerConfig, Executor, dict[str, BatchObserver]], ServedModel]
"""Blocking load of one version folder (``server.loader.load_version``); runs in a loader thread."""

LOADING = pb.VERSION_STATE_LOADING
READY = pb.VERSION_STATE_READY
UNAVAILABLE = pb.VERSION_STATE_UNAVAILABLE
UNLOADING = pb.VERSION_STATE_UNLOADING


@dataclass
class VersionRecord:
    """What the server knows about one version folder.

    Attributes:
        folder: Where it lies.
        state: A ``VersionState`` value.
        reason: Why it is not ready (empty when ready).
        broken: It failed to load: not retried until its config.json changes.
        removed: Its folder is gone: it serves until a replacement is ready, then drains.
        model: The loaded version while LOADING is over and it is READY or UNLOADING.
        config: Its exported config, once read.
        load: The task loading it while a load is in flight, else None.
    """

    folder: VersionFolder
    state: int = LOADING
    reason: str = ""
    broken: bool = False
    removed: bool = False
    model: ServedModel | None = None
    config: mc.ModelConfig | None = field(default=None, repr=False)
    load: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def version(self) -> int:
        """Version number."""
        return self.folder.version


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "…")


def _no_version(name: str, version: int, versions: dict[int, VersionRecord]) -> str:
    return f"model {_shown(name)} has no version {version}; versions: {sorted(versions, reverse=True)}"


class Lease:
    """One call's hold on a served version: acquired on entering, released on leaving, errors included.

    ``async with registry.lease(name, version) as model:`` replaces an :meth:`ModelRegistry.acquire`
    / :meth:`ModelRegistry.release` pair around a call. A small class rather than
    ``contextlib.asynccontextmanager``: it is entered once per request, and a generator costs more.
    """

    __slots__ = ("_model", "_name", "_registry", "_version")

    def __init__(self, registry: ModelRegistry, name: str, version: int) -> None:
        self._registry, self._name, self._version = registry, name, version
        self._model: ServedModel | None = None

    async def __aenter__(self) -> ServedModel:
        self._model = self._registry.acquire(self._name, self._version)
        return self._model

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        model, self._model = self._model, None
        if model is not None:
            self._registry.release(model)


class ModelRegistry:
    """Model name -> versions, with the served ones looked up in O(1) per call.

    Args:
        config: Repository, backend, batching and polling settings.
        executor: Thread pool the batchers run inference in.
        metrics: Receives batch statistics and the number of loaded versions.
        on_change: Called on the event loop after any version changes state (health updates).
        load: Loads one version folder, blocking; tests pass a stub.
    """

    def __init__(
        self,
        config: ServerConfig,
        executor: Executor,
        metrics: Metrics,
        on_change: Callable[[], None] | None = None,
        *,
        load: LoadFn = load_version,
    ) -> None:
        self._config = config
        self._executor = executor
        self._metrics = metrics
        self._on_change = on_change
        self._load_version = load
        self._records: dict[str, dict[int, VersionRecord]] = {}
        self._default: dict[str, ServedModel] = {}
        self._by_version: dict[tuple[str, int], ServedModel] = {}
        self._scanner = ThreadPoolExecutor(1, thread_name_prefix="repository-scan")
        self._loader = ThreadPoolExecutor(_LOAD_THREADS, thread_name_prefix="model-loader")
        self._lock = asyncio.Lock()  # one scan at a time; held only while deciding, never while loading
        self._loads: set[asyncio.Task[None]] = set()
        self._loads_done = asyncio.Event()  # set whenever no load is in flight
        self._loads_done.set()
        self._idle: dict[int, asyncio.Event] = {}  # id(model) -> set when a draining version's last call ends
        self._closing = False
        self._poll_task: asyncio.Task[None] | None = None
        self._drains: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Loads what the repository holds now, then keeps polling it in the background."""
        await self.refresh()
        if self._config.poll_interval_s > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll(), name="repository poll")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._config.poll_interval_s)
            try:
                await self.rescan()
            except Exception:  # a failed scan must not stop polling or serving
                _LOGGER.exception("scanning repository %s failed; serving what is loaded", self._config.repository)

    async def refresh(self) -> None:
        """Scans the repository once, then waits until every load it led to has ended.

        Afterwards each version found is READY, UNAVAILABLE (with its reason) or UNLOADING.
        """
        await self.rescan()
        while self._loads:  # a failed load may start the next older version: wait for those too
            await self._loads_done.wait()

    async def rescan(self) -> None:
        """Scans the repository once and starts loading new versions, without waiting for the loads.

        New versions become LOADING at once and are published when their load ends; superseded and
        removed versions are retired. Safe to call while loads of an earlier scan are still running.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self._scanner, scan, self._config.repository)
            if self._closing:
                return
            self._forget_removed(found)
            for key, folder in found.items():
                record = self._records.setdefault(key[0], {}).get(key[1])
                if record is None or (record.broken and record.folder.fingerprint != folder.fingerprint):
                    self._records[key[0]][key[1]] = VersionRecord(folder)
            for name in sorted(self._records):
                self._settle(name)
            self._publish()

    def _forget_removed(self, found: dict[tuple[str, int], VersionFolder]) -> None:
        """Drops records of vanished folders, but marks ready ones removed: they serve until replaced.

        :meth:`_settle` retires a removed version once a replacement is ready, or at once when none is
        loading. A vanished version still loading is dropped too: its load, when it ends, finds its record
        gone and unloads what it loaded.
        """
        for name, versions in list(self._records.items()):
            for version, record in list(versions.items()):
                if (name, version) in found:
                    continue
                if record.state == READY:
                    record.removed = True
                elif record.state != UNLOADING:
                    del versions[version]
            if not versions:
                del self._records[name]

    def _settle(self, name: str) -> None:
        """Serves the newest ``versions_to_serve`` loadable versions of one model.

        Runs after every scan and after every load of the model, without awaiting anything, so it
        sees and changes the records in one step. A version still loading holds its place: older
        versions are not loaded meanwhile, and an older ready one keeps serving until it is replaced.
        """
        keep = self._config.versions_to_serve
        ready = claimed = newest_ready = 0
        leaving = []  # ready versions whose folder is gone: they serve until replaced
        for version in sorted(self._records.get(name, {}), reverse=True):
            record = self._records[name][version]
            if record.removed and record.state == READY:
                leaving.append(record)
                continue
            if record.state == UNLOADING or record.broken or record.removed:
                continue
            superseded = f"superseded by version {newest_ready}; only the newest {keep} served"
            if record.state == READY:
                if ready >= keep:
                    self._retire(record, superseded)
                    continue
                ready, claimed, newest_ready = ready + 1, claimed + 1, newest_ready or version
            elif record.load is not None:
                claimed += 1  # its load decides; an older version waits for it
            elif ready >= keep:
                record.state, record.reason = UNAVAILABLE, superseded
            elif claimed < keep:
                self._start_load(record)
                claimed += 1
        if ready >= keep or claimed == ready:  # replaced, or no load in flight could replace them
            for record in leaving:
                self._retire(record, reason=None)
        self._publish()

    def _start_load(self, record: VersionRecord) -> None:
        record.state, record.reason = LOADING, ""
        task = asyncio.get_running_loop().create_task(self._load(record), name=f"load {record.folder.path}")
        record.load = task
        self._loads.add(task)
        self._loads_done.clear()
        task.add_done_callback(self._load_ended)

    def _load_ended(self, task: asyncio.Task[None]) -> None:
        self._loads.discard(task)
        if not self._loads:
            self._loads_done.set()

    async def _load(self, record: VersionRecord) -> None:
        folder = record.folder
        observers = {s: self._metrics.batch_observer(folder.name, s) for s in ("predict", "recommend")}
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(
                self._loader, self._load_version, folder, self._config, self._executor, observers
            )
        except ModelLoadError as error:
            record.state, record.reason, record.broken = UNAVAILABLE, str(error), True
            _LOGGER.error("model %r v%d is unavailable: %s", folder.name, folder.version, error)
        except Exception as error:  # one broken version must never stop the server
            record.state, record.reason, record.broken = UNAVAILABLE, f"loading failed: {error!r}", True
            _LOGGER.exception("model %r v%d is unavailable: unexpected load error", folder.name, folder.version)
        else:
            if self._closing or self._records.get(folder.name, {}).get(folder.version) is not record:
                _LOGGER.info(
                    "unloading model %r v%d: removed or shutting down while it loaded", folder.name, folder.version
                )
                record.load = None
                await model.close()
                return
            record.model, record.config, record.state = model, model.config, READY
        record.load = None
        if not self._closing:
            self._settle(folder.name)

    def _retire(self, record: VersionRecord, reason: str | None) -> None:
        """Stops routing new calls to a version, then drains and unloads it in the background."""
        record.state, record.reason = UNLOADING, reason or "removed from the repository"
        self._publish()
        task = asyncio.get_running_loop().create_task(self._drain(record, reason))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, record: VersionRecord, reason: str | None) -> None:
        model = record.model
        if model is not None and model.inflight > 0:
            idle = self._idle[id(model)] = asyncio.Event()  # set by release() when the last call ends
            try:
                await asyncio.wait_for(idle.wait(), self._config.grace_s)
            except TimeoutError:
                _LOGGER.warning("unloading %s with %d calls still running", model.label, model.inflight)
            finally:
                del self._idle[id(model)]
        if model is not None:
            await model.close()
        record.model = None
        _LOGGER.info("unloaded model %r v%d (%s)", record.folder.name, record.version, record.reason)
        versions = self._records.get(record.folder.name, {})
        if reason is None:
            if versions.get(record.version) is record:
                del versions[record.version]
            if not versions:
                self._records.pop(record.folder.name, None)
        else:
            record.state = UNAVAILABLE
        self._notify()

    def _publish(self) -> None:
        by_version: dict[tuple[str, int], ServedModel] = {}
        default: dict[str, ServedModel] = {}
        for name, versions in self._records.items():
            for version in sorted(versions, reverse=True):
                record = versions[version]
                if record.state == READY and record.model is not None:
                    by_version[(name, version)] = record.model
                    default.setdefault(name, record.model)
        self._by_version, self._default = by_version, default
        self._metrics.models_loaded.set(len(by_version))
        self._notify()

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def acquire(self, name: str, version: int = 0) -> ServedModel:
        """The version to run a call on, counted as in flight until :meth:`release`.

        Args:
            name: Model name from the request (only ever used as a dictionary key).
            version: Version number; 0 for the newest ready one.

        Raises:
            ModelNotFound: no such model, or no such version of it.
            ModelNotReady: the version is loading, broken, superseded or unloading.
        """
        model = self._default.get(name) if version == 0 else self._by_version.get((name, version))
        if model is None:
            self._raise_missing(name, version)
        model.inflight += 1
        return model

    def release(self, model: ServedModel) -> None:
        """Ends a call started by :meth:`acquire`; the last call of a draining version lets it unload."""
        model.inflight -= 1
        if not model.inflight and self._idle:
            idle = self._idle.get(id(model))
            if idle is not None:
                idle.set()

    def lease(self, name: str, version: int = 0) -> Lease:
        """``async with registry.lease(name, version) as model:`` :meth:`acquire` and :meth:`release` in one.

        Args:
            name: Model name from the request.
            version: Version number; 0 for the newest ready one.

        Raises:
            ModelNotFound: on entering, as :meth:`acquire`.
            ModelNotReady: on entering, as :meth:`acquire`.
        """
        return Lease(self, name, version)

    def _raise_missing(self, name: str, version: int) -> None:
        versions = self._records.get(name)
        if not versions:
            known = sorted(self._records)
            raise ModelNotFound(f"unknown model {_shown(name)}; the repository holds {known}")
        if version == 0:
            states = ", ".join(f"v{v} {pb.VersionState.Name(r.state)[14:]}" for v, r in sorted(versions.items()))
            raise ModelNotReady(f"model {_shown(name)} has no ready version ({states}); retry shortly")
        record = versions.get(version)
        if record is None:
            raise ModelNotFound(_no_version(name, version, versions))
        state = pb.VersionState.Name(record.state)[14:]
        detail = f": {record.reason}" if record.reason else ""
        raise ModelNotReady(f"model {_shown(name)} v{version} is {state}{detail}; version 0 means the newest ready one")

    def record(self, name: str, version: int = 0) -> VersionRecord:
        """A version's record for metadata: version 0 means the newest ready one, else the newest known.

        Raises:
            ModelNotFound: no such model or version.
        """
        versions = self._records.get(name)
        if not versions:
            raise ModelNotFound(f"unknown model {_shown(name)}; the repository holds {sorted(self._records)}")
        if version == 0:
            model = self._default.get(name)
            version = model.version if model is not None else max(versions)
        if version not in versions:
            raise ModelNotFound(_no_version(name, version, versions))
        return versions[version]

    def models(self) -> dict[str, list[VersionRecord]]:
        """Every known model name -> its version records, newest first."""
        return {
            name: [versions[v] for v in sorted(versions, reverse=True)]
            for name, versions in sorted(self._records.items())
        }

    def queue_depths(self) -> list[tuple[str, str, int]]:
        """Rows waiting per (model, signature), summed over the served versions (for the metrics)."""
        depths: dict[tuple[str, str], int] = {}
        for (name, _), model in list(self._by_version.items()):
            for signature, batcher in model.batchers.items():
                depths[(name, signature)] = depths.get((name, signature), 0) + batcher.queued_rows
        return [(name, signature, rows) for (name, signature), rows in sorted(depths.items())]

    def ready_models(self) -> set[str]:
        """Names of models with at least one version serving."""
        return set(self._default)

    async def close(self) -> None:
        """Stops polling, waits for running loads and drains, and unloads every version."""
        self._closing = True
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
        async with self._lock:
            if self._loads:  # each unloads what it loaded, seeing the registry closing
                await asyncio.gather(*list(self._loads), return_exceptions=True)
            for versions in self._records.values():
                for record in versions.values():
                    if record.state == READY:
                        self._retire(record, "server shutting down")
            if self._drains:
                await asyncio.gather(*list(self._drains), return_exceptions=True)
        self._scanner.shutdown(wait=False, cancel_futures=True)
        self._loader.shutdown(wait=False, cancel_futures=True)
