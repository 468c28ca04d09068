"""Every caller mistake gets the documented status code and a message that says what to fix."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from client import AsyncRecsysClient, RecsysClient, predict_request, recommend_request
from server.errors import INTERNAL_MESSAGE, InvalidInput, QueueFull, status_of

ONNX = pytest.mark.parametrize("served", ["onnx"], indirect=True)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def client(served):
    with RecsysClient(served.target, timeout=30) as c:
        yield c


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return caught.value


@ONNX
def test_unknown_model_and_version_are_not_found(client):
    error = rpc_error(client.predict, "nope", ["u0"], ["i0"])
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown model 'nope'" in error.details() and "'mf'" in error.details()
    error = rpc_error(client.recommend, "mf", ["u0"], version=7)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "model 'mf' has no version 7; versions: [1]"
    assert rpc_error(client.metadata, "mf", 7).code() == grpc.StatusCode.NOT_FOUND


@ONNX
def test_unknown_ids_are_named(client):
    error = rpc_error(client.predict, "mf", ["u0", "x9", "x12", "x9"], ["i0", "i1", "zz", "i2"])
    assert error.code() == INVALID
    assert "unknown user ids ['x9', 'x12'] for model 'mf' v1" in error.details()
    assert "unknown item ids ['zz']" in error.details()
    error = rpc_error(client.recommend, "gcn", ["u1", "ghost"])
    assert error.code() == INVALID
    assert "['ghost']" in error.details() and "allow_popularity_fallback" in error.details()
    error = rpc_error(client.recommend, "mf", ["u1"], candidates=["i1", "nope"])
    assert error.code() == INVALID and "unknown candidate item ids ['nope']" in error.details()


@ONNX
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_ids": [], "item_ids": []}, "empty request"),
        ({"user_ids": ["u0", "u1"], "item_ids": ["i0"]}, "user_ids has 2 ids but item_ids has 1"),
        ({"user_ids": ["u0"] * 16385, "item_ids": ["i0"] * 16385}, "16385 pairs in one call exceed"),
    ],
)
def test_bad_predict_shapes_are_invalid(client, kwargs, message):
    error = rpc_error(client.predict, "dense", **kwargs)
    assert error.code() == INVALID and message in error.details()


@ONNX
@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("mf", {"user_ids": ["u0"], "k": 0}, "k=0 is outside 1..150"),
        ("mf", {"user_ids": ["u0"], "k": 151}, "k=151 is outside 1..150"),
        ("mf", {}, "empty request"),
        ("mf", {"histories": [(["i1"], [4.0])]}, "model 'mf' v1 does not read histories"),
        ("lstm", {"user_ids": ["u0"], "histories": [(["i1"], [4.0])]}, "either user_ids or histories"),
        ("lstm", {"histories": [(["i1"] * 51, [4.0] * 51)]}, "length 51 outside 1..50"),
        ("lstm", {"histories": [([], [])]}, "length 0 outside 1..50"),
        ("lstm", {"histories": [(["i1", "i2"], [4.0])]}, "2 item_ids but 1 ratings"),
        ("lstm", {"histories": [(["i1", "i2"], [4.0, 9.0])]}, "[9.0] are outside the rating scale"),
        ("lstm", {"histories": [(["i1"], [float("nan")])]}, "outside the rating scale"),
        ("lstm", {"histories": [(["i1", "bogus"], [4.0, 3.0])]}, "unknown history item ids ['bogus']"),
    ],
)
def test_bad_recommend_requests_are_invalid(client, model, kwargs, message):
    error = rpc_error(client.recommend, model, **kwargs)
    assert error.code() == INVALID
    assert message in error.details()


def test_status_mapping_hides_internal_errors(caplog):
    assert status_of(InvalidInput("bad k"), "Recommend") == (INVALID, "bad k")
    assert status_of(QueueFull("full"), "Predict")[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    with caplog.at_level("ERROR"):
        code, details = status_of(KeyError("secret internals"), "Predict")
    assert code == grpc.StatusCode.INTERNAL and details == INTERNAL_MESSAGE
    assert "secret internals" not in details and "unexpected error in Predict" in caplog.text


async def test_queue_full_deadline_and_message_size(tiny_repository, start_server):
    thread = start_server(
        tiny_repository,
        max_batch_size=4,
        max_queue_rows=4,
        max_rows_per_request=4,
        max_queue_delay_us=2_000_000,
        max_message_bytes=4096,
    )
    # retry=None: the overflow itself is under test, not the client hiding it by retrying
    async with AsyncRecsysClient(thread.target, max_message_bytes=4 << 20, retry=None) as aclient:
        waiting = asyncio.ensure_future(aclient.predict("mf", ["u0"] * 3, ["i0"] * 3, timeout=10))
        await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await aclient.predict("mf", ["u1"] * 2, ["i1"] * 2, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queue_rows=4" in caught.value.details()
        assert (await waiting).ratings.shape == (3,), "the queued call still completes"

        rows_before = thread.metrics.value("recsys_batch_rows_sum", model="mf", signature="predict")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await aclient.predict("mf", ["u2"], ["i2"], timeout=0.2)  # 0.2 s deadline, 2 s batch delay
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(2.2)  # past the batch delay: the expired call's row must not have run
        assert thread.metrics.value("recsys_batch_rows_sum", model="mf", signature="predict") == rows_before
        predict_codes = {
            code: thread.metrics.value("recsys_requests_total", method="Predict", model="mf", code=code)
            for code in ("OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "CANCELLED")
        }
        # The queued call answered, the one over max_queue_rows refused, the expired one counted once: as
        # DEADLINE_EXCEEDED, or CANCELLED when the client's cancel arrives before the server's own deadline.
        assert predict_codes["OK"] == 1.0 and predict_codes["RESOURCE_EXHAUSTED"] == 1.0
        assert predict_codes["DEADLINE_EXCEEDED"] + predict_codes["CANCELLED"] == 1.0, predict_codes

        huge = predict_request("mf", ["u0" * 1000] * 600, ["i0"] * 600)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await aclient.predict_message(huge, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        request = recommend_request("mf", ["u0"], k=3)
        assert len((await aclient.recommend_message(request, timeout=10)).results[0].item_ids) == 3
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await aclient.recommend("mf", ["u0", "u1", "u2"], k=150, timeout=10)
        assert caught.value.code() == INVALID
        assert "above max_message_bytes=4096; ask for fewer users or a smaller k" in caught.value.details()
    assert thread.metrics.value("recsys_requests_total", method="Recommend", model="mf", code="OK") == 1.0
    assert thread.metrics.value("recsys_requests_total", method="Recommend", model="mf", code="INVALID_ARGUMENT") == 1.0


def test_status_details_are_cut_to_a_safe_size():
    code, details = status_of(InvalidInput("x" * 10_000), "Predict")
    assert code == INVALID and len(details) <= 1000 and details.endswith("… (truncated)")
