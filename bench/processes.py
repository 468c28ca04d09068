"""Calls/s and server CPU per call with 1 and 2 server processes, and with tracing on vs off.

    python -m bench.processes                      # 4 s per configuration after 1 s of warm-up
    python -m bench.processes --duration 10 --generators 3 --concurrency 32

Every configuration serves the same tiny MF model (ONNX, loopback, batching on) from
``python -m server`` child processes and is driven by ``--generators`` client processes, each keeping
``--concurrency`` Predict x1 calls in flight over 4 channels of its own (SO_REUSEPORT spreads
*connections* over the server processes, so one channel would pin one process). The server's CPU is
read from ``/proc`` for the whole process tree (the supervisor and its children), so "server CPU per
call" includes everything the serving side spent.

Configurations:

* ``processes=1``, ``processes=2``: ``--processes`` scaling;
* ``processes=1 tracing=console``: one OpenTelemetry span per call, exported by the batch span
  processor with the console exporter into /dev/null (the cost of building, processing and serialising
  spans; an OTLP exporter sends protobufs instead of JSON, of similar cost).

What the figures predict for a 16-core host: a process's event loop is the bottleneck, so
throughput scales with processes while cores remain, at the measured server CPU per call:
``16 cores / (server CPU per call)`` is the ceiling of a host running ``--processes 16`` (or e.g. 8
pods of ``--processes 2``) with the load generators elsewhere; on the 2 shared cores of a development
machine the generators take a core or more themselves, so 2 processes cannot show their full gain.
The tracing row's extra CPU per call is what every call pays when tracing samples it: with
``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` and ``OTEL_TRACES_SAMPLER_ARG=0.01`` most calls skip it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.serving_setup import free_port, prepare_repository
from loadtest.proc_cpu import process_cpu_seconds
from loadtest.runner import StepLimits, run_closed_loop
from protos.recsys.v1 import service_pb2 as pb

_LOGGER = logging.getLogger("bench.processes")
ROOT = Path(__file__).resolve().parents[1]
METHOD = "/recsys.v1.RecommenderService/Predict"
CHANNELS_PER_GENERATOR = 4


@dataclass(frozen=True)
class Setup:
    """One server configuration to measure."""

    name: str
    processes: int
    tracing: str = "off"


SETUPS = (Setup("processes=1", 1), Setup("processes=2", 2), Setup("processes=1 tracing=console", 1, "console"))


def _payloads() -> list[bytes]:
    return [
        pb.PredictRequest(
            model=pb.ModelSpec(name="mf"), user_ids=[f"u{i}"], item_ids=[f"i{i % 150}"]
        ).SerializeToString()
        for i in range(200)
    ]


async def _generate(target: str, concurrency: int, seconds: float) -> tuple[int, int, float]:
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(CHANNELS_PER_GENERATOR)]
    methods = [channel.unary_unary(METHOD) for channel in channels]

    async def call(index: int, payload: bytes) -> bytes:
        return await methods[index % len(methods)](payload, timeout=10)

    try:
        outcome = await run_closed_loop(call, _payloads(), concurrency, StepLimits(duration_s=seconds, samples=0))
    finally:
        for channel in channels:
            await channel.close()
    ok = outcome.codes.get("OK", 0)
    return ok, sum(outcome.codes.values()) - ok, outcome.wall_s


def _generator_main(target: str, concurrency: int, seconds: float, results: multiprocessing.Queue) -> None:
    results.put(asyncio.run(_generate(target, concurrency, seconds)))


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (the supervisor's children)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(Exception):
            total += process_cpu_seconds(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending += [int(child) for child in task.read_text().split()]
    return total


@contextlib.contextmanager
def _server(repository: Path, setup: Setup, log_dir: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    command = [sys.executable, "-m", "server", "--repository", str(repository), "--port", str(port)]
    command += ["--processes", str(setup.processes), "--tracing", setup.tracing, "--poll-interval-s", "0"]
    command += ["--log-level", "WARNING"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        # stdout (the console span exporter) goes nowhere; warnings and errors to the log
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    target = f"127.0.0.1:{port}"
    try:
        _wait_all_serving(process, target, setup.processes, log_path)
        yield process, target
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_all_serving(process: subprocess.Popen, target: str, processes: int, log_path: Path) -> None:
    """Until every server process answers Predict (a fresh connection each time lands on any of them)."""
    request = _payloads()[0]
    deadline, answered = time.monotonic() + 180, 0
    while answered < 8 * processes:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server not serving; see {log_path}")
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            try:
                channel.unary_unary(METHOD)(request, timeout=2)
                answered += 1
            except grpc.RpcError:
                answered = 0
                time.sleep(0.2)
    time.sleep(1.0)  # a second child may still be loading: it binds once loaded


def _drive(target: str, generators: int, concurrency: int, seconds: float) -> tuple[int, int, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_generator_main, args=(target, concurrency, seconds, results)) for _ in range(generators)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(30)
    return sum(o[0] for o in outcomes), sum(o[1] for o in outcomes), max(o[2] for o in outcomes)


def measure(repository: Path, setup: Setup, args: argparse.Namespace, log_dir: Path) -> dict[str, float]:
    """One configuration: warm-up, then a timed step; calls/s and server CPU per call."""
    with _server(repository, setup, log_dir) as (process, target):
        _drive(target, args.generators, args.concurrency, args.warmup)
        cpu0 = _tree_cpu_seconds(process.pid)
        ok, failed, step_s = _drive(target, args.generators, args.concurrency, args.duration)
        cpu = _tree_cpu_seconds(process.pid) - cpu0
    # The server is idle while the generator processes start, so its CPU is spread over their step only.
    return {
        "calls_per_s": ok / step_s,
        "failed": failed,
        "server_cores": cpu / step_s,
        "server_us_per_call": 1e6 * cpu / max(ok, 1),
    }


def table(rows: Sequence[tuple[Setup, dict[str, float]]], cores: int) -> str:
    base = rows[0][1]
    lines = [
        "| configuration | calls/s | x processes=1 | failed | server cores used | server CPU us/call "
        "| 16-core ceiling calls/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for setup, result in rows:
        ceiling = 16 * 1e6 / result["server_us_per_call"]
        lines.append(
            f"| {setup.name} | {result['calls_per_s']:,.0f} | {result['calls_per_s'] / base['calls_per_s']:.2f} "
            f"| {result['failed']:.0f} | {result['server_cores']:.2f} | {result['server_us_per_call']:.0f} "
            f"| {ceiling:,.0f} |"
        )
    lines.append("")
    lines.append(
        f"Machine: {cores} cores shared by the generators and the server(s). 16-core ceiling = 16 / (server CPU "
        "per call): what a 16-core host running 16 server processes would answer if the generators ran "
        "elsewhere and calls cost what they cost here. Tracing's price per call is its row's CPU/call minus "
        "processes=1's."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per timed step")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per configuration")
    parser.add_argument("--generators", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight per client process")
    parser.add_argument("--repository", type=Path, help="an existing repository with 'mf' (default: train tiny)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-processes-") as work:
        repository = args.repository or prepare_repository("tiny", Path(work), ["mf"])
        rows = [(setup, measure(repository, setup, args, Path(work))) for setup in SETUPS]
    print(
        f"python -m bench.processes --duration {args.duration:g} --warmup {args.warmup:g} "
        f"--generators {args.generators} --concurrency {args.concurrency}\n"
    )
    print(table(rows, os.cpu_count() or 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
