"""The gRPC servicer: protos in, domain calls, protos out.

Each RPC is a few lines; :meth:`RecommenderService._serve` is the one wrapper that times the call,
counts it in the metrics, and turns any exception into its status code (``errors.status_of``).
Handlers raise; they never abort themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import numpy as np

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc
from server.calls import serve_call
from server.errors import InvalidInput
from server.metrics import Metrics
from server.model import RecommendQuery, ServedModel
from server.registry import ModelRegistry, VersionRecord

Request = TypeVar("Request")
Response = TypeVar("Response")
_OK = grpc.StatusCode.OK


def _spec(model: ServedModel) -> pb.ModelSpec:
    return pb.ModelSpec(name=model.name, version=model.version)


def _status(record: VersionRecord) -> pb.ModelVersionStatus:
    return pb.ModelVersionStatus(version=record.version, state=record.state, reason=record.reason)


class RecommenderService(service_pb2_grpc.RecommenderServiceServicer):
    """``recsys.v1.RecommenderService`` over a model registry.

    Args:
        registry: Resolves model names and versions to loaded versions.
        metrics: Counts calls and their latency.
        backend: Name of the runtime serving every model, reported in metadata.
    """

    def __init__(self, registry: ModelRegistry, metrics: Metrics, backend: str) -> None:
        self._registry = registry
        self._metrics = metrics
        self._backend = backend

    async def _serve(
        self,
        method: str,
        model_name: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[], Awaitable[Response]],
    ) -> Response:
        return await serve_call(self._metrics, method, model_name, context, handler)

    async def Predict(self, request: pb.PredictRequest, context: grpc.aio.ServicerContext) -> pb.PredictResponse:
        """Predicts the rating of each (user, item) pair."""
        return await self._serve("Predict", request.model.name, context, lambda: self._predict(request, context))

    async def _predict(self, request: pb.PredictRequest, context: grpc.aio.ServicerContext) -> pb.PredictResponse:
        async with self._registry.lease(request.model.name, request.model.version) as model:
            if request.user_int_ids or request.item_int_ids:
                if request.user_ids or request.item_ids:
                    raise InvalidInput("set user_ids/item_ids or user_int_ids/item_int_ids, not both")
                users = np.array(request.user_int_ids, dtype=np.int64)  # packed field: copied in C
                ratings = await model.predict_integers(users, np.array(request.item_int_ids, dtype=np.int64))
            else:
                ratings = await model.predict(request.user_ids, request.item_ids)
        return pb.PredictResponse(model=_spec(model), ratings=ratings.tolist())

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        """Ranks the catalogue (or the candidates) for each user or history."""
        return await self._serve("Recommend", request.model.name, context, lambda: self._recommend(request, context))

    async def _recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        query = RecommendQuery(
            user_ids=request.user_ids,
            history_items=[history.item_ids for history in request.histories],
            history_ratings=[history.ratings for history in request.histories],
            k=request.k,
            exclude_seen=request.exclude_seen if request.HasField("exclude_seen") else True,
            candidates=request.candidate_item_ids,
            allow_popularity_fallback=request.allow_popularity_fallback,
        )
        async with self._registry.lease(request.model.name, request.model.version) as model:
            ranked = await model.recommend(query)
        results = [
            pb.RecommendResult(user_id=r.user_id, item_ids=r.item_ids, scores=r.scores.tolist(), fallback=r.fallback)
            for r in ranked
        ]
        return pb.RecommendResponse(model=_spec(model), results=results)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        """Lists every model with the state of each version."""
        return await self._serve("ListModels", "", context, self._list_models)

    async def _list_models(self) -> pb.ListModelsResponse:
        models = [
            pb.ModelStatus(name=name, versions=[_status(record) for record in records])
            for name, records in self._registry.models().items()
        ]
        return pb.ListModelsResponse(models=models)

    async def GetModelMetadata(
        self, request: pb.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelMetadataResponse:
        """Describes one version: exported config, state, backend, providers and batching."""
        return await self._serve("GetModelMetadata", request.model.name, context, lambda: self._metadata(request))

    async def _metadata(self, request: pb.GetModelMetadataRequest) -> pb.GetModelMetadataResponse:
        record = self._registry.record(request.model.name, request.model.version)
        response = pb.GetModelMetadataResponse(status=_status(record), backend=self._backend)
        if record.config is not None:
            response.config.CopyFrom(record.config)
        model = record.model
        if model is not None:
            response.execution_providers.extend(model.engine.runtime.providers)
            settings = model.engine.settings
            response.batching.max_batch_size = settings.max_batch_size
            response.batching.max_queue_delay_us = settings.max_queue_delay_us
            response.batching.max_queue_rows = settings.max_queue_rows
            response.integer_ids = model.catalog.integer_ids
        return response
