"""Load drivers: many concurrent calls from grpc.aio channels, every answer checked and counted."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from protos.recsys.v1 import service_pb2_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.use_local_subchannel_pool", 1),  # one connection per channel, not one shared by all
]


@dataclass(frozen=True)
class Call:
    """One kind of call in a workload: method name, request and a check of its answer."""

    method: str
    request: Message
    check: Callable[[Message], None] | None = None


@dataclass
class LoadResult:
    """What a run of calls got back.

    Attributes:
        calls: Calls finished.
        codes: Status code name -> calls.
        versions: Model version that answered -> successful calls.
        wrong: Successful calls whose answer failed its check.
        samples: The first few failures and wrong answers, for the assertion message.
        elapsed_s: Wall time of the run.
    """

    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    versions: Counter[int] = field(default_factory=Counter)
    wrong: int = 0
    samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def note(self, text: str) -> None:
        if len(self.samples) < 10:
            self.samples.append(text)

    @property
    def errors(self) -> int:
        return self.calls - self.codes["OK"]

    def summary(self) -> str:
        rate = self.calls / self.elapsed_s if self.elapsed_s else 0.0
        return (
            f"{self.calls} calls in {self.elapsed_s:.1f} s ({rate:.0f}/s), codes {dict(self.codes)}, "
            f"versions {dict(self.versions)}, wrong answers {self.wrong}; first problems: {self.samples}"
        )


async def drive(
    target: str,
    calls: Sequence[Call],
    *,
    concurrency: int,
    duration_s: float | None = None,
    total: int | None = None,
    timeout_s: float = 30.0,
    channels: int = 4,
    metadata: Sequence[tuple[str, str]] | None = None,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Sends ``calls`` round-robin from ``concurrency`` workers until time, count or ``stop`` runs out.

    Args:
        target: ``host:port``.
        calls: The workload, cycled through.
        concurrency: Calls in flight at any time.
        duration_s: Stop starting calls after this long.
        total: Stop after this many calls.
        timeout_s: Deadline of each call.
        channels: Connections to spread the calls over.
        metadata: Sent with every call (e.g. an authorization token).
        stop: Stop starting calls once set.

    Returns:
        Counts of codes, versions and wrong answers.
    """
    if duration_s is None and total is None and stop is None:
        raise ValueError("give duration_s, total or stop, or the load never ends")
    result = LoadResult()
    sequence = itertools.count()
    started = time.monotonic()
    opened = [grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(channels)]
    stubs = [service_pb2_grpc.RecommenderServiceStub(channel) for channel in opened]

    def more() -> int | None:
        if stop is not None and stop.is_set():
            return None
        if duration_s is not None and time.monotonic() - started >= duration_s:
            return None
        number = next(sequence)
        return None if total is not None and number >= total else number

    async def worker(stub: service_pb2_grpc.RecommenderServiceStub) -> None:
        while (number := more()) is not None:
            call = calls[number % len(calls)]
            try:
                response = await getattr(stub, call.method)(call.request, timeout=timeout_s, metadata=metadata)
            except grpc.aio.AioRpcError as error:
                result.codes[error.code().name] += 1
                result.note(f"{call.method}: {error.code().name} {(error.details() or '')[:200]}")
            else:
                result.codes["OK"] += 1
                result.versions[response.model.version] += 1
                if call.check is not None:
                    try:
                        call.check(response)
                    except AssertionError as problem:
                        result.wrong += 1
                        result.note(f"{call.method}: wrong answer from v{response.model.version}: {problem}")
            result.calls += 1

    try:
        await asyncio.gather(*(worker(stubs[i % channels]) for i in range(concurrency)))
    finally:
        result.elapsed_s = time.monotonic() - started
        await asyncio.gather(*(channel.close() for channel in opened))
    return result
