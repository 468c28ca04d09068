"""A tiny grpc.aio server of our own: the real service API with an echo servicer, plus health."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos.recsys.v1 import service_pb2, service_pb2_grpc
from server import request_guard


class EchoRecommender(service_pb2_grpc.RecommenderServiceServicer):
    """Stands in for the real servicer: Predict answers one rating per pair, the length of its item id."""

    async def Predict(
        self, request: service_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.PredictResponse:
        return service_pb2.PredictResponse(model=request.model, ratings=[float(len(item)) for item in request.item_ids])


@dataclass
class TinyServer:
    """A started tiny server: its port and health servicer."""

    port: int
    health: health.aio.HealthServicer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_tiny(
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    guarded: bool = True,
) -> AsyncIterator[TinyServer]:
    """Runs the echo servicer and a health servicer on a free 127.0.0.1 port; always stops it.

    ``guarded`` registers the servicer through ``request_guard.add_guarded_service``, as the real server
    does; otherwise through the generated ``add_RecommenderServiceServicer_to_server``.
    """
    server = grpc.aio.server(interceptors=list(interceptors), options=[("grpc.so_reuseport", 0)])
    if guarded:
        service = service_pb2.DESCRIPTOR.services_by_name["RecommenderService"]
        request_guard.add_guarded_service(service, EchoRecommender(), server)
    else:
        service_pb2_grpc.add_RecommenderServiceServicer_to_server(EchoRecommender(), server)
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = "127.0.0.1:0"
    port = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    await server.start()
    try:
        yield TinyServer(port, health_servicer)
    finally:
        await server.stop(None)


def predict_request(*pairs: tuple[str, str]) -> service_pb2.PredictRequest:
    """A PredictRequest for model "mf" with the given (user, item) pairs."""
    return service_pb2.PredictRequest(
        model=service_pb2.ModelSpec(name="mf"),
        user_ids=[user for user, _ in pairs],
        item_ids=[item for _, item in pairs],
    )
