"""Dynamic batching: rows of concurrent requests joined into one runtime call.

One :class:`DynamicBatcher` serves one signature of one loaded model version, in the manner
of Ray Serve's ``_BatchQueue`` and PyTriton's dynamic batcher: requests wait in an asyncio
queue; a batch runs when it holds ``max_batch_size`` rows or when its oldest request has
waited ``max_queue_delay_us``, whichever comes first; inputs are joined on dim 0, the runtime
runs in a thread pool (ONNX Runtime and torch release the GIL), and the output rows are split
back to their callers. While a batch runs, new requests accumulate for the next one, so a busy
server batches even with no delay at all.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from server.errors import ModelNotReady, QueueFull

_LOGGER = logging.getLogger(__name__)

Inputs = tuple[np.ndarray, ...]
RunFn = Callable[[Inputs], np.ndarray]


class BatchObserver(Protocol):
    """Receives one report per runtime call (the metrics implement it)."""

    def observe_batch(self, rows: int, inference_s: float, queue_waits_s: Sequence[float]) -> None:
        """Records a batch of ``rows`` rows that ran ``inference_s`` after its requests waited."""


@dataclass(frozen=True)
class BatchingSettings:
    """How one batcher joins requests (see ``ServerConfig`` for the meaning of each field)."""

    max_batch_size: int = 256
    max_queue_delay_us: int = 500
    max_queue_rows: int = 65536
    batches_in_flight: int = 1


@dataclass(slots=True)
class _Pending:
    inputs: Inputs
    rows: int
    future: asyncio.Future[np.ndarray]
    enqueued: float


def join_inputs(parts: Sequence[Inputs]) -> Inputs:
    """Concatenates the inputs of several requests on dim 0.

    Arrays whose trailing dimensions differ (histories of different lengths) are right-padded
    with zeros to the widest, which the history contract ignores past each row's length.

    Args:
        parts: One tuple of arrays per request, same number and dtypes of arrays in each.

    Returns:
        One tuple of arrays holding every row, in request order.
    """
    if len(parts) == 1:
        return parts[0]
    joined = []
    for column in zip(*parts, strict=True):
        first = column[0]
        if first.ndim > 1 and any(array.shape[1:] != first.shape[1:] for array in column):
            width = max(array.shape[1] for array in column)
            out = np.zeros((sum(len(a) for a in column), width, *first.shape[2:]), dtype=first.dtype)
            offset = 0
            for array in column:
                out[offset : offset + len(array), : array.shape[1]] = array
                offset += len(array)
            joined.append(out)
        else:
            joined.append(np.concatenate(column))
    return tuple(joined)


class DynamicBatcher:
    """Joins concurrent requests for one signature into runtime calls.

    Args:
        run: The runtime call: joined inputs -> output with one row per input row. Runs in
            ``executor``, never on the event loop.
        settings: Batch size, delay, queue bound and concurrency.
        executor: Thread pool for ``run``.
        name: Names the model, version and signature in error messages, e.g. ``'mf' v3 predict``.
        observer: Optional receiver of per-batch statistics.
    """

    def __init__(
        self,
        run: RunFn,
        settings: BatchingSettings,
        executor: Executor,
        *,
        name: str = "",
        observer: BatchObserver | None = None,
    ) -> None:
        self._run = run
        self.settings = settings
        self._executor = executor
        self.name = name
        self._observer = observer
        self._max_batch = settings.max_batch_size
        self._delay_s = settings.max_queue_delay_us / 1e6 if settings.max_batch_size > 1 else 0.0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        self._nonempty: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def queued_rows(self) -> int:
        """Rows waiting for a batch (including those of requests cancelled meanwhile)."""
        return self._queued_rows

    async def submit(self, inputs: Inputs) -> np.ndarray:
        """Queues one request's rows and waits for their outputs.

        Args:
            inputs: Arrays in the signature's input order, all with the same number of rows (>= 1).

        Returns:
            The output rows of this request, in order.

        Raises:
            QueueFull: ``max_queue_rows`` rows are already waiting.
            ModelNotReady: the batcher was closed (its model version is unloading).
            Exception: whatever the runtime raised for the batch holding these rows.
        """
        if self._closed:
            raise ModelNotReady(f"model {self.name} is unloading; retry to reach the newest version")
        rows = len(inputs[0])
        if self._queued_rows + rows > self.settings.max_queue_rows:
            raise QueueFull(
                f"queue of model {self.name} is full ({self._queued_rows} rows waiting, "
                f"max_queue_rows={self.settings.max_queue_rows}); retry with backoff"
            )
        if self._task is None:
            self._start()
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, rows, future, time.perf_counter()))
        self._queued_rows += rows
        self._nonempty.set()
        if self._queued_rows >= self._max_batch:
            self._full.set()
        return await future

    def _start(self) -> None:
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(self.settings.batches_in_flight)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher {self.name}")

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self) -> list[_Pending]:
        while True:
            while not self._queue:
                self._nonempty.clear()
                await self._nonempty.wait()
            if self._delay_s > 0 and self._queued_rows < self._max_batch:
                wait = self._queue[0].enqueued + self._delay_s - time.perf_counter()
                if wait > 0:
                    self._full.clear()
                    timer = asyncio.get_running_loop().call_later(wait, self._full.set)
                    await self._full.wait()
                    timer.cancel()
            batch = self._take()
            if batch:
                return batch

    def _take(self) -> list[_Pending]:
        """Pops the oldest requests up to the batch size; a lone oversized request goes alone."""
        batch: list[_Pending] = []
        rows = 0
        queue = self._queue
        while queue:
            item = queue[0]
            if item.future.done():  # cancelled while waiting: its rows are never computed
                queue.popleft()
                self._queued_rows -= item.rows
                continue
            if batch and rows + item.rows > self._max_batch:
                break
            queue.popleft()
            self._queued_rows -= item.rows
            batch.append(item)
            rows += item.rows
            if rows >= self._max_batch:
                break
        return batch

    def _compute(self, parts: list[Inputs]) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        output = self._run(join_inputs(parts))
        return output, time.perf_counter() - started

    async def _execute(self, batch: list[_Pending]) -> None:
        try:
            live = [item for item in batch if not item.future.done()]
            if not live:
                return
            rows = sum(item.rows for item in live)
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            output, inference_s = await loop.run_in_executor(self._executor, self._compute, [i.inputs for i in live])
            if len(output) != rows:
                raise RuntimeError(f"model {self.name} returned {len(output)} rows for {rows} input rows")
            offset = 0
            for item in live:
                if not item.future.done():
                    item.future.set_result(output[offset : offset + item.rows])
                offset += item.rows
            if self._observer is not None:
                self._observer.observe_batch(rows, inference_s, [started - item.enqueued for item in live])
        except Exception as error:  # every waiting caller gets the batch's error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Stops taking batches; requests still queued fail with UNAVAILABLE, running batches finish."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ModelNotReady(f"model {self.name} was unloaded before this request ran"))
        self._queued_rows = 0
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
