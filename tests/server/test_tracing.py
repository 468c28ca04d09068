"""``--tracing``: one SERVER span per RecommenderService call, with the model and the status."""

from __future__ import annotations

import time

import grpc
import pytest

from client import RecsysClient

pytest.importorskip("opentelemetry.sdk", reason="the optional 'tracing' extra is not installed")

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from server.tracing import TracingInterceptor


def _finished(exporter, count: int):
    """The finished spans once there are ``count``: an aborted call's status reaches the client before
    the server's handler (and so its span) has finished unwinding."""
    deadline = time.monotonic() + 10
    while len(exporter.get_finished_spans()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return exporter.get_finished_spans()


@pytest.fixture
def traced(tiny_repository, start_server):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = start_server(tiny_repository, server_kwargs={"interceptors": [TracingInterceptor(provider)]})
    return server, exporter, provider


def test_each_call_is_one_server_span_with_model_name_version_and_rows(traced):
    server, exporter, _ = traced
    with RecsysClient(server.target, timeout=10, retry=None) as client:
        client.predict("mf", ["u0", "u1", "u2"], ["i1", "i2", "i3"])
        client.recommend("lstm", ["u0"], k=3)
        assert client.health() == "SERVING"  # not traced
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == [
        "recsys.v1.RecommenderService/Predict",
        "recsys.v1.RecommenderService/Recommend",
    ]
    predict, recommend = spans
    assert predict.kind == SpanKind.SERVER
    assert predict.attributes["recsys.model.name"] == "mf"
    assert predict.attributes["recsys.model.requested_version"] == 0
    assert predict.attributes["recsys.model.version"] == 1  # the version that answered
    assert predict.attributes["recsys.request.rows"] == 3
    assert predict.attributes["rpc.grpc.status_code"] == "OK"
    assert predict.attributes["rpc.method"] == "Predict" and predict.attributes["rpc.system"] == "grpc"
    # how the call's rows were batched: at least its own 3 rows, after a wait in the queue
    assert predict.attributes["recsys.batch.rows"] >= 3 and predict.attributes["recsys.batch.count"] == 1
    assert predict.attributes["recsys.batch.queue_ms"] >= 0.0
    assert recommend.attributes["recsys.model.name"] == "lstm" and recommend.attributes["recsys.request.rows"] == 1


def test_a_failed_call_has_an_error_span_with_its_status_code(traced):
    server, exporter, _ = traced
    with RecsysClient(server.target, timeout=10, retry=None) as client, pytest.raises(grpc.RpcError) as caught:
        client.predict("no-such-model", ["u0"], ["i1"])
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    (span,) = _finished(exporter, 1)
    assert span.attributes["recsys.model.name"] == "no-such-model"
    assert span.attributes["rpc.grpc.status_code"] == "NOT_FOUND"
    assert span.status.status_code == StatusCode.ERROR
    assert "recsys.model.version" not in span.attributes


def test_the_span_continues_the_callers_trace(traced):
    server, exporter, _ = traced
    caller = TracerProvider().get_tracer("test-caller")
    with caller.start_as_current_span("caller") as parent:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        with grpc.insecure_channel(server.target) as channel:
            from protos.recsys.v1 import service_pb2 as pb
            from protos.recsys.v1 import service_pb2_grpc

            request = pb.PredictRequest(model=pb.ModelSpec(name="mf"), user_ids=["u0"], item_ids=["i1"])
            service_pb2_grpc.RecommenderServiceStub(channel).Predict(request, metadata=tuple(carrier.items()))
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.parent.span_id == parent.get_span_context().span_id
    assert trace.get_current_span() is not span


def test_tracing_flag_builds_an_exporting_interceptor(tmp_path):
    from server.config import ServerConfig
    from server.tracing import interceptor_from_config

    interceptor = interceptor_from_config(ServerConfig(repository=tmp_path, tracing="console"))
    try:
        assert isinstance(interceptor, TracingInterceptor)
    finally:
        interceptor.close()
