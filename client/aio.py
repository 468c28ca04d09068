"""The asyncio client (``grpc.aio``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Unpack

import grpc
from grpc_health.v1 import health_pb2_grpc

from client import requests, results
from client.base import HEALTH_UNKNOWN, ClientBase, HealthCheckRequest
from client.requests import Ids, RecommendOptions
from protos.recsys.v1 import service_pb2, service_pb2_grpc


class AsyncRecsysClient(ClientBase):
    """An asyncio client of ``recsys.v1.RecommenderService``; same methods as ``RecsysClient``, awaited.

    Create it inside a running event loop (``grpc.aio`` channels belong to one loop).

    Takes the arguments of :class:`client.base.ClientBase` (target, credentials, token, timeout,
    max_message_bytes, options, retry) and offers its ``channel`` and ``stub``.
    """

    def _connect(self) -> None:
        if self._credentials is None:
            self.channel = grpc.aio.insecure_channel(self.target, options=self._options)
        else:
            self.channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
        self.stub = service_pb2_grpc.RecommenderServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def predict(
        self,
        model: str,
        user_ids: Ids,
        item_ids: Ids,
        *,
        version: int = 0,
        timeout: float | None = None,
    ) -> results.Prediction:
        """Predicted rating of each pair ``zip(user_ids, item_ids)``, in stars; see ``RecsysClient.predict``.

        Ids are all strings, or all integers (a list of ints, an integer NumPy array) for a model whose
        ``metadata(model).integer_ids`` is true; mixing the two forms raises TypeError before sending.
        """
        request = requests.predict_request(model, user_ids, item_ids, version=version)
        return results.prediction(await self.predict_message(request, timeout=timeout))

    async def predict_message(
        self, request: service_pb2.PredictRequest, *, timeout: float | None = None
    ) -> service_pb2.PredictResponse:
        """Sends a pre-built ``PredictRequest`` and returns the raw response."""
        return await self.stub.Predict(request, timeout=self._deadline(timeout), metadata=self._metadata)

    async def recommend(
        self,
        model: str,
        user_ids: Iterable[str] = (),
        *,
        timeout: float | None = None,
        **options: Unpack[RecommendOptions],
    ) -> results.Recommendations:
        """The top ``k`` items for each user, or for each ``(item_ids, ratings)`` history (LSTM).

        ``options`` are those of :class:`client.requests.RecommendOptions`: ``k=10``, ``exclude_seen=True``,
        ``candidates=()``, ``histories=()``, ``allow_popularity_fallback=False``, ``version=0``.
        """
        request = requests.recommend_request(model, user_ids, **options)
        return results.recommendations(await self.recommend_message(request, timeout=timeout))

    async def recommend_message(
        self, request: service_pb2.RecommendRequest, *, timeout: float | None = None
    ) -> service_pb2.RecommendResponse:
        """Sends a pre-built ``RecommendRequest`` and returns the raw response."""
        return await self.stub.Recommend(request, timeout=self._deadline(timeout), metadata=self._metadata)

    async def list_models(self, *, timeout: float | None = None) -> list[results.ModelStatus]:
        """Every model on the server with the state of each version."""
        response = await self.stub.ListModels(
            service_pb2.ListModelsRequest(), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return results.model_statuses(response)

    async def metadata(self, model: str, version: int = 0, *, timeout: float | None = None) -> results.ModelMetadata:
        """How a model version is served (version 0: the newest ready one)."""
        response = await self.stub.GetModelMetadata(
            requests.metadata_request(model, version), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return results.model_metadata(response)

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """``SERVING``, ``NOT_SERVING`` or ``SERVICE_UNKNOWN`` for ``service`` ("" overall, or a model name)."""
        try:
            response = await self._health.Check(
                HealthCheckRequest(service=service), timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            if self._unknown_service(error):
                return HEALTH_UNKNOWN
            raise
        return self._health_name(response.status)

    async def wait_ready(self, service: str = "", *, timeout: float = 30.0, interval: float = 0.05) -> None:
        """Waits until ``service`` is SERVING.

        Raises:
            TimeoutError: it was not SERVING within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        status = "unreachable"
        while time.monotonic() < deadline:
            try:
                status = await self.health(service, timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except grpc.RpcError as error:
                status = (
                    f"unreachable ({error.code().name})" if isinstance(error, grpc.aio.AioRpcError) else "unreachable"
                )
            if status == "SERVING":
                return
            await asyncio.sleep(interval)
        raise TimeoutError(f"{self.target}: service {service!r} not SERVING after {timeout:.1f}s (last: {status})")

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close()

    async def __aenter__(self) -> AsyncRecsysClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
