"""Garbage bytes on a method path: INVALID_ARGUMENT with the guard, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.recsys.v1 import service_pb2
from server import auth, request_guard

from . import tally
from .tiny import EchoRecommender, predict_request, serve_tiny

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
        serve_tiny(interceptors=auth.interceptors(["token"])) as server,
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
    assert request_guard.guard_undecodable(sync_handler, PREDICT) is sync_handler
    stream_handler = grpc.stream_stream_rpc_method_handler(sync_behavior, request_deserializer=bytes)
    assert request_guard.guard_undecodable(stream_handler, PREDICT) is stream_handler


SERVICE = service_pb2.DESCRIPTOR.services_by_name["RecommenderService"]


def test_guarded_handlers_decode_each_method_s_own_request_message() -> None:
    # The descriptor, not generated code's internals, says which message each method reads.
    handlers = request_guard.guarded_handlers(SERVICE, EchoRecommender())
    assert sorted(handlers) == sorted(method.name for method in SERVICE.methods)
    requests = {
        "Predict": predict_request(("u", "i")),
        "Recommend": service_pb2.RecommendRequest(model=service_pb2.ModelSpec(name="mf"), user_ids=["u"], k=3),
        "ListModels": service_pb2.ListModelsRequest(),
        "GetModelMetadata": service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name="mf")),
    }
    for name, request in requests.items():
        handler = handlers[name]
        assert not handler.request_streaming and not handler.response_streaming
        assert handler.request_deserializer(request.SerializeToString()) == request
    # Only Predict is async in the echo servicer; the generated base class's synchronous stubs stay unguarded.
    assert isinstance(handlers["Predict"].request_deserializer(b"\xff\xff\xff"), request_guard.UndecodableRequest)
    response = service_pb2.PredictResponse(ratings=[1.0])
    assert handlers["Predict"].response_serializer(response) == response.SerializeToString()


def test_a_servicer_missing_a_method_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match=r"has no method Predict of recsys\.v1\.RecommenderService"):
        request_guard.guarded_handlers(SERVICE, object())


def test_security_module_still_offers_every_name_and_the_old_registration() -> None:
    from server import security, tls

    assert security.guard_undecodable is request_guard.guard_undecodable
    assert security.interceptors is auth.interceptors and security.server_credentials is tls.server_credentials
    assert security.SecurityConfigError is auth.SecurityConfigError is tls.SecurityConfigError
    with pytest.raises(TypeError, match="add_guarded_service"):
        security.add_guarded_servicer(lambda servicer, server: None, EchoRecommender(), object())


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
