"""Model registry: which versions exist, which are served, and their hot loading and unloading.

The registry polls the repository. A new version is loaded and warmed up in a background
thread, then published; by default only the newest ready version of each model is served, so
publishing it retires the previous one: new calls go to the new version at once, calls already
running finish on the old one (drain), then the old one is unloaded. A version that fails to load
is marked UNAVAILABLE with the reason and never affects other versions or models; it is tried
again only when its ``config.json`` changes. Removing the newest version folder brings the
previous one back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from protos.recsys.v1 import model_config_pb2 as mc
from protos.recsys.v1 import service_pb2 as pb
from server.config import ServerConfig
from server.errors import ModelLoadError, ModelNotFound, ModelNotReady
from server.loader import load_version
from server.metrics import Metrics
from server.model import ServedModel
from server.repository import VersionFolder, scan

_LOGGER = logging.getLogger(__name__)
_DRAIN_POLL_S = 0.005

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
    """

    folder: VersionFolder
    state: int = LOADING
    reason: str = ""
    broken: bool = False
    removed: bool = False
    model: ServedModel | None = None
    config: mc.ModelConfig | None = field(default=None, repr=False)

    @property
    def version(self) -> int:
        """Version number."""
        return self.folder.version


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "…")


def _no_version(name: str, version: int, versions: dict[int, VersionRecord]) -> str:
    return f"model {_shown(name)} has no version {version}; versions: {sorted(versions, reverse=True)}"


class ModelRegistry:
    """Model name -> versions, with the served ones looked up in O(1) per call.

    Args:
        config: Repository, backend, batching and polling settings.
        executor: Thread pool the batchers run inference in.
        metrics: Receives batch statistics and the number of loaded versions.
        on_change: Called on the event loop after any version changes state (health updates).
    """

    def __init__(
        self,
        config: ServerConfig,
        executor: Executor,
        metrics: Metrics,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._config = config
        self._executor = executor
        self._metrics = metrics
        self._on_change = on_change
        self._records: dict[str, dict[int, VersionRecord]] = {}
        self._default: dict[str, ServedModel] = {}
        self._by_version: dict[tuple[str, int], ServedModel] = {}
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        self._lock = asyncio.Lock()
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
                await self.refresh()
            except Exception:  # a failed scan must not stop polling or serving
                _LOGGER.exception("scanning repository %s failed; serving what is loaded", self._config.repository)

    async def refresh(self) -> None:
        """Scans the repository once: loads new versions, retires superseded and removed ones."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self._loader, scan, self._config.repository)
            removed = self._forget_removed(found)
            for key, folder in found.items():
                record = self._records.setdefault(key[0], {}).get(key[1])
                if record is None or (record.broken and record.folder.fingerprint != folder.fingerprint):
                    self._records[key[0]][key[1]] = VersionRecord(folder)
            for name in sorted(self._records):
                await self._settle(name)
            for record in removed:
                self._retire(record, reason=None)
            self._publish()

    def _forget_removed(self, found: dict[tuple[str, int], VersionFolder]) -> list[VersionRecord]:
        """Drops records of vanished folders; returns the ready ones, to retire once replaced."""
        still_serving = []
        for name, versions in list(self._records.items()):
            for version, record in list(versions.items()):
                if (name, version) in found:
                    continue
                if record.state == READY:
                    record.removed = True
                    still_serving.append(record)
                elif record.state != UNLOADING:
                    del versions[version]
            if not versions:
                del self._records[name]
        return still_serving

    async def _settle(self, name: str) -> None:
        """Serves the newest ``versions_to_serve`` loadable versions of one model."""
        served = 0
        newest_ready = 0
        for version in sorted(self._records.get(name, {}), reverse=True):
            record = self._records[name][version]
            if record.state == UNLOADING or record.broken or record.removed:
                continue
            if served >= self._config.versions_to_serve:
                keep = self._config.versions_to_serve
                reason = f"superseded by version {newest_ready}; only the newest {keep} served"
                if record.state == READY:
                    self._retire(record, reason)
                elif record.model is None:
                    record.state, record.reason = UNAVAILABLE, reason
                continue
            if record.state != READY:
                await self._load(record)
            if record.state == READY:
                served += 1
                newest_ready = newest_ready or version
                self._publish()

    async def _load(self, record: VersionRecord) -> None:
        record.state, record.reason = LOADING, ""
        self._notify()
        folder = record.folder
        observers = {s: self._metrics.batch_observer(folder.name, s) for s in ("predict", "recommend")}
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(
                self._loader, load_version, folder, self._config, self._executor, observers
            )
        except ModelLoadError as error:
            record.state, record.reason, record.broken = UNAVAILABLE, str(error), True
            _LOGGER.error("model %r v%d is unavailable: %s", folder.name, folder.version, error)
        except Exception as error:  # one broken version must never stop the server
            record.state, record.reason, record.broken = UNAVAILABLE, f"loading failed: {error!r}", True
            _LOGGER.exception("model %r v%d is unavailable: unexpected load error", folder.name, folder.version)
        else:
            record.model, record.config, record.state = model, model.config, READY

    def _retire(self, record: VersionRecord, reason: str | None) -> None:
        """Stops routing new calls to a version, then drains and unloads it in the background."""
        record.state, record.reason = UNLOADING, reason or "removed from the repository"
        self._publish()
        task = asyncio.get_running_loop().create_task(self._drain(record, reason))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, record: VersionRecord, reason: str | None) -> None:
        model = record.model
        deadline = time.monotonic() + self._config.grace_s
        while model is not None and model.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(_DRAIN_POLL_S)
        if model is not None:
            if model.inflight:
                _LOGGER.warning("unloading %s with %d calls still running", model.label, model.inflight)
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

    @staticmethod
    def release(model: ServedModel) -> None:
        """Ends a call started by :meth:`acquire`."""
        model.inflight -= 1

    @contextlib.asynccontextmanager
    async def lease(self, name: str, version: int = 0) -> AsyncIterator[ServedModel]:
        """The version to run a call on, held in flight for the ``async with`` block, released even on errors."""
        model = self.acquire(name, version)
        try:
            yield model
        finally:
            self.release(model)

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
        """Stops polling, waits for running drains, and unloads every version."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
        async with self._lock:
            for versions in self._records.values():
                for record in versions.values():
                    if record.state == READY:
                        self._retire(record, "server shutting down")
            if self._drains:
                await asyncio.gather(*list(self._drains), return_exceptions=True)
        self._loader.shutdown(wait=False, cancel_futures=True)
