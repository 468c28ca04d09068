"""The repository is polled: new versions take over with no failed call, broken ones never serve."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import warnings
from pathlib import Path

import grpc
import pytest

from client import AsyncRecsysClient


class Load:
    """Keeps `concurrency` Predict loops running and records every outcome."""

    def __init__(self, client: AsyncRecsysClient, concurrency: int = 8) -> None:
        self.client = client
        self.versions: list[int] = []
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._loop(i)) for i in range(concurrency)]

    async def _loop(self, worker: int) -> None:
        while not self._stop.is_set():
            try:
                answer = await self.client.predict("mf", [f"u{worker}", "u1"], ["i3", f"i{worker}"], timeout=20)
                self.versions.append(answer.version)
            except grpc.aio.AioRpcError as error:
                self.failures.append(f"{error.code().name}: {error.details()}")

    async def until(self, version: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.versions and self.versions[-1] == version):
            assert time.monotonic() < deadline, f"version {version} never served; last {self.versions[-5:]}"
            await asyncio.sleep(0.05)
        seen = len(self.versions)
        while len(self.versions) < seen + 50:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def publish_copy(model_dir: Path, source: int, version: int, corrupt: str | None = None) -> None:
    """Publishes a copy of a version under a new number, the way the exporter does: staged, then renamed."""
    staging = model_dir / f".staging-{version}"
    shutil.copytree(model_dir / str(source), staging)
    config = json.loads((staging / "config.json").read_text())
    config["version"] = str(version)
    (staging / "config.json").write_text(json.dumps(config))
    if corrupt is not None:
        (staging / corrupt).write_bytes(b"not the exported file")
    staging.rename(model_dir / str(version))


async def states(client: AsyncRecsysClient) -> dict[int, tuple[str, str]]:
    (model,) = [m for m in await client.list_models() if m.name == "mf"]
    return {v.version: (v.state, v.reason) for v in model.versions}


async def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_new_broken_and_removed_versions_under_load(tmp_path, copy_repository, tiny_checkpoints, start_server):
    from exporter import export_checkpoint

    repository = copy_repository(tmp_path / "repo", models=("mf",))
    thread = start_server(repository, poll_interval_s=0.1, max_queue_delay_us=1000)
    async with AsyncRecsysClient(thread.target, timeout=20) as client:
        load = Load(client)
        await load.until(1)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert (await asyncio.to_thread(export_checkpoint, tiny_checkpoints["mf"], repository)).version == 2
        await load.until(2)

        async def v1_superseded() -> bool:
            return (await states(client))[1][0] == "UNAVAILABLE"

        await wait_for(v1_superseded)
        assert "superseded by version 2" in (await states(client))[1][1]

        publish_copy(repository / "mf", source=2, version=3, corrupt="predict.onnx")

        async def v3_broken() -> bool:
            return (await states(client)).get(3, ("",))[0] == "UNAVAILABLE"

        await wait_for(v3_broken)
        assert "predict.onnx: sha256 mismatch" in (await states(client))[3][1]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u1"], ["i1"], version=3)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "sha256 mismatch" in caught.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u1"], ["i1"], version=1)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "superseded" in caught.value.details()
        assert load.versions[-1] == 2, "a broken version must never take over"

        shutil.rmtree(repository / "mf" / "2")
        await load.until(1)
        await load.stop()

        async def v2_gone() -> bool:
            return 2 not in await states(client)

        await wait_for(v2_gone)
    assert load.failures == [], f"{len(load.failures)} calls failed during reloads: {load.failures[:3]}"
    # Served in order: v1, then v2 once exported, then v1 again once v2 was removed; the broken v3 never.
    assert load.versions[0] == 1 and load.versions[-1] == 1 and set(load.versions) == {1, 2}
    assert thread.metrics.value("recsys_models_loaded") == 1


async def test_versions_to_serve_keeps_older_versions_callable(tmp_path, copy_repository, start_server):
    repository = copy_repository(tmp_path / "repo", models=("mf",))
    publish_copy(repository / "mf", source=1, version=2)
    publish_copy(repository / "mf", source=1, version=3)
    thread = start_server(repository, versions_to_serve=2)
    async with AsyncRecsysClient(thread.target, timeout=20) as client:
        assert (await client.predict("mf", ["u1"], ["i1"])).version == 3
        assert (await client.predict("mf", ["u1"], ["i1"], version=2)).version == 2
        listed = await states(client)
        assert [listed[v][0] for v in (3, 2, 1)] == ["READY", "READY", "UNAVAILABLE"]
        assert listed[1][1] == "superseded by version 3; only the newest 2 served"
