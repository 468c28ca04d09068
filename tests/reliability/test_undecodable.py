"""Garbage bytes on a method path: INVALID_ARGUMENT with the guard, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.recsys.v1 import service_pb2
from server import security

from . import tally
from .tiny import predict_request, serve_tiny

PREDICT = "/recsys.v1.RecommenderService/Predict"
TIMEOUT_S = 5.0
CORRUPT = [b"\xff\xff\xff", b"\x12\x02\xff\xfe", b"\x0a\x05abc", b"garbage!"]


async def _raw_call(channel: grpc.aio.Channel, payload: bytes) -> tuple[grpc.StatusCode, bytes, str]:
    method = channel.unary_unary(PREDICT)  # no serializers: bytes go on the wire as they are
    try:
        return grpc.StatusCode.OK, await method(payload, timeout=TIMEOUT_S), ""
    except grpc.aio.AioRpcError as exc:
        return exc.code(), b"", exc.details() or ""


async def test_without_the_guard_grpc_aio_answers_unknown() -> None:
    # Why the guard exists: if this starts failing, grpc.aio changed and the guard may be redundant.
    async with serve_tiny(guarded=False) as server, grpc.aio.insecure_channel(server.target) as channel:
        code, _, _ = await _raw_call(channel, CORRUPT[0])
    assert code == grpc.StatusCode.UNKNOWN


@pytest.mark.parametrize("payload", CORRUPT)
async def test_guard_answers_invalid_argument_naming_the_method(payload: bytes) -> None:
    async with (
        serve_tiny() as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        code, _, details = await _raw_call(channel, payload)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert PREDICT in details
        good = predict_request(("u", "item7"), ("v", "i"))
        code, body, _ = await _raw_call(channel, good.SerializeToString())
        assert code == grpc.StatusCode.OK
        assert list(service_pb2.PredictResponse.FromString(body).ratings) == [5.0, 1.0]


async def test_guard_runs_behind_authentication() -> None:
    async with (
        serve_tiny(interceptors=security.interceptors(["token"])) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        code, _, _ = await _raw_call(channel, CORRUPT[0])
        assert code == grpc.StatusCode.UNAUTHENTICATED
        method = channel.unary_unary(PREDICT)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(CORRUPT[0], metadata=(("authorization", "Bearer token"),), timeout=TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_guard_leaves_unwrappable_handlers_alone() -> None:
    def sync_behavior(request: object, context: object) -> None:
        return None

    sync_handler = grpc.unary_unary_rpc_method_handler(sync_behavior, request_deserializer=bytes)
    assert security.guard_undecodable(sync_handler, PREDICT) is sync_handler
    stream_handler = grpc.stream_stream_rpc_method_handler(sync_behavior, request_deserializer=bytes)
    assert security.guard_undecodable(stream_handler, PREDICT) is stream_handler


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.binary(max_size=256), min_size=20, max_size=20))
async def test_random_bytes_never_get_unknown_or_internal(payloads: list[bytes]) -> None:
    # One server per example, 20 raw calls each: every answer is OK (the bytes happened to decode)
    # or INVALID_ARGUMENT, and a well-formed call right after still gets the right answer.
    async with (
        serve_tiny() as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        for payload in payloads:
            code, body, _ = await _raw_call(channel, payload)
            tally.record("raw bytes on Predict (tiny server)", code)
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
            if code == grpc.StatusCode.OK:
                request = service_pb2.PredictRequest.FromString(payload)
                expected = [float(len(item)) for item in request.item_ids]
                assert list(service_pb2.PredictResponse.FromString(body).ratings) == expected
            code, body, _ = await _raw_call(channel, predict_request(("u", "abcd")).SerializeToString())
            assert (code, list(service_pb2.PredictResponse.FromString(body).ratings)) == (grpc.StatusCode.OK, [4.0])
