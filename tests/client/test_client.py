"""The typed Python client, synchronous and asyncio, against a real server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client import (
    AsyncRecsysClient,
    ModelMetadata,
    Prediction,
    Recommendations,
    RecsysClient,
    predict_request,
    recommend_request,
)

ONNX = pytest.mark.parametrize("served", ["onnx"], indirect=True)


class RecordMetadata(grpc.aio.ServerInterceptor):
    """Remembers the metadata of every call the server receives."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def intercept_service(self, continuation, handler_call_details):
        self.seen.append(dict(handler_call_details.invocation_metadata or ()))
        return await continuation(handler_call_details)


@ONNX
async def test_sync_async_and_prebuilt_requests_agree(served):
    users, items = ["u1", "u2", "u3"], ["i4", "i5", "i6"]
    with RecsysClient(served.target, timeout=10) as client:
        sync_answer = client.predict("gcn", users, items)
        raw = client.predict_message(predict_request("gcn", users, items))
        sync_recs = client.recommend("gcn", ["u1"], k=5)
    async with AsyncRecsysClient(served.target, timeout=10) as aclient:
        async_answer = await aclient.predict("gcn", users, items)
        async_recs = await aclient.recommend("gcn", ["u1"], k=5)
        raw_recs = await aclient.recommend_message(recommend_request("gcn", ["u1"], k=5))
    assert isinstance(sync_answer, Prediction) and isinstance(sync_recs, Recommendations)
    assert sync_answer.ratings.dtype == np.float32 and sync_answer.version == 1 and sync_answer.model == "gcn"
    np.testing.assert_array_equal(sync_answer.ratings, async_answer.ratings)
    np.testing.assert_array_equal(sync_answer.ratings, np.array(raw.ratings, dtype=np.float32))
    assert sync_recs.results[0].item_ids == async_recs.results[0].item_ids == list(raw_recs.results[0].item_ids)
    assert sync_recs.results[0].scores.dtype == np.float32


@ONNX
async def test_metadata_list_and_health_are_typed(served):
    async with AsyncRecsysClient(served.target, timeout=10) as client:
        meta = await client.metadata("mf")
        models = await client.list_models()
        await client.wait_ready("mf", timeout=5)
        assert await client.health("ghost") == "SERVICE_UNKNOWN"
    assert isinstance(meta, ModelMetadata) and meta.config.num_items == 150 and meta.status.state == "READY"
    assert {m.name for m in models} == {"mf", "dense", "lstm", "gcn"}


async def test_token_is_sent_as_bearer_metadata(tiny_repository, start_server):
    recorder = RecordMetadata()
    thread = start_server(tiny_repository, server_kwargs={"interceptors": [recorder]})
    with RecsysClient(thread.target, token="s3cret", timeout=10) as client:
        client.predict("mf", ["u1"], ["i1"])
        assert client.health() == "SERVING"
    async with AsyncRecsysClient(thread.target, token="other", timeout=10) as aclient:
        await aclient.list_models()
    tokens = [seen.get("authorization") for seen in recorder.seen]
    assert tokens == ["Bearer s3cret", "Bearer s3cret", "Bearer other"]


@ONNX
def test_client_message_limit_is_explicit(served):
    with RecsysClient(served.target, timeout=10, max_message_bytes=2000) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.recommend("mf", [f"u{i}" for i in range(20)], k=100)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(client.recommend("mf", ["u1"], k=3).results[0].item_ids) == 3


def test_bad_settings_and_unreachable_servers_fail_clearly(free_port):
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        RecsysClient(token="two words")
    with pytest.raises(ValueError, match="max_message_bytes must be positive"):
        RecsysClient(max_message_bytes=0)
    with RecsysClient(f"127.0.0.1:{free_port}") as client, pytest.raises(TimeoutError, match="not SERVING after"):
        client.wait_ready(timeout=0.5)


def test_call_metadata_is_exposed_for_raw_stub_calls():
    client = RecsysClient("127.0.0.1:1", token="abc")
    try:
        assert client.call_metadata == (("authorization", "Bearer abc"),)
        assert callable(client.metadata), "the metadata() RPC keeps its name"
    finally:
        client.close()
