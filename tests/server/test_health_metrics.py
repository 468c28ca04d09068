"""Health, reflection and Prometheus metrics of a running server; batches really form."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from client import AsyncRecsysClient, RecsysClient

ONNX = pytest.mark.parametrize("served", ["onnx"], indirect=True)


@ONNX
def test_health_overall_service_and_per_model(served):
    with RecsysClient(served.target, timeout=10) as client:
        assert client.health() == "SERVING"
        assert client.health("recsys.v1.RecommenderService") == "SERVING"
        assert [client.health(name) for name in ("mf", "dense", "lstm", "gcn")] == ["SERVING"] * 4
        assert client.health("no-such-model") == "SERVICE_UNKNOWN"


def test_empty_repository_is_not_serving(tmp_path, start_server):
    thread = start_server(tmp_path)
    with RecsysClient(thread.target, timeout=10) as client:
        assert client.health() == "NOT_SERVING"
        assert client.list_models() == []
        with pytest.raises(grpc.RpcError) as caught:
            client.predict("mf", ["u0"], ["i0"])
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@ONNX
def test_reflection_lists_services_and_describes_the_api(served):
    with grpc.insecure_channel(served.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="recsys.v1.RecommenderService"),
        ]
        listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    services = {s.name for s in listed.list_services_response.service}
    assert {"recsys.v1.RecommenderService", "grpc.health.v1.Health"} <= services
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    methods = {m.name for f in files for s in f.service for m in s.method}
    assert {"Predict", "Recommend", "ListModels", "GetModelMetadata"} <= methods


@ONNX
def test_metadata_and_list_models_report_what_is_served(served):
    with RecsysClient(served.target, timeout=10) as client:
        models = {m.name: m for m in client.list_models()}
        meta = client.metadata("lstm")
    assert sorted(models) == ["dense", "gcn", "lstm", "mf"]
    assert [(v.version, v.state) for v in models["mf"].versions] == [(1, "READY")]
    assert meta.status.state == "READY" and meta.backend == "onnx"
    assert meta.execution_providers == ["CPUExecutionProvider"]
    assert meta.config.name == "lstm" and meta.config.max_history_length == 50
    assert meta.max_batch_size == 256 and meta.max_queue_delay_us == 2000 and meta.max_queue_rows == 65536


async def test_concurrent_calls_form_batches_and_metrics_are_exported(tiny_repository, start_server, free_port):
    thread = start_server(tiny_repository, max_queue_delay_us=20_000, metrics_port=free_port)
    async with AsyncRecsysClient(thread.target, timeout=30) as client:
        answers = await asyncio.gather(*(client.predict("mf", [f"u{i}"], [f"i{i}"]) for i in range(64)))
    assert all(a.ratings.shape == (1,) for a in answers)
    metrics = thread.metrics
    labels = {"model": "mf", "signature": "predict"}
    batches = metrics.value("recsys_batch_rows_count", **labels)
    single_row_batches = metrics.value("recsys_batch_rows_bucket", le="1.0", **labels)
    assert metrics.value("recsys_batch_rows_sum", **labels) >= 64
    assert batches - single_row_batches >= 1, "no runtime call held more than one row"
    assert batches < 64, f"64 concurrent calls ran as {batches:.0f} batches"
    assert metrics.value("recsys_requests_total", method="Predict", model="mf", code="OK") == 64
    assert metrics.value("recsys_queue_seconds_count", model="mf") >= 64
    assert metrics.value("recsys_inference_seconds_count", **labels) == batches
    assert metrics.value("recsys_models_loaded") == 4

    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics", timeout=10).read().decode()
    )
    assert 'recsys_requests_total{code="OK",method="Predict",model="mf"} 64.0' in body
    assert "recsys_request_latency_seconds_bucket" in body and "recsys_models_loaded 4.0" in body
    assert 'recsys_queue_rows{model="mf",signature="predict"} 0.0' in body


async def test_failed_calls_are_counted_by_status_code(tiny_repository, start_server):
    thread = start_server(tiny_repository)
    async with AsyncRecsysClient(thread.target, timeout=30) as client:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError):
                await client.predict("mf", ["ghost"], ["i0"])
        with pytest.raises(grpc.aio.AioRpcError):
            await client.predict("unknown-model", ["u0"], ["i0"])
    value = thread.metrics.value
    assert value("recsys_requests_total", method="Predict", model="mf", code="INVALID_ARGUMENT") == 3
    assert value("recsys_requests_total", method="Predict", model="", code="NOT_FOUND") == 1
    assert value("recsys_request_latency_seconds_count", method="Predict", model="mf") == 3
