"""Where the generator runs: in this process, or spread over several processes.

One Python process drives at most a few thousand gRPC calls per second before its own CPU use
(protobuf-free but still asyncio and the gRPC core) becomes the limit. ``ProcessExecutor`` starts
fresh generator processes for each step, splits its concurrency (or its arrival rate, interleaving
the schedules) between them, warms them all up, lets the caller scrape server metrics while they
wait at a barrier, then releases them at once and merges their measurements.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from .connection import Connection, close_all
from .runner import Call, StepLimits, StepOutcome, run_closed_loop, run_open_loop

MeasureHook = Callable[[], Awaitable[None]]
_START_SLACK_S = 0.05
_SPAWN_TIMEOUT_S = 120.0
_INDEX_STRIDE = 10**12


@dataclass(frozen=True)
class Step:
    """The load of one step: a closed loop at ``concurrency`` or an open loop at ``rate`` calls/s."""

    concurrency: int | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("a step is either closed loop (concurrency) or open loop (rate), not both or neither")


async def run_phase(
    call: Call,
    payloads: Sequence[bytes],
    step: Step,
    limits: StepLimits,
    *,
    t0: float | None = None,
    phase_s: float = 0.0,
    first_index: int = 0,
) -> StepOutcome:
    """Run one closed or open loop phase of ``step`` (see :mod:`loadtest.runner`)."""
    if step.rate is not None:
        return await run_open_loop(call, payloads, step.rate, limits, t0=t0, phase_s=phase_s, first_index=first_index)
    return await run_closed_loop(call, payloads, step.concurrency or 1, limits, first_index=first_index)


def warmup_limits(limits: StepLimits, warmup_s: float) -> StepLimits:
    """The limits of the warm-up phase: ``warmup_s`` seconds, no response kept."""
    return replace(limits, duration_s=warmup_s, requests=None, samples=0)


class Executor(Protocol):
    """Runs steps against one target."""

    async def run(self, step: Step, limits: StepLimits, warmup_s: float, measure_begins: MeasureHook) -> StepOutcome:
        """Warm up, await ``measure_begins`` (nothing in flight), then measure the step."""
        ...

    async def close(self) -> None:
        """Release channels and processes."""
        ...


class InProcessExecutor:
    """The generator in this process's event loop."""

    def __init__(self, connection: Connection, method_path: str, payloads: Sequence[bytes]) -> None:
        self._clients = connection.open()
        self.call = connection.caller(self._clients, method_path)
        self._payloads = payloads

    async def run(self, step: Step, limits: StepLimits, warmup_s: float, measure_begins: MeasureHook) -> StepOutcome:
        """Warm up, await ``measure_begins`` (nothing in flight), then measure the step."""
        if warmup_s > 0:
            await run_phase(self.call, self._payloads, step, warmup_limits(limits, warmup_s))
        await measure_begins()
        return await run_phase(self.call, self._payloads, step, limits)

    async def close(self) -> None:
        """Close the clients."""
        await close_all(self._clients)


@dataclass(frozen=True)
class _Share:
    index: int
    step: Step
    limits: StepLimits
    phase_s: float


def split_step(step: Step, limits: StepLimits, processes: int) -> list[_Share]:
    """Divide a step between generator processes.

    Concurrency and request counts are split as evenly as integers allow (never a process with
    nothing to do); an open loop's rate is divided and each process's schedule shifted by
    ``i / rate`` so that their arrivals interleave into the original schedule.

    Args:
        step: The whole step.
        limits: The whole step's limits.
        processes: Processes wanted.

    Returns:
        One share per process actually used.
    """
    width = processes
    if step.concurrency is not None:
        width = min(width, step.concurrency)
    if limits.requests is not None:
        width = min(width, limits.requests)
    width = max(width, 1)

    def part(total: int, i: int) -> int:
        return total // width + (i < total % width)

    shares = []
    for i in range(width):
        share_limits = replace(limits, samples=part(limits.samples, i))
        if limits.requests is not None:
            share_limits = replace(share_limits, requests=part(limits.requests, i))
        if step.rate is not None:
            shares.append(_Share(i, Step(rate=step.rate / width), share_limits, i / step.rate))
        else:
            shares.append(_Share(i, Step(concurrency=part(step.concurrency or 1, i)), share_limits, 0.0))
    return shares


def merge_outcomes(outcomes: Sequence[StepOutcome]) -> StepOutcome:
    """Join the measurements of processes that ran the same step at the same time."""
    codes: Counter[str] = Counter()
    for outcome in outcomes:
        codes.update(outcome.codes)
    return StepOutcome(
        latencies_s=np.concatenate([o.latencies_s for o in outcomes]) if outcomes else np.empty(0),
        codes=codes,
        wall_s=max((o.wall_s for o in outcomes), default=0.0),
        cpu_s=sum(o.cpu_s for o in outcomes),
        send_lag_s=np.concatenate([o.send_lag_s for o in outcomes]) if outcomes else np.empty(0),
        samples=[s for o in outcomes for s in o.samples],
        processes=len(outcomes),
        max_process_cpu=max((o.max_process_cpu for o in outcomes), default=0.0),
    )


@dataclass(frozen=True)
class _ChildJob:
    connection: Connection
    method_path: str
    payloads: Sequence[bytes]
    share: _Share
    warmup_s: float


async def _child_run(job: _ChildJob, ready: Any, go: Any, start_at: Any) -> StepOutcome:
    executor = InProcessExecutor(job.connection, job.method_path, job.payloads)
    share = job.share
    try:
        if job.warmup_s > 0:
            await run_phase(executor.call, job.payloads, share.step, warmup_limits(share.limits, job.warmup_s))
        await asyncio.to_thread(ready.wait, _SPAWN_TIMEOUT_S)
        await asyncio.to_thread(go.wait, _SPAWN_TIMEOUT_S)
        return await run_phase(
            executor.call,
            job.payloads,
            share.step,
            share.limits,
            t0=start_at.value,
            phase_s=share.phase_s,
            first_index=share.index * _INDEX_STRIDE,
        )
    finally:
        await executor.close()


def _child_main(job: _ChildJob, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    try:
        results.put((job.share.index, asyncio.run(_child_run(job, ready, go, start_at)), None))
    except BaseException as error:  # report any failure to the parent rather than dying silently
        ready.abort()
        go.abort()
        results.put((job.share.index, None, f"{type(error).__name__}: {error}"))


class ProcessExecutor:
    """The generator in ``processes`` separate processes, started afresh for each step."""

    def __init__(self, connection: Connection, method_path: str, payloads: Sequence[bytes], processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes={processes} must be >= 1")
        self._job = {"connection": connection, "method_path": method_path, "payloads": list(payloads)}
        self._timeout_s = connection.timeout_s
        self._processes = processes
        self._context = multiprocessing.get_context("spawn")

    async def run(self, step: Step, limits: StepLimits, warmup_s: float, measure_begins: MeasureHook) -> StepOutcome:
        """Start the processes, warm up, await ``measure_begins``, measure, merge.

        Raises:
            RuntimeError: If a generator process fails or does not report in time.
        """
        shares = split_step(step, limits, self._processes)
        ready = self._context.Barrier(len(shares) + 1)
        go = self._context.Barrier(len(shares) + 1)
        start_at = self._context.Value("d", 0.0)
        results = self._context.Queue()
        children = [
            self._context.Process(
                target=_child_main,
                args=(_ChildJob(**self._job, share=share, warmup_s=warmup_s), ready, go, start_at, results),
                daemon=True,
            )
            for share in shares
        ]
        for child in children:
            child.start()
        try:
            await self._barrier(ready, results, warmup_s + _SPAWN_TIMEOUT_S)
            await measure_begins()
            start_at.value = time.perf_counter() + _START_SLACK_S
            await self._barrier(go, results, _SPAWN_TIMEOUT_S)
            budget = (limits.duration_s or 3600.0) + self._timeout_s + _SPAWN_TIMEOUT_S
            outcomes = [await asyncio.to_thread(self._result, results, budget) for _ in children]
        finally:
            for child in children:
                child.join(timeout=5)
                if child.is_alive():
                    child.terminate()
        return merge_outcomes(outcomes)

    async def _barrier(self, barrier: Any, results: Any, timeout_s: float) -> None:
        try:
            await asyncio.to_thread(barrier.wait, timeout_s)
        except threading.BrokenBarrierError:
            self._result(results, 5.0)  # raises the child's error when there is one
            raise RuntimeError("a generator process did not reach its start barrier in time") from None

    @staticmethod
    def _result(results: Any, timeout_s: float) -> StepOutcome:
        try:
            _, outcome, error = results.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError(f"no result from a generator process within {timeout_s:.0f} s") from None
        if error is not None:
            raise RuntimeError(f"a generator process failed: {error}")
        return outcome

    async def close(self) -> None:
        """Nothing to release: processes live for one step."""
