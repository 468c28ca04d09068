"""The load generator: closed loop (N calls in flight) and open loop (a fixed arrival schedule).

Both send pre-serialised requests through a raw gRPC method (no protobuf work per call) and time
each call with ``time.perf_counter``. In the open loop the latency of a call runs from its
*scheduled* send time, not from when the generator got round to sending it: if the server (or the
generator) stalls, the calls that should have gone out meanwhile are charged the wait, as real users
would be. Measuring from the actual send instead hides exactly the stalls a load test is for
("coordinated omission").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np

Call = Callable[[int, bytes], Awaitable[bytes]]
"""Sends payload bytes as call number ``i`` and returns the response bytes; raises on a failed call."""

_SAMPLE_STRIDE = 7


@dataclass(frozen=True)
class StepLimits:
    """When a step stops: at the first limit reached.

    Attributes:
        duration_s: Longest time the step sends for, in seconds; None for no time limit.
        requests: Most calls the step sends; None for no count limit.
        max_in_flight: Open loop only: calls allowed in flight at once; a scheduled call beyond it is
            not sent and counted as ``NOT_SENT_OVERLOAD`` (the server is hopelessly behind).
        samples: Responses kept for the sanity check.
    """

    duration_s: float | None = 10.0
    requests: int | None = None
    max_in_flight: int = 10_000
    samples: int = 64

    def __post_init__(self) -> None:
        if self.duration_s is None and self.requests is None:
            raise ValueError("a step needs a bound: give a duration (--duration) or a request count (--requests)")
        if self.duration_s is not None and not 0 < self.duration_s <= 3600:
            raise ValueError(f"duration {self.duration_s} s outside (0, 3600]: split a longer soak into runs")
        if self.requests is not None and not 0 < self.requests <= 100_000_000:
            raise ValueError(f"requests {self.requests} outside 1..100000000")
        if self.max_in_flight < 1 or self.samples < 0:
            raise ValueError(f"max_in_flight={self.max_in_flight} must be >= 1 and samples={self.samples} >= 0")


@dataclass
class StepOutcome:
    """Raw measurements of one step.

    Attributes:
        latencies_s: Latency of each successful call, seconds (open loop: from its scheduled time).
        codes: Calls by final status code name (``OK``, ``UNAVAILABLE``, ...).
        wall_s: From the first send (or scheduled send) to the last completion.
        cpu_s: CPU time the generator process used meanwhile (all its threads).
        send_lag_s: Open loop: how late each call left compared with its schedule.
        samples: ``(call number, response bytes)`` of a sample of successful calls.
        processes: Generator processes the outcome merges.
        max_process_cpu: Highest CPU use of one generator process, in cores.
    """

    latencies_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    codes: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    send_lag_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    samples: list[tuple[int, bytes]] = field(default_factory=list)
    processes: int = 1
    max_process_cpu: float = 0.0


class _Recorder:
    def __init__(self, samples: int) -> None:
        self.latencies: list[float] = []
        self.codes: Counter[str] = Counter()
        self.samples: list[tuple[int, bytes]] = []
        self.max_samples = samples
        self.first = math.inf
        self.last = -math.inf

    async def timed(self, call: Call, index: int, payload: bytes, start: float) -> None:
        self.first = min(self.first, start)
        try:
            response = await call(index, payload)
        except grpc.aio.AioRpcError as error:
            self.codes[error.code().name] += 1
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a client-side failure is a result to count, not a crash
            self.codes[f"CLIENT_{type(error).__name__}"] += 1
        else:
            self.latencies.append(time.perf_counter() - start)
            self.codes["OK"] += 1
            if len(self.samples) < self.max_samples and index % _SAMPLE_STRIDE == 0:
                self.samples.append((index, response))
        self.last = max(self.last, time.perf_counter())

    def outcome(self, cpu_s: float, send_lag: Sequence[float] = ()) -> StepOutcome:
        wall = self.last - self.first if self.latencies or self.codes else 0.0
        return StepOutcome(
            latencies_s=np.asarray(self.latencies),
            codes=self.codes,
            wall_s=max(wall, 0.0),
            cpu_s=cpu_s,
            send_lag_s=np.asarray(send_lag),
            samples=self.samples,
            max_process_cpu=cpu_s / wall if wall > 0 else 0.0,
        )


async def run_closed_loop(
    call: Call, payloads: Sequence[bytes], concurrency: int, limits: StepLimits, *, first_index: int = 0
) -> StepOutcome:
    """Keep ``concurrency`` calls in flight until a limit is reached.

    Each of ``concurrency`` workers sends, waits for the answer, and sends again at once: the offered
    load adapts to the server's speed, which finds its throughput at that concurrency.

    Args:
        call: Sends one payload (see :data:`Call`).
        payloads: Pre-serialised requests, sent round-robin.
        concurrency: Calls in flight.
        limits: When to stop.
        first_index: Number of the first call (generator processes number their calls apart).

    Returns:
        The measurements.

    Raises:
        ValueError: If ``concurrency`` < 1 or ``payloads`` is empty.
    """
    if concurrency < 1 or not payloads:
        raise ValueError(f"closed loop needs concurrency >= 1 (got {concurrency}) and at least one payload")
    recorder = _Recorder(limits.samples)
    budget = first_index + (limits.requests if limits.requests is not None else 2**62)
    counter = iter(range(first_index, budget))
    cpu0 = time.process_time()
    end = time.perf_counter() + (limits.duration_s if limits.duration_s is not None else math.inf)

    async def worker() -> None:
        for index in counter:
            start = time.perf_counter()
            if start >= end:
                return
            await recorder.timed(call, index, payloads[index % len(payloads)], start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return recorder.outcome(time.process_time() - cpu0)


async def run_open_loop(
    call: Call,
    payloads: Sequence[bytes],
    rate: float,
    limits: StepLimits,
    *,
    t0: float | None = None,
    phase_s: float = 0.0,
    first_index: int = 0,
) -> StepOutcome:
    """Send calls on a fixed schedule, ``rate`` per second, whatever the server does.

    Call ``i`` is due at ``t0 + phase_s + i / rate``; its latency is measured from that time. The
    schedule ends after ``duration_s * rate`` calls (or ``requests``), then the loop waits for the
    answers.

    Args:
        call: Sends one payload (see :data:`Call`).
        payloads: Pre-serialised requests, sent round-robin.
        rate: Arrivals per second.
        limits: When to stop; ``max_in_flight`` caps the calls outstanding.
        t0: Start of the schedule on the ``time.perf_counter`` clock (system-wide on Linux, so
            several generator processes can share one schedule); None for now.
        phase_s: Offset of this generator's first arrival (processes interleave their schedules).
        first_index: Number of the first call.

    Returns:
        The measurements, with ``send_lag_s`` (actual minus scheduled send time) per call sent.

    Raises:
        ValueError: If ``rate`` <= 0 or ``payloads`` is empty.
    """
    if rate <= 0 or not payloads:
        raise ValueError(f"open loop needs rate > 0 (got {rate}) and at least one payload")
    total = limits.requests if limits.requests is not None else math.inf
    if limits.duration_s is not None:
        total = min(total, max(1, math.ceil(limits.duration_s * rate)))
    recorder = _Recorder(limits.samples)
    lags: list[float] = []
    in_flight: set[asyncio.Task[None]] = set()

    async def one(index: int, due: float) -> None:
        lags.append(time.perf_counter() - due)
        await recorder.timed(call, index, payloads[index % len(payloads)], due)

    cpu0 = time.process_time()
    start = (time.perf_counter() if t0 is None else t0) + phase_s
    index = 0
    while index < total:
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if len(in_flight) >= limits.max_in_flight:
            recorder.codes["NOT_SENT_OVERLOAD"] += 1
        else:
            task = asyncio.create_task(one(first_index + index, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        index += 1
    if in_flight:
        await asyncio.gather(*in_flight)
    return recorder.outcome(time.process_time() - cpu0, lags)
