"""Unit tests of the dynamic batcher: when batches go, what they hold, and where errors land."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np
import pytest

from server.batching import BatchingSettings, DynamicBatcher, join_inputs
from server.errors import ModelNotReady, QueueFull


class Recorder:
    """A fake runtime: doubles its input, records the rows and thread of every call, can be held or fail."""

    def __init__(self, fail: Exception | None = None, rows_out: int | None = None, seconds: float = 0.0) -> None:
        self.calls: list[np.ndarray] = []
        self.threads: list[int] = []
        self.seconds = seconds
        self.release = threading.Event()
        self.release.set()
        self.fail = fail
        self.rows_out = rows_out

    def __call__(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        self.release.wait(10)
        self.threads.append(threading.get_ident())
        self.calls.append(inputs[0].copy())
        if self.seconds:
            time.sleep(self.seconds)
        if self.fail is not None:
            raise self.fail
        out = inputs[0].astype(np.float32) * 2
        return out[: self.rows_out] if self.rows_out is not None else out


@pytest.fixture
def executor():
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown(wait=True)


class HeldExecutor(Executor):
    """Runs nothing until the test calls :meth:`finish`: batches "in the pool" wait for the test, not a clock."""

    def __init__(self) -> None:
        self.held: list[tuple[concurrent.futures.Future, object, tuple]] = []

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.held.append((future, fn, args))
        return future

    def finish(self) -> None:
        """Runs every held batch here, on the event loop's thread; their callbacks run at once."""
        held, self.held = self.held, []
        for future, fn, args in held:
            future.set_result(fn(*args))


class ImmediateExecutor(Executor):
    """Runs each batch at once inside ``submit``: a batch's result is on the loop one iteration later."""

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


async def spin(iterations: int = 20) -> None:
    """Lets the event loop run ``iterations`` times without letting any timer's time pass on purpose."""
    for _ in range(iterations):
        await asyncio.sleep(0)


@pytest.fixture
async def make():
    """``make(recorder, executor, row_cost=1, **settings)``: a batcher closed when the test ends, whatever happens.

    Every run goes to the pool unless ``inline_max_us`` is given.
    """
    made: list[DynamicBatcher] = []

    def build(recorder: Recorder, executor: Executor, row_cost: int = 1, **settings: int) -> DynamicBatcher:
        settings.setdefault("inline_max_us", 0)
        batcher = DynamicBatcher(
            recorder, BatchingSettings(**settings), executor, name="'m' v1 predict", row_cost=row_cost
        )
        made.append(batcher)
        return batcher

    yield build
    for batcher in made:
        await asyncio.wait_for(batcher.close(), 10)


def rows(*values: int) -> tuple[np.ndarray]:
    return (np.array(values, dtype=np.int64),)


async def test_batch_waits_for_delay_then_full_batch_goes_at_once(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=4, max_queue_delay_us=5_000_000)
    first = asyncio.ensure_future(batcher.submit(rows(1, 2)))
    await asyncio.sleep(0.1)
    assert recorder.calls == [] and not first.done(), "a batch below max_batch_size went before its delay"
    second = asyncio.ensure_future(batcher.submit(rows(3, 4)))
    results = await asyncio.wait_for(asyncio.gather(first, second), timeout=2.0)
    assert [c.tolist() for c in recorder.calls] == [[1, 2, 3, 4]]
    np.testing.assert_array_equal(results[0], [2, 4])
    np.testing.assert_array_equal(results[1], [6, 8])
    await batcher.close()


async def test_delay_flushes_a_partial_batch(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=64, max_queue_delay_us=20_000)
    result = await asyncio.wait_for(batcher.submit(rows(5)), timeout=2.0)
    np.testing.assert_array_equal(result, [10])
    assert len(recorder.calls) == 1
    await batcher.close()


async def test_requests_queued_while_a_batch_runs_join_the_next_batch(executor, make):
    recorder = Recorder()
    recorder.release.clear()
    batcher = make(recorder, executor, max_batch_size=100, max_queue_delay_us=0)
    first = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)
    later = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    recorder.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *later), timeout=5.0)
    assert [c.tolist() for c in recorder.calls] == [[0], [1, 2, 3, 4, 5]]
    assert [r.tolist() for r in results] == [[0.0], [2.0], [4.0], [6.0], [8.0], [10.0]]
    await batcher.close()


async def test_runtime_error_reaches_every_caller(executor, make):
    recorder = Recorder(fail=RuntimeError("boom"))
    batcher = make(recorder, executor, max_batch_size=3, max_queue_delay_us=5_000_000)
    outcomes = await asyncio.gather(*(batcher.submit(rows(i)) for i in range(3)), return_exceptions=True)
    assert len(recorder.calls) == 1
    assert all(isinstance(o, RuntimeError) and str(o) == "boom" for o in outcomes)
    await batcher.close()


async def test_wrong_number_of_output_rows_fails_the_batch(executor, make):
    recorder = Recorder(rows_out=1)
    batcher = make(recorder, executor, max_batch_size=2, max_queue_delay_us=5_000_000)
    outcomes = await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "1 rows for 2 input rows" in str(o) for o in outcomes)
    await batcher.close()


async def test_queue_full_is_refused_with_queue_full(executor, make):
    recorder = Recorder()
    recorder.release.clear()
    batcher = make(recorder, executor, max_batch_size=2, max_queue_delay_us=0, max_queue_rows=4)
    running = asyncio.ensure_future(batcher.submit(rows(0, 0)))
    await asyncio.sleep(0.05)  # the first batch is now held inside the runtime
    queued = asyncio.ensure_future(batcher.submit(rows(1, 2, 3, 4)))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull, match=r"'m' v1 predict.*4 rows waiting, max_queue_rows=4"):
        await batcher.submit(rows(9))
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(running, queued), timeout=5.0)
    assert batcher.queued_rows == 0
    await batcher.close()


async def test_batching_off_runs_each_request_alone(executor, make):
    recorder = Recorder()
    recorder.release.clear()
    batcher = make(recorder, executor, max_batch_size=1, max_queue_delay_us=5_000_000)
    tasks = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(4)]
    await asyncio.sleep(0.05)
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5.0)
    assert sorted(len(c) for c in recorder.calls) == [1, 1, 1, 1]
    await batcher.close()


async def test_oversized_request_runs_as_its_own_batch(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=4, max_queue_delay_us=5_000_000)
    result = await asyncio.wait_for(batcher.submit(rows(*range(10))), timeout=2.0)
    assert [len(c) for c in recorder.calls] == [10]
    assert result.shape == (10,)
    await batcher.close()


async def test_cancelled_request_rows_are_not_computed(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=3, max_queue_delay_us=5_000_000)
    doomed = asyncio.ensure_future(batcher.submit(rows(7)))
    await asyncio.sleep(0)
    doomed.cancel()
    kept = [asyncio.ensure_future(batcher.submit(rows(i))) for i in (1, 2, 3)]
    await asyncio.wait_for(asyncio.gather(*kept), timeout=2.0)
    assert [c.tolist() for c in recorder.calls] == [[1, 2, 3]]
    assert batcher.queued_rows == 0
    await batcher.close()


async def test_cancellation_seen_by_a_flush_first_is_counted_out_once(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=2, max_queue_delay_us=5_000_000)
    doomed = asyncio.ensure_future(batcher.submit(rows(1)))
    await asyncio.sleep(0)
    kept = asyncio.ensure_future(batcher.submit(rows(2, 3)))
    await asyncio.sleep(0)  # kept is queued: the batch is full, a flush is scheduled
    doomed.cancel()  # its future is cancelled now, but the task unwinds only after that flush
    await asyncio.wait_for(kept, timeout=2.0)
    await asyncio.gather(doomed, return_exceptions=True)
    assert batcher.queued_rows == 0
    assert [c.tolist() for c in recorder.calls] == [[2, 3]]
    await batcher.close()


async def test_cancelled_request_frees_its_queue_room_at_once(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=8, max_queue_delay_us=5_000_000, max_queue_rows=8)
    doomed = asyncio.ensure_future(batcher.submit(rows(*range(6))))
    await asyncio.sleep(0)
    assert batcher.queued_rows == 6
    doomed.cancel()
    await asyncio.sleep(0)
    assert batcher.queued_rows == 0
    kept = asyncio.ensure_future(batcher.submit(rows(*range(8))))  # would not fit beside the cancelled rows
    await asyncio.wait_for(kept, timeout=2.0)
    assert [len(c) for c in recorder.calls] == [8]
    await batcher.close()


async def test_close_fails_queued_requests_and_refuses_new_ones(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=8, max_queue_delay_us=5_000_000)
    queued = asyncio.ensure_future(batcher.submit(rows(1)))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(ModelNotReady, match="unloaded"):
        await queued
    with pytest.raises(ModelNotReady, match="unloading"):
        await batcher.submit(rows(2))
    assert recorder.calls == []


def test_join_pads_histories_of_different_lengths():
    a = (np.array([[1, 2, 3]]), np.array([3]))
    b = (np.array([[4], [5]]), np.array([1, 1]))
    items, lengths = join_inputs([a, b])
    np.testing.assert_array_equal(items, [[1, 2, 3], [4, 0, 0], [5, 0, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 1])
    assert join_inputs([a]) is a


async def test_sparse_requests_do_not_wait_for_a_batch_that_will_not_come(make):
    recorder = Recorder()
    batcher = make(recorder, ImmediateExecutor(), max_batch_size=8, max_queue_delay_us=100_000)
    went_at_once = []
    for value in range(8):  # one request per 0.15 s or more: further apart than the 0.1 s delay
        await asyncio.sleep(0.15)
        request = asyncio.ensure_future(batcher.submit(rows(value)))
        await spin()  # a flush armed for the delay cannot have run yet; one armed at once has
        went_at_once.append(request.done())
        await asyncio.wait_for(request, timeout=10)
    # The first request waits for company (nothing is known of the gaps yet); by the third, the moving
    # average of the gaps exceeds the delay whatever the machine's speed, and rows go alone at once.
    assert not went_at_once[0] and all(went_at_once[2:]), went_at_once
    assert [len(c) for c in recorder.calls] == [1] * 8


async def test_cheap_batches_run_on_the_event_loop_once_measured(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=8, max_queue_delay_us=0, inline_max_us=50_000)
    for value in range(3):
        np.testing.assert_array_equal(await asyncio.wait_for(batcher.submit(rows(value)), 2.0), [2 * value])
    loop_thread = threading.get_ident()
    assert recorder.threads[0] != loop_thread, "a batch of a never-measured size ran on the event loop"
    assert recorder.threads[1:] == [loop_thread, loop_thread], "cheap measured batches still went to the pool"
    await asyncio.wait_for(batcher.submit(rows(1, 2, 3, 4)), 2.0)  # a new size (bucket 3): measured first
    assert recorder.threads[-1] != loop_thread
    await batcher.close()


async def test_slow_batches_and_inline_off_stay_in_the_pool(executor, make):
    loop_thread = threading.get_ident()
    slow = Recorder(seconds=0.005)
    batcher = make(slow, executor, max_batch_size=8, max_queue_delay_us=0, inline_max_us=1_000)
    for value in range(4):
        await asyncio.wait_for(batcher.submit(rows(value)), 2.0)
    assert loop_thread not in slow.threads, "a 5 ms batch blocked the event loop"
    await batcher.close()
    fast = Recorder()
    batcher = make(fast, executor, max_batch_size=8, max_queue_delay_us=0, inline_max_us=0)
    for value in range(4):
        await asyncio.wait_for(batcher.submit(rows(value)), 2.0)
    assert loop_thread not in fast.threads, "inline_max_us=0 still ran batches on the event loop"
    await batcher.close()


async def test_inline_errors_reach_the_callers_and_the_batcher_goes_on(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, max_batch_size=8, max_queue_delay_us=0, inline_max_us=50_000)
    await batcher.submit(rows(1))
    await batcher.submit(rows(2))
    recorder.fail = ValueError("bad row")
    with pytest.raises(ValueError, match="bad row"):
        await asyncio.wait_for(batcher.submit(rows(3)), 2.0)
    assert recorder.threads[-1] == threading.get_ident()
    recorder.fail = None
    np.testing.assert_array_equal(await asyncio.wait_for(batcher.submit(rows(4)), 2.0), [8])
    await batcher.close()


async def test_recommend_batches_close_at_max_batch_cells(executor, make):
    recorder = Recorder()
    batcher = make(
        recorder, executor, row_cost=100, max_batch_size=64, max_batch_cells=300, max_queue_delay_us=5_000_000
    )
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(rows(i)) for i in range(6))), 5.0)
    assert [c.tolist() for c in recorder.calls] == [[0, 1, 2], [3, 4, 5]], "batches ignored max_batch_cells"
    assert [r.tolist() for r in results] == [[0.0], [2.0], [4.0], [6.0], [8.0], [10.0]]
    await batcher.close()


async def test_request_above_max_batch_cells_runs_in_chunks(executor, make):
    recorder = Recorder()
    batcher = make(recorder, executor, row_cost=100, max_batch_size=64, max_batch_cells=300, max_queue_delay_us=0)
    result = await asyncio.wait_for(batcher.submit(rows(*range(7))), 5.0)
    assert [c.tolist() for c in recorder.calls] == [[0, 1, 2], [3, 4, 5], [6]]
    np.testing.assert_array_equal(result, np.arange(7) * 2.0)
    await batcher.close()


async def test_close_returns_when_the_running_batch_delivers_not_on_a_timer(make, monkeypatch):
    recorder = Recorder()
    executor = HeldExecutor()
    batcher = make(recorder, executor, max_batch_size=2, max_queue_delay_us=0)
    running = [asyncio.ensure_future(batcher.submit(rows(i))) for i in (1, 2)]
    await spin()
    assert len(executor.held) == 1, "the full batch was not handed to the pool"
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def recording_call_at(when, callback, *args, **kwargs):
        timers.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", recording_call_at)  # asyncio.sleep(d > 0) and wait_for arm timers here
    closing = asyncio.ensure_future(batcher.close())
    await spin()
    assert not closing.done(), "close returned while a batch was still running"
    executor.finish()
    await spin()  # the batch's completion alone must end close(): no timer's time passes here
    assert closing.done(), "close did not return once the last batch delivered"
    assert [r.result().tolist() for r in running] == [[2.0], [4.0]], "close ended before the rows were delivered"
    assert timers == [], "close() armed a timer to check on the batch instead of being woken by it"


async def test_close_of_an_idle_batcher_returns_at_once(make):
    batcher = make(Recorder(), HeldExecutor(), max_batch_size=2, max_queue_delay_us=0)
    closing = asyncio.ensure_future(batcher.close())
    await spin(2)
    assert closing.done()
