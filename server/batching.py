"""Dynamic batching: rows of concurrent requests joined into one runtime call.

One :class:`DynamicBatcher` serves one signature of one loaded model version, in the manner
of Ray Serve's ``_BatchQueue`` and PyTriton's dynamic batcher: requests wait in an asyncio
queue; a batch runs when it holds ``max_batch_size`` rows or when its oldest request has
waited ``max_queue_delay_us``, whichever comes first; inputs are joined on dim 0, the runtime
runs in a thread pool (ONNX Runtime and torch release the GIL), and the output rows are split
back to their callers. While a batch runs (``batches_in_flight`` at a time), new requests accumulate
for the next one, so a busy server batches even with no delay at all.

Two refinements come from profiles of the serving benchmark (bench/serving.py):

- Handing a batch to a worker thread and back costs the event loop ~100-200 us of wake-ups, more than
  a small MF or dense batch takes to compute (10-40 us). A batch whose rows took less than
  ``inline_max_us`` last time (a moving average per power-of-two batch size) runs on the event loop
  itself; requests arriving meanwhile still queue up in gRPC and join the next batch.
- A Recommend row scores the whole catalogue, so its cost is ``row_cost`` (catalogue size) cells:
  batches are closed at ``max_batch_cells`` and a larger request is computed in chunks of that size,
  which keeps a dense model's [users, items, hidden] intermediate in cache and bounded in memory.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
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
    inline_max_us: int = 200
    max_batch_cells: int = 65536


@dataclass(slots=True)
class _Pending:
    inputs: Inputs
    rows: int
    future: asyncio.Future[np.ndarray]
    enqueued: float
    taken: bool = False
    taken_at: float = 0.0
    batch_rows: int = 0


@dataclass(frozen=True)
class CallBatch:
    """How one call's rows were batched: what a trace of the call records.

    Attributes:
        rows: the call's own rows.
        batch_rows: rows of the batch they ran in (with other calls' rows).
        queue_s: seconds they waited in the queue before their batch started.
    """

    rows: int
    batch_rows: int
    queue_s: float


CALL_BATCHES: contextvars.ContextVar[list[CallBatch] | None] = contextvars.ContextVar("call_batches", default=None)
"""Set to a list by whoever wants to know how a call was batched (the tracing interceptor); ``submit``
appends one :class:`CallBatch` per batcher call it makes. Unset (None), nothing is recorded."""


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

    The delay is a maximum: when requests arrive further apart on average than the delay (a
    moving average of the gaps), waiting would only add latency, so a lone row goes at once.

    Callback-driven rather than a consumer task: a request arms a timer for its batch's deadline
    (or a flush on the next loop iteration when the batch is full or there is no delay), the flush
    hands the batch to the thread pool, and the pool's completion callback splits the output and
    arms the next flush. This costs two or three event-loop wake-ups per batch, which matters when
    gRPC itself takes a few hundred microseconds of CPU per call.

    Args:
        run: The runtime call: joined inputs -> output with one row per input row. Runs in
            ``executor``, never on the event loop.
        settings: Batch size, delay, queue bound and concurrency.
        executor: Thread pool for ``run``.
        name: Names the model, version and signature in error messages, e.g. ``'mf' v3 predict``.
        observer: Optional receiver of per-batch statistics.
        row_cost: Cells one row produces (the catalogue size for Recommend, 1 for Predict),
            compared with ``settings.max_batch_cells``.
    """

    def __init__(
        self,
        run: RunFn,
        settings: BatchingSettings,
        executor: Executor,
        *,
        name: str = "",
        observer: BatchObserver | None = None,
        row_cost: int = 1,
    ) -> None:
        if row_cost < 1:
            raise ValueError(f"row_cost must be at least 1, got {row_cost}")
        self._run = run
        self.settings = settings
        self._executor = executor
        self.name = name
        self._observer = observer
        self._max_batch = max(1, min(settings.max_batch_size, settings.max_batch_cells // row_cost))
        self._chunk_rows = max(1, settings.max_batch_cells // row_cost)
        self._inline_s = settings.inline_max_us / 1e6
        self._cost_s: dict[int, float] = {}  # batch rows' bit_length -> moving average of its inference time
        self._pool_batches = 0
        self._delay_s = settings.max_queue_delay_us / 1e6 if settings.max_batch_size > 1 else 0.0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        self._in_flight = 0
        self._idle = asyncio.Event()  # set while no batch runs: close() waits on it
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._closed = False
        self._last_arrival = 0.0
        self._arrival_gap = 0.0  # moving average of the time between requests, capped at 4 delays

    @property
    def max_batch_rows(self) -> int:
        """Rows one batch may hold: ``max_batch_size``, capped at ``max_batch_cells // row_cost``."""
        return self._max_batch

    @property
    def queued_rows(self) -> int:
        """Rows waiting for a batch (cancelled requests' rows no longer count)."""
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
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = self._loop.create_future()
        now = time.perf_counter()
        gap = min(now - self._last_arrival, 4 * self._delay_s)
        self._arrival_gap = 0.8 * self._arrival_gap + 0.2 * gap
        self._last_arrival = now
        pending = _Pending(inputs, rows, future, now)
        self._queue.append(pending)
        self._queued_rows += rows
        self._schedule()
        try:
            output = await future
        except asyncio.CancelledError:
            if not pending.taken:  # still queued: free its room now; the flush drops the entry
                self._queued_rows -= pending.rows
                pending.rows = 0
            raise
        record = CALL_BATCHES.get()
        if record is not None:
            record.append(CallBatch(rows, pending.batch_rows, pending.taken_at - pending.enqueued))
        return output

    def _schedule(self) -> None:
        """Arms the next flush: at once when a batch is full or due, else at the oldest row's deadline."""
        if not self._queue or self._in_flight >= self.settings.batches_in_flight:
            return  # the running batch's completion schedules the next one
        wait = 0.0
        if self._delay_s and self._queued_rows < self._max_batch and self._arrival_gap < self._delay_s:
            wait = self._queue[0].enqueued + self._delay_s - time.perf_counter()
        if self._timer is not None:
            if wait > 0:
                return  # armed already, for the same oldest row
            self._timer.cancel()
        self._timer = self._loop.call_later(wait, self._flush) if wait > 0 else self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self._in_flight >= self.settings.batches_in_flight:
            return
        batch = self._take()
        if not batch:
            return
        self._in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        parts = [item.inputs for item in batch]
        if self._runs_inline(sum(item.rows for item in batch)):
            try:
                output, inference_s = self._compute(parts)
            except Exception as error:  # every waiting caller gets the batch's error
                self._finish_with_error(batch, error)
                return
            self._deliver(batch, started, output, inference_s)
            return
        try:
            work = self._executor.submit(self._compute, parts)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._finish_with_error(batch, ModelNotReady(f"model {self.name} is shutting down"))
            return
        work.add_done_callback(lambda done: self._wake(batch, started, done))
        self._schedule()

    def _runs_inline(self, rows: int) -> bool:
        """Whether a batch of ``rows`` is cheap enough to run on the event loop.

        Unknown sizes go to the pool, which measures them. One pool batch in 64 of an almost-cheap
        size runs inline instead, so that an estimate inflated by a busy moment can come back down.
        """
        if not self._inline_s:
            return False
        estimate = self._cost_s.get(rows.bit_length())
        if estimate is None:
            return False
        if estimate < self._inline_s:
            return True
        self._pool_batches += 1
        return estimate < 4 * self._inline_s and self._pool_batches % 64 == 0

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
                item.rows = 0  # counted out once, here or in submit(), whichever sees it first
                continue
            if batch and rows + item.rows > self._max_batch:
                break
            queue.popleft()
            self._queued_rows -= item.rows
            item.taken = True
            batch.append(item)
            rows += item.rows
            if rows >= self._max_batch:
                break
        now = time.perf_counter()
        for item in batch:
            item.taken_at, item.batch_rows = now, rows
        return batch

    def _compute(self, parts: list[Inputs]) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        inputs = join_inputs(parts)
        rows = len(inputs[0])
        if rows <= self._chunk_rows:
            output = self._run(inputs)
        else:  # one request above max_batch_cells: bounded memory, same result
            chunks = [
                self._run(tuple(array[start : start + self._chunk_rows] for array in inputs))
                for start in range(0, rows, self._chunk_rows)
            ]
            output = np.concatenate(chunks)
        return output, time.perf_counter() - started

    def _wake(self, batch: list[_Pending], started: float, done: concurrent.futures.Future) -> None:
        """Runs in the pool thread when a batch is done: hands the result to the event loop."""
        try:
            self._loop.call_soon_threadsafe(self._finish, batch, started, done)
        except RuntimeError:  # the loop is closed: nobody waits for these rows any more
            _LOGGER.debug("batch of model %s finished after its event loop closed", self.name)

    def _finish(self, batch: list[_Pending], started: float, done: concurrent.futures.Future) -> None:
        try:
            output, inference_s = done.result()
        except Exception as error:  # every waiting caller gets the batch's error
            self._finish_with_error(batch, error)
            return
        self._deliver(batch, started, output, inference_s)

    def _deliver(self, batch: list[_Pending], started: float, output: np.ndarray, inference_s: float) -> None:
        """Splits a batch's output rows back to its callers and arms the next flush."""
        rows = sum(item.rows for item in batch)
        if len(output) != rows:
            error = RuntimeError(f"model {self.name} returned {len(output)} rows for {rows} input rows")
            self._finish_with_error(batch, error)
            return
        try:
            bucket = rows.bit_length()
            previous = self._cost_s.get(bucket)
            self._cost_s[bucket] = inference_s if previous is None else 0.8 * previous + 0.2 * inference_s
            offset = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result(output[offset : offset + item.rows])
                offset += item.rows
            if self._observer is not None:
                self._observer.observe_batch(rows, inference_s, [started - item.enqueued for item in batch])
        finally:
            self._batch_ended()

    def _finish_with_error(self, batch: list[_Pending], error: BaseException) -> None:
        try:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
        finally:
            self._batch_ended()

    def _batch_ended(self) -> None:
        """Counts a batch out (its callers have their results) and arms the next flush."""
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        self._schedule()

    async def close(self) -> None:
        """Stops taking batches; requests still queued fail with UNAVAILABLE, running batches finish.

        Returns as soon as the last running batch has delivered its rows (woken by that batch, not
        by a timer), so unloading a version takes no longer than its slowest running batch.
        """
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ModelNotReady(f"model {self.name} was unloaded before this request ran"))
        self._queued_rows = 0
        await self._idle.wait()
