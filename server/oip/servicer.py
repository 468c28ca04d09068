"""``inference.GRPCInferenceService`` (Open Inference Protocol): protos in, domain calls, protos out.

Served beside ``recsys.v1.RecommenderService`` on the same port, over the same registry and batchers.
Each RPC is a few lines; :meth:`InferenceService._serve` times and counts the call and turns any
exception into its status code with ``errors.status_of``, exactly as the recsys.v1 servicer does, so
both APIs answer the same mistakes with the same codes. Handlers raise; they never abort themselves.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import grpc

from protos.inference import open_inference_grpc_pb2 as pb
from protos.inference import open_inference_grpc_pb2_grpc as pb_grpc
from protos.recsys.v1 import model_config_pb2 as mc
from server.calls import serve_call
from server.errors import ModelNotFound
from server.metrics import Metrics
from server.oip import domain
from server.oip.infer import infer
from server.oip.models import RECOMMEND_SUFFIX, TensorMeta, platform, resolve, signature
from server.registry import ModelRegistry
from server.request_guard import add_guarded_service

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "recsys-serve"
Response = TypeVar("Response")


def _server_version() -> str:
    try:
        return importlib.metadata.version(SERVER_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _tensors(tensors: tuple[TensorMeta, ...]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [pb.ModelMetadataResponse.TensorMetadata(name=t.name, datatype=t.datatype, shape=t.shape) for t in tensors]


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The OIP health, metadata and inference RPCs over a model registry (mapping: docs/oip.md).

    Args:
        registry: Resolves model names and versions to loaded versions.
        metrics: Counts calls and their latency (``method`` label: the OIP RPC name).
        backend: Name of the runtime serving every model, reported as the OIP platform.
    """

    def __init__(self, registry: ModelRegistry, metrics: Metrics, backend: str) -> None:
        self._registry = registry
        self._metrics = metrics
        self._platform = platform(backend)
        self._version = _server_version()

    async def _serve(
        self,
        method: str,
        model_name: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[], Awaitable[Response]],
    ) -> Response:
        return await serve_call(self._metrics, method, model_name, context, handler)

    def _known(self, name: str) -> Collection[str]:
        return domain.model_names(self._registry, name, name.removesuffix(RECOMMEND_SUFFIX))

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        """Live while the process answers at all."""
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        """Ready while at least one model version is ready (as grpc.health.v1 ``""`` SERVING)."""
        return pb.ServerReadyResponse(ready=domain.any_ready(self._registry))

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        """Whether a version (``""``: any) of the model is ready; false for unknown models, as Triton answers."""
        return await self._serve("ModelReady", request.name, context, lambda: self._model_ready(request))

    async def _model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        names = self._known(request.name)
        try:
            target = resolve(request.name, request.version, names)
        except ModelNotFound:
            return pb.ModelReadyResponse(ready=False)
        versions = domain.ready_versions(self._registry, target.model)
        return pb.ModelReadyResponse(ready=bool(versions) and target.version in (0, *versions))

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        """Name and version of this server; it implements none of the optional OIP extensions."""
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=self._version, extensions=[])

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        """Inputs and outputs of an OIP model, derived from the version's config.json and id mapping."""
        return await self._serve("ModelMetadata", request.name, context, lambda: self._model_metadata(request))

    async def _model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        target = resolve(request.name, request.version, self._known(request.name))
        async with domain.lease(self._registry, target.model, target.version) as model:
            config, integer_ids = domain.model_config(model), domain.integer_ids(model)
            version = domain.version(model)
        oip = signature(config, target.call, integer_ids)
        return pb.ModelMetadataResponse(
            name=request.name,
            versions=[str(v) for v in domain.ready_versions(self._registry, target.model)],
            platform=self._platform,
            inputs=_tensors(oip.inputs),
            outputs=_tensors(oip.outputs),
            properties={
                "call": target.call.value,
                "version": str(version),
                "architecture": mc.Architecture.Name(config.architecture).removeprefix("ARCHITECTURE_").lower(),
                "integer_ids": str(integer_ids).lower(),
                "num_items": str(config.num_items),
            },
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        """Predict or Recommend (by the model name's suffix) through the same batchers as recsys.v1."""
        return await self._serve("ModelInfer", request.model_name, context, lambda: self._infer(request))

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        target = resolve(request.model_name, request.model_version, self._known(request.model_name))
        return await infer(self._registry, target, request)


def add_to_server(server: grpc.aio.Server, registry: ModelRegistry, metrics: Metrics, backend: str) -> str:
    """Registers the OIP service on ``server`` (guarded like recsys.v1 against undecodable bytes).

    Returns:
        The full service name, for reflection.
    """
    servicer = InferenceService(registry, metrics, backend)
    add_guarded_service(pb.DESCRIPTOR.services_by_name["GRPCInferenceService"], servicer, server)
    return SERVICE_NAME
