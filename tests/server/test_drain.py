"""SIGTERM with ``--drain-delay-s``: health NOT_SERVING at once, calls answered through the delay, then refused."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest
from serverprocs import NO_RETRIES, Load, health, running_server, server_command

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc
from server.health import SERVICE_NAME

DRAIN_S = 3.0
WINDOW_S = 1.5  # traffic checked during the first half of the delay: the rest is margin for a busy machine


async def test_drain_delay_keeps_answering_while_health_reads_not_serving(tmp_path, copy_repository, free_port):
    repository = copy_repository(tmp_path / "repo", models=("mf",))
    command = server_command(repository, free_port, "--drain-delay-s", str(DRAIN_S), "--grace-s", "5")
    with running_server(command, free_port, tmp_path) as server:
        load = Load(server.target)
        load.start()
        try:
            await load.wait_ok(20)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            statuses = {}
            while set(statuses.values()) != {"NOT_SERVING"} or len(statuses) < 3:
                for service in ("", SERVICE_NAME, "mf"):
                    statuses[service] = await asyncio.to_thread(health, server.target, service)
            not_serving_at = time.monotonic()
            await asyncio.sleep(max(0.0, signalled + WINDOW_S - time.monotonic()))
            assert server.process.poll() is None, "the server exited before its drain delay ended"
            exit_code = await asyncio.to_thread(server.process.wait, 60)
            await asyncio.sleep(0.3)  # a few calls to the closed port
        finally:
            await load.stop()
        during = [o for o in load.outcomes if signalled <= o.sent <= signalled + WINDOW_S]
        answered_not_serving = [o for o in during if o.sent >= not_serving_at and o.code == "OK"]
        assert [o.code for o in during if o.code != "OK"] == [], "calls failed during the drain delay"
        assert len(answered_not_serving) >= 5, "too few calls were sent while health read NOT_SERVING"
        failed = [o for o in load.outcomes if o.code != "OK"]
        assert failed, "calls after the drain delay should be refused"
        # A call that reaches the port in the instant it closes is cancelled by gRPC core (not yet matched to
        # a handler); every later one is refused as UNAVAILABLE.
        assert {o.code for o in failed} <= {"UNAVAILABLE", "CANCELLED"}
        assert "UNAVAILABLE" in {o.code for o in failed}
        assert min(o.sent for o in failed) > signalled + WINDOW_S
        assert exit_code == 0, server.log()[-3000:]
        log = server.log()
        assert "draining: health NOT_SERVING" in log and log.index("draining") < log.index("shutting down")
    async with grpc.aio.insecure_channel(server.target, options=NO_RETRIES) as channel:
        request = pb.PredictRequest(model=pb.ModelSpec(name="mf"), user_ids=["u0"], item_ids=["i1"])
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service_pb2_grpc.RecommenderServiceStub(channel).Predict(request, timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
