"""Client habits: retries with backoff through gRPC's service config, and a default deadline per call."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from client import DEFAULT_TIMEOUT_S, AsyncRecsysClient, RecsysClient, RetryPolicy
from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc

FAST = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.05)


class FlakyService(service_pb2_grpc.RecommenderServiceServicer):
    """Fails the first ``fail_first`` Predict calls with ``code``, counting every attempt; Recommend hangs."""

    def __init__(self, fail_first: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.fail_first = fail_first
        self.code = code
        self.attempts = 0

    async def Predict(self, request: pb.PredictRequest, context: grpc.aio.ServicerContext) -> pb.PredictResponse:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            await context.abort(self.code, f"attempt {self.attempts} refused on purpose")
        return pb.PredictResponse(model=pb.ModelSpec(name=request.model.name, version=1), ratings=[3.5])

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        await asyncio.sleep(30)
        return pb.RecommendResponse()


@pytest.fixture
async def flaky():
    servers: list[grpc.aio.Server] = []

    async def start(fail_first: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE):
        service = FlakyService(fail_first, code)
        server = grpc.aio.server()
        service_pb2_grpc.add_RecommenderServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return service, f"127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server in servers:
            await server.stop(0)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
async def test_retryable_failures_are_retried_until_the_call_succeeds(flaky, code):
    service, target = await flaky(fail_first=2, code=code)
    async with AsyncRecsysClient(target, retry=FAST) as client:
        answer = await client.predict("mf", ["u0"], ["i1"])
    assert answer.ratings.tolist() == [3.5]
    assert service.attempts == 3  # two failures + the success


async def test_the_default_policy_retries_without_any_argument(flaky):
    service, target = await flaky(fail_first=1)
    async with AsyncRecsysClient(target) as client:
        await client.predict("mf", ["u0"], ["i1"])
    assert service.attempts == 2


async def test_the_blocking_client_retries_too(flaky):
    service, target = await flaky(fail_first=2)
    with RecsysClient(target, retry=FAST) as client:
        answer = await asyncio.to_thread(client.predict, "mf", ["u0"], ["i1"])
    assert answer.ratings.tolist() == [3.5] and service.attempts == 3


async def test_with_retries_off_the_first_failure_is_the_answer(flaky):
    service, target = await flaky(fail_first=1)
    async with AsyncRecsysClient(target, retry=None) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u0"], ["i1"])
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and service.attempts == 1


async def test_attempts_stop_at_max_attempts(flaky):
    service, target = await flaky(fail_first=100)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)
    async with AsyncRecsysClient(target, retry=policy) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u0"], ["i1"])
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and service.attempts == 3


async def test_a_caller_error_is_not_retried(flaky):
    service, target = await flaky(fail_first=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    async with AsyncRecsysClient(target, retry=FAST) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u0"], ["i1"])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and service.attempts == 1


async def test_a_call_past_the_default_deadline_is_deadline_exceeded(flaky):
    _, target = await flaky(fail_first=0)
    async with AsyncRecsysClient(target, timeout=0.3) as client:  # the constructor's default for every call
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.recommend("mf", ["u0"], k=3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (await client.predict("mf", ["u0"], ["i1"], timeout=5)).ratings.tolist() == [3.5]


def test_clients_have_a_finite_default_deadline_and_retry_policy():
    client = RecsysClient("127.0.0.1:1")
    try:
        assert client._deadline(None) == DEFAULT_TIMEOUT_S < float("inf")
        assert client._deadline(2.5) == 2.5
        config = json.loads(dict(client._options)["grpc.service_config"])
        policy = config["methodConfig"][0]["retryPolicy"]
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
        assert (policy["maxAttempts"], policy["initialBackoff"], policy["backoffMultiplier"]) == (4, "0.1s", 2.0)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"max_attempts": 6}, "max_attempts must be 2..5"), ({"initial_backoff_s": 0}, "initial_backoff_s must be")],
)
def test_bad_policies_say_what_to_change(changes, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**changes)
