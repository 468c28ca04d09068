"""Faults under load against the real server process: soak, hot reload, SIGTERM, cancel storms, overflow.

Every answer is checked against what ONNX Runtime computes from the version's own files, so "zero
errors" also means "zero wrong answers". Figures are printed at the end of the run (conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import time
import urllib.request
import warnings
from pathlib import Path

import grpc
import pytest

from protos.recsys.v1 import service_pb2, service_pb2_grpc

from . import tally
from .drivers import CHANNEL_OPTIONS, Call, drive
from .oracle import ModelFacts, read_facts
from .procs import ServerProcess, free_port, rss_kib, server_process
from .workloads import history_call, history_request, pair_calls

SOAK_S = 60.0
SOAK_WARMUP_S = 10.0
SOAK_CONCURRENCY = 256


def _versions(repository: Path, name: str) -> dict[int, tuple[Path, ModelFacts]]:
    return {int(d.name): (d, read_facts(d)) for d in (repository / name).iterdir() if d.name.isdigit()}


async def _sample_rss(pid: int, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, rss_kib(pid)))
        await asyncio.sleep(1.0)


def _queue_rows(metrics_port: int) -> float:
    """Sum of the server's recsys_queue_rows gauge over models and signatures, scraped over HTTP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("recsys_queue_rows{")]
    if not values:
        raise AssertionError("the server exports no recsys_queue_rows gauge: queue depth cannot be checked")
    return sum(values)


async def _wait_queue_empty(metrics_port: int, timeout_s: float = 5.0) -> float:
    deadline = time.monotonic() + timeout_s
    while (rows := _queue_rows(metrics_port)) > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return rows


@pytest.mark.slow
async def test_soak_mixed_load_has_no_errors_and_flat_memory(tiny_repository: Path, tmp_path: Path) -> None:
    lstm = read_facts(tiny_repository / "lstm" / "1")
    with server_process(tiny_repository, tmp_path, ["--poll-interval-s", "0"]) as process:
        with grpc.insecure_channel(process.target) as channel:
            first = service_pb2_grpc.RecommenderServiceStub(channel).Recommend(history_request(lstm), timeout=10)
        calls = [
            *pair_calls("mf", _versions(tiny_repository, "mf"), rows=4),
            *pair_calls("dense", _versions(tiny_repository, "dense"), rows=1, offset=3),
            *pair_calls("gcn", _versions(tiny_repository, "gcn"), rows=2, offset=11),
            history_call(lstm, first),
        ]
        samples: list[tuple[float, int]] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(process.pid, samples, stop))
        result = await drive(process.target, calls, concurrency=SOAK_CONCURRENCY, duration_s=SOAK_S)
        samples.append((result.elapsed_s, rss_kib(process.pid)))
        stop.set()
        await sampler
    warm = next(kib for t, kib in samples if t >= SOAK_WARMUP_S)
    final, peak = samples[-1][1], max(kib for _, kib in samples)
    growth = (final - warm) / warm
    tally.measure(
        f"soak {SOAK_S:.0f} s x {SOAK_CONCURRENCY}: {result.summary()}; server RSS {warm / 1024:.1f} MiB at "
        f"{SOAK_WARMUP_S:.0f} s -> {final / 1024:.1f} MiB at the end ({growth:+.1%}), peak {peak / 1024:.1f} MiB"
    )
    assert result.errors == 0 and result.wrong == 0, result.summary()
    # Round-robin over the call kinds: as many calls as kinds means every model and call shape was soaked.
    assert result.calls >= len(calls), f"not every kind of call was sent: {result.summary()}"
    assert growth < 0.10, f"server memory grew {growth:.1%} after warm-up: {samples}"


def _staged_second_version(tiny_checkpoints: dict[str, Path], tiny_repository: Path, staging: Path) -> Path:
    """Exports the dense checkpoint as version 2 of "mf" in a staging copy: other values, same ids."""
    from exporter import export_checkpoint

    shutil.copytree(tiny_repository / "mf", staging / "mf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export_checkpoint(tiny_checkpoints["dense"], staging, name="mf", formats=("onnx",))
    assert result.version == 2
    return result.path


async def _metadata_version(stub: service_pb2_grpc.RecommenderServiceStub) -> int:
    request = service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name="mf"))
    return (await stub.GetModelMetadata(request, timeout=5)).status.version


async def _versions_listed(stub: service_pb2_grpc.RecommenderServiceStub) -> list[int]:
    listed = await stub.ListModels(service_pb2.ListModelsRequest(), timeout=5)
    return [v.version for m in listed.models if m.name == "mf" for v in m.versions]


async def test_hot_reload_under_load_loses_nothing_and_never_mixes_versions(
    tiny_repository: Path, tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    live = tmp_path / "live"
    shutil.copytree(tiny_repository / "mf", live / "mf")
    staged = _staged_second_version(tiny_checkpoints, tiny_repository, tmp_path / "staging")
    versions = {1: (live / "mf" / "1", read_facts(live / "mf" / "1")), 2: (staged, read_facts(staged))}
    assert versions[1][1].user_ids == versions[2][1].user_ids and versions[1][1].item_ids == versions[2][1].item_ids
    calls = pair_calls("mf", versions, rows=4) + pair_calls("mf", versions, rows=1, offset=17)
    args = ["--poll-interval-s", "0.1", "--grace-s", "5"]
    with server_process(live, tmp_path, args) as process:
        stop = asyncio.Event()
        load = asyncio.create_task(drive(process.target, calls, concurrency=64, stop=stop))
        async with grpc.aio.insecure_channel(process.target) as channel:
            stub = service_pb2_grpc.RecommenderServiceStub(channel)
            await asyncio.sleep(1.5)
            os.rename(staged, live / "mf" / "2")  # a new version appears, atomically
            while await _metadata_version(stub) != 2:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)
            os.rename(live / "mf" / "1", tmp_path / "retired")  # the old one goes
            while await _versions_listed(stub) != [2]:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            stop.set()
            result = await load
    tally.measure(f"hot reload under load (64 concurrent): {result.summary()}")
    assert result.errors == 0 and result.wrong == 0, result.summary()
    assert result.versions[1] > 0 and result.versions[2] > 0, result.summary()


async def test_sigterm_under_load_finishes_in_flight_refuses_new_and_exits_zero(
    tiny_repository: Path, tmp_path: Path
) -> None:
    grace_s = 5.0
    args = ["--max-queue-delay-us", "400000", "--max-batch-size", "4096", "--grace-s", str(grace_s)]
    facts = read_facts(tiny_repository / "mf" / "1")
    calls = [c for offset in range(64) for c in pair_calls("mf", _versions(tiny_repository, "mf"), 2, offset)]
    with server_process(tiny_repository, tmp_path, [*args, "--poll-interval-s", "0"]) as process:
        async with grpc.aio.insecure_channel(process.target, options=CHANNEL_OPTIONS) as channel:
            stub = service_pb2_grpc.RecommenderServiceStub(channel)
            in_flight = [asyncio.ensure_future(getattr(stub, c.method)(c.request, timeout=30)) for c in calls]
            await asyncio.sleep(0.2)  # every call is now waiting for its 0.4 s batch
            assert not any(task.done() for task in in_flight), "calls finished before SIGTERM: raise the delay"
            signalled = time.monotonic()
            process.process.send_signal(signal.SIGTERM)
            refused = await _refused_codes(process, stub, facts)
            answers = await asyncio.gather(*in_flight, return_exceptions=True)
        code = await asyncio.to_thread(process.process.wait, grace_s + 10)
        exited_after = time.monotonic() - signalled
    failures = [a for a in answers if isinstance(a, BaseException)]
    assert failures == [], f"{len(failures)} in-flight calls failed, first: {failures[:1]}"
    for call, answer in zip(calls, answers, strict=True):
        call.check(answer)
    assert refused == {grpc.StatusCode.UNAVAILABLE}, refused
    assert code == 0 and exited_after < grace_s, (code, exited_after, process.log()[-2000:])
    tally.measure(
        f"SIGTERM with {len(calls)} calls in flight: all answered, new calls {sorted(c.name for c in refused)}, "
        f"exit {code} after {exited_after:.2f} s (grace {grace_s:.0f} s)"
    )


async def _refused_codes(
    process: ServerProcess, stub: service_pb2_grpc.RecommenderServiceStub, facts: ModelFacts
) -> set[grpc.StatusCode]:
    """Once the server stops accepting (health refused), new calls on old and new channels get these codes."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 5
    async with grpc.aio.insecure_channel(process.target) as fresh:
        while time.monotonic() < deadline:
            try:
                await health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                break
            await asyncio.sleep(0.01)
        request = service_pb2.PredictRequest(
            model=service_pb2.ModelSpec(name="mf"), user_ids=[facts.user_ids[0]], item_ids=[facts.item_ids[0]]
        )
        codes = set()
        for target_stub in (stub, service_pb2_grpc.RecommenderServiceStub(fresh)):
            try:
                await target_stub.Predict(request, timeout=2)
                codes.add(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.add(error.code())
    return codes


async def _storm(target: str, calls: list[Call], size: int, seed: int) -> dict[str, int]:
    """``size`` calls at once: half with 1-15 ms deadlines, half cancelled by the client after 0-5 ms."""
    rng = random.Random(seed)
    codes: dict[str, int] = {}
    channels = [grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(8)]
    stubs = [service_pb2_grpc.RecommenderServiceStub(channel) for channel in channels]

    async def one(number: int) -> None:
        call = calls[number % len(calls)]
        rpc = getattr(stubs[number % len(stubs)], call.method)
        if number % 2:
            pending = rpc(call.request, timeout=rng.uniform(0.001, 0.015))
        else:
            pending = rpc(call.request, timeout=30)
            await asyncio.sleep(rng.uniform(0, 0.005))
            pending.cancel()
        try:
            answer = await pending
        except asyncio.CancelledError:
            name = "CANCELLED"
        except grpc.aio.AioRpcError as error:
            name = error.code().name
        else:
            call.check(answer)
            name = "OK"
        codes[name] = codes.get(name, 0) + 1

    try:
        await asyncio.gather(*(one(n) for n in range(size)))
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    return codes


async def test_cancel_and_deadline_storms_leak_no_queue_entries_or_memory(
    tiny_repository: Path, tmp_path: Path
) -> None:
    metrics_port = free_port()
    args = ["--max-queue-delay-us", "20000", "--metrics-port", str(metrics_port), "--poll-interval-s", "0"]
    calls = pair_calls("mf", _versions(tiny_repository, "mf"), rows=8) + pair_calls(
        "dense", _versions(tiny_repository, "dense"), rows=2
    )
    storms, warmup, size = 6, 2, 1500
    with server_process(tiny_repository, tmp_path, args) as process:
        rss, all_codes = [], {}
        for storm in range(storms):
            codes = await _storm(process.target, calls, size, seed=storm)
            for name, count in codes.items():
                all_codes[name] = all_codes.get(name, 0) + count
            assert set(codes) <= {"OK", "CANCELLED", "DEADLINE_EXCEEDED"}, codes
            assert await _wait_queue_empty(metrics_port) == 0, "queue entries left behind by cancelled calls"
            check = await drive(process.target, calls, concurrency=4, total=20)
            assert check.errors == 0 and check.wrong == 0, check.summary()
            rss.append(rss_kib(process.pid))
    # Allocator noise is a few MiB here; a leak of even 1 KiB per call would add 12 MiB over the last four storms.
    baseline = max(rss[warmup - 1 : warmup + 1])
    growth = (rss[-1] - baseline) / baseline
    tally.measure(
        f"cancel/deadline storms: {storms} x {size} calls, codes {all_codes}; queue empty after each; server RSS "
        f"after each storm {[round(kib / 1024, 1) for kib in rss]} MiB ({growth:+.1%} after warm-up)"
    )
    assert all_codes.get("CANCELLED", 0) > 0 and all_codes.get("DEADLINE_EXCEEDED", 0) > 0, all_codes
    assert growth < 0.10, rss


async def test_queue_overflow_is_resource_exhausted_then_service_recovers(
    tiny_repository: Path, tmp_path: Path
) -> None:
    # Batches of up to 128 rows but room for 64 queued: a batch only leaves after its 100 ms delay, so a
    # burst of 300 calls of 16 rows overflows for sure, whatever the speed of the machine.
    metrics_port = free_port()
    args = [
        *("--max-queue-rows", "64", "--max-rows-per-request", "16", "--max-batch-size", "128"),
        *("--max-queue-delay-us", "100000", "--batches-in-flight", "1", "--workers", "1"),
        *("--metrics-port", str(metrics_port), "--poll-interval-s", "0"),
    ]
    calls = [c for offset in range(8) for c in pair_calls("mf", _versions(tiny_repository, "mf"), 16, offset)[:1]]
    with server_process(tiny_repository, tmp_path, args) as process:
        burst = await drive(process.target, calls, concurrency=300, total=300, channels=8)
        assert await _wait_queue_empty(metrics_port) == 0
        after = await drive(process.target, calls, concurrency=4, total=20)
    tally.measure(f"queue overflow burst (300 x 16 rows, queue 64 rows): {burst.summary()}; then {after.summary()}")
    assert set(burst.codes) == {"OK", "RESOURCE_EXHAUSTED"}, burst.summary()
    assert burst.wrong == 0, burst.summary()
    assert after.codes == {"OK": 20} and after.wrong == 0, after.summary()
