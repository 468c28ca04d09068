"""OpenTelemetry tracing: one server span per ``recsys.v1.RecommenderService`` call (``--tracing``).

Imported only when ``--tracing`` is not ``off`` (it needs the optional ``tracing`` extra). A span is
named after the RPC as the OpenTelemetry RPC conventions say (``recsys.v1.RecommenderService/Predict``),
continues the caller's trace when the call carries W3C ``traceparent`` metadata, and holds:

* ``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code`` (status ERROR when not OK);
* ``recsys.model.name`` and ``recsys.model.requested_version`` from the request, and
  ``recsys.model.version``, the version that really answered, from the response;
* ``recsys.request.rows``: pairs of a Predict, users plus histories of a Recommend.

Health checks and reflection are not traced (probes would flood the backend). Batch size and queue
time per call are not attributes yet: the batcher does not report them per request (they are in the
``recsys_batch_rows`` and ``recsys_queue_seconds`` metrics).

Export: ``console`` writes spans to stdout; ``otlp`` sends them over OTLP/gRPC to ``--otlp-endpoint`` or,
when that is empty, to what the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT`` say (default ``localhost:4317``). The SDK itself reads the other
standard variables: ``OTEL_SERVICE_NAME`` (default here ``recsys-serve``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (e.g. ``parentbased_traceidratio`` and ``0.01``),
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*`` for the batch processor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME as SERVICE_NAME_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from server.batching import CALL_BATCHES, CallBatch
from server.config import ServerConfig
from server.health import SERVICE_NAME

_LOGGER = logging.getLogger(__name__)
_PREFIX = f"/{SERVICE_NAME}/"
DEFAULT_SERVICE_NAME = "recsys-serve"

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _rows(request: Any) -> int:
    if hasattr(request, "histories"):  # RecommendRequest
        return len(request.user_ids) + len(request.histories)
    if hasattr(request, "item_int_ids"):  # PredictRequest: string or integer pairs
        return max(len(request.item_ids), len(request.item_int_ids))
    return 0


def _code_name(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    if code is None:
        return "UNKNOWN"  # an exception that no handler turned into a status
    if isinstance(code, grpc.StatusCode):
        return code.name
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary RecommenderService handler in a SERVER span.

    Args:
        tracer_provider: Where spans go; None uses the global provider (tests pass their own with an
            in-memory exporter).
        owns_provider: :meth:`close` shuts the provider down (flushing queued spans).
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *, owns_provider: bool = False) -> None:
        self._provider = tracer_provider
        self._owns_provider = owns_provider
        self._tracer = trace.get_tracer("recsys-serve.server", tracer_provider=tracer_provider)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The next handler, wrapped in a span when it is a unary RecommenderService method."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(_PREFIX):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._traced(method[1:], method[len(_PREFIX) :], handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _traced(self, span_name: str, rpc_method: str, behaviour: Behaviour) -> Behaviour:
        tracer = self._tracer

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            parent = propagate.extract({key: value for key, value in context.invocation_metadata() or ()})
            attributes = {
                "rpc.system": "grpc",
                "rpc.service": SERVICE_NAME,
                "rpc.method": rpc_method,
                "recsys.request.rows": _rows(request),
            }
            spec = getattr(request, "model", None)
            if spec is not None:
                attributes["recsys.model.name"] = spec.name
                attributes["recsys.model.requested_version"] = spec.version
            with tracer.start_as_current_span(
                span_name,
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                batches: list[CallBatch] = []
                token = CALL_BATCHES.set(batches)
                try:
                    response = await behaviour(request, context)
                except BaseException:
                    code = _code_name(context)
                    span.set_attribute("rpc.grpc.status_code", code)
                    span.set_status(Status(StatusCode.ERROR, code))
                    raise
                finally:
                    CALL_BATCHES.reset(token)
                    _record_batches(span, batches)
                served = getattr(response, "model", None)
                if served is not None and served.name:
                    span.set_attribute("recsys.model.version", served.version)
                span.set_attribute("rpc.grpc.status_code", "OK")
                return response

        return traced

    def close(self) -> None:
        """Flushes and shuts down the provider when this interceptor created it."""
        if self._owns_provider and isinstance(self._provider, TracerProvider):
            self._provider.shutdown()


def _exporter(config: ServerConfig) -> SpanExporter:
    if config.tracing == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.otlp_endpoint or None)


def _resource() -> Resource:
    resource = Resource.create()  # reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME_KEY, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME_KEY: DEFAULT_SERVICE_NAME}))
    return resource


def interceptor_from_config(config: ServerConfig) -> TracingInterceptor:
    """A tracing interceptor with its own provider, exporting as ``config.tracing`` says.

    The provider also becomes the global one, so that other instrumented code in the process joins the
    same traces.
    """
    provider = TracerProvider(resource=_resource())
    provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    trace.set_tracer_provider(provider)
    _LOGGER.info("tracing on: one span per %s call, exported to %s", SERVICE_NAME, config.tracing)
    return TracingInterceptor(provider, owns_provider=True)


def _record_batches(span: Any, batches: list[CallBatch]) -> None:
    """Batch size and queue time of the call's rows: the largest batch they joined, the longest wait."""
    if batches:
        span.set_attribute("recsys.batch.rows", max(b.batch_rows for b in batches))
        span.set_attribute("recsys.batch.queue_ms", max(b.queue_s for b in batches) * 1e3)
        span.set_attribute("recsys.batch.count", len(batches))
