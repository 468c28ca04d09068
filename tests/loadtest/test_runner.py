import asyncio
import time

import numpy as np
import pytest

from loadtest.connection import Connection, close_all
from loadtest.runner import StepLimits, run_closed_loop, run_open_loop
from protos.recsys.v1 import service_pb2

PAYLOADS = [b"a", b"b", b"c"]
PREDICT = service_pb2.PredictRequest(
    model=service_pb2.ModelSpec(name="fake"), user_ids=["1"], item_ids=["2"]
).SerializeToString()


class CountingCall:
    """A fake call taking ``service_s``; records in-flight peaks and what was sent."""

    def __init__(self, service_s: float = 0.0, block_first_s: float = 0.0) -> None:
        self.service_s = service_s
        self.block_first_s = block_first_s
        self.in_flight = 0
        self.peak = 0
        self.sent: list[tuple[int, bytes, float]] = []

    async def __call__(self, index: int, payload: bytes) -> bytes:
        self.sent.append((index, payload, time.perf_counter()))
        if len(self.sent) == 1 and self.block_first_s:
            time.sleep(self.block_first_s)  # a stall that blocks the whole generator, not just this call
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.service_s)
        finally:
            self.in_flight -= 1
        return payload


async def test_closed_loop_keeps_concurrency_and_stops_at_the_request_count():
    call = CountingCall(service_s=0.002)
    outcome = await run_closed_loop(call, PAYLOADS, 5, StepLimits(duration_s=None, requests=60))
    assert outcome.codes == {"OK": 60}
    assert call.peak == 5
    assert len(outcome.latencies_s) == 60
    assert np.all(outcome.latencies_s >= 0.0015)
    assert [p for _, p, _ in sorted(call.sent)] == [PAYLOADS[i % 3] for i in range(60)]
    assert all(response == PAYLOADS[i % 3] for i, response in outcome.samples)


async def test_closed_loop_stops_at_the_duration():
    call = CountingCall(service_s=0.001)
    started = time.perf_counter()
    outcome = await run_closed_loop(call, PAYLOADS, 2, StepLimits(duration_s=0.2))
    returned = time.perf_counter()
    sent = sorted(t for _, _, t in call.sent)
    assert outcome.codes == {"OK": len(sent)} and len(sent) >= 2, "both workers sent and every call was counted"
    # Bounds that follow from the order of events, whatever the machine's speed: the deadline is fixed
    # before the first send, nothing is sent at or after it, and the loop returns only once it has passed.
    assert sent[-1] - sent[0] < 0.2, "a call was sent after the duration"
    assert returned - started >= 0.2, "the loop stopped before the duration"
    assert 0 < outcome.wall_s <= returned - started


async def test_open_loop_sends_on_the_schedule():
    call = CountingCall(service_s=0.005)
    rate = 200.0
    outcome = await run_open_loop(call, PAYLOADS, rate, StepLimits(duration_s=0.25))
    assert outcome.codes["OK"] == 50
    send_times = np.array([t for _, _, t in sorted(call.sent)])
    spacing = np.diff(send_times)
    assert np.median(spacing) == pytest.approx(1 / rate, abs=0.002)
    assert send_times[-1] - send_times[0] == pytest.approx(49 / rate, abs=0.05)
    # Calls overlap (5 ms each, one every 5 ms): a closed loop of one would have halved the rate.
    assert np.median(outcome.send_lag_s) < 0.01


async def test_open_loop_charges_a_generator_stall_to_the_calls_scheduled_during_it():
    call = CountingCall(service_s=0.001, block_first_s=0.2)
    outcome = await run_open_loop(call, PAYLOADS, 100.0, StepLimits(duration_s=0.4))
    assert outcome.codes["OK"] == 40
    # Calls due at 10..190 ms could only leave at ~200 ms: each is charged its wait.
    assert outcome.send_lag_s.max() >= 0.15
    assert np.percentile(outcome.latencies_s, 99) >= 0.15
    late = outcome.latencies_s > 0.05
    assert 10 <= late.sum() <= 25  # about the 19 calls scheduled inside the stall, not the whole run


async def test_open_loop_latency_includes_the_queue_of_a_stalled_server(fake_server):
    server = fake_server(mode="fake", delay_s=0.02, serial=True)  # 50 calls/s at most
    connection = Connection(server.target, timeout_s=5)
    clients = connection.open()
    try:
        call = connection.caller(clients, "/recsys.v1.RecommenderService/Predict")
        await clients[0].channel.channel_ready()
        outcome = await run_open_loop(call, [PREDICT], 100.0, StepLimits(duration_s=0.5))
    finally:
        await close_all(clients)
    assert outcome.codes == {"OK": 50}
    # The generator kept the schedule ...
    assert np.percentile(outcome.send_lag_s, 90) < 0.05
    # ... and every call waited for those ahead of it: the last of 50 finishes ~1 s after the start
    # although it was due at 0.49 s, and a 20 ms service time becomes ~0.5 s of latency.
    assert outcome.latencies_s.max() >= 0.35
    assert np.median(outcome.latencies_s) >= 0.1
    assert outcome.wall_s >= 0.9


async def test_open_loop_caps_calls_in_flight():
    call = CountingCall(service_s=0.5)
    outcome = await run_open_loop(call, PAYLOADS, 200.0, StepLimits(duration_s=0.1, max_in_flight=5))
    assert call.peak == 5
    assert outcome.codes["OK"] == 5
    assert outcome.codes["NOT_SENT_OVERLOAD"] == 15


async def test_client_side_failures_are_counted_not_raised():
    async def broken(index: int, payload: bytes) -> bytes:
        raise ConnectionResetError("boom")

    outcome = await run_closed_loop(broken, PAYLOADS, 2, StepLimits(duration_s=None, requests=4))
    assert outcome.codes == {"CLIENT_ConnectionResetError": 4}
    assert outcome.latencies_s.size == 0


def test_limits_must_bound_the_step():
    with pytest.raises(ValueError, match="bound"):
        StepLimits(duration_s=None, requests=None)
    with pytest.raises(ValueError):
        StepLimits(duration_s=10_000)
