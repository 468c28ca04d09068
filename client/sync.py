"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Unpack

import grpc
from grpc_health.v1 import health_pb2_grpc

from client import requests, results
from client.base import HEALTH_UNKNOWN, ClientBase, HealthCheckRequest
from client.requests import Ids, RecommendOptions
from protos.recsys.v1 import service_pb2, service_pb2_grpc


class RecsysClient(ClientBase):
    """A blocking client of ``recsys.v1.RecommenderService``.

    Errors come back as ``grpc.RpcError`` with the server's status code and a message naming
    what to fix (see service.proto).

    Takes the arguments of :class:`client.base.ClientBase` (target, credentials, token, timeout,
    max_message_bytes, options, retry) and offers its ``channel`` and ``stub``.
    """

    def _connect(self) -> None:
        if self._credentials is None:
            self.channel = grpc.insecure_channel(self.target, options=self._options)
        else:
            self.channel = grpc.secure_channel(self.target, self._credentials, options=self._options)
        self.stub = service_pb2_grpc.RecommenderServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def predict(
        self,
        model: str,
        user_ids: Ids,
        item_ids: Ids,
        *,
        version: int = 0,
        timeout: float | None = None,
    ) -> results.Prediction:
        """Predicted rating of each pair ``zip(user_ids, item_ids)``, in stars.

        Ids are strings (``["196", "186"]``) or, for a model whose ``metadata(model).integer_ids`` is true,
        integers: a list of ints or an integer NumPy array (``np.array([196, 186])``), sent as the packed
        ``user_int_ids``/``item_int_ids`` fields that the server reads about ten times faster. Both sides
        take the same form; see :func:`client.requests.predict_request`.

        Raises:
            TypeError: Integer ids on one side and strings on the other (nothing is sent).
            grpc.RpcError: The server's status, e.g. INVALID_ARGUMENT for unknown ids.
        """
        request = requests.predict_request(model, user_ids, item_ids, version=version)
        return results.prediction(self.predict_message(request, timeout=timeout))

    def predict_message(
        self, request: service_pb2.PredictRequest, *, timeout: float | None = None
    ) -> service_pb2.PredictResponse:
        """Sends a pre-built ``PredictRequest`` and returns the raw response."""
        return self.stub.Predict(request, timeout=self._deadline(timeout), metadata=self._metadata)

    def recommend(
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
        return results.recommendations(self.recommend_message(request, timeout=timeout))

    def recommend_message(
        self, request: service_pb2.RecommendRequest, *, timeout: float | None = None
    ) -> service_pb2.RecommendResponse:
        """Sends a pre-built ``RecommendRequest`` and returns the raw response."""
        return self.stub.Recommend(request, timeout=self._deadline(timeout), metadata=self._metadata)

    def list_models(self, *, timeout: float | None = None) -> list[results.ModelStatus]:
        """Every model on the server with the state of each version."""
        response = self.stub.ListModels(
            service_pb2.ListModelsRequest(), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return results.model_statuses(response)

    def metadata(self, model: str, version: int = 0, *, timeout: float | None = None) -> results.ModelMetadata:
        """How a model version is served (version 0: the newest ready one)."""
        response = self.stub.GetModelMetadata(
            requests.metadata_request(model, version), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return results.model_metadata(response)

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """``SERVING``, ``NOT_SERVING`` or ``SERVICE_UNKNOWN`` for ``service`` ("" overall, or a model name)."""
        try:
            response = self._health.Check(
                HealthCheckRequest(service=service), timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            if self._unknown_service(error):
                return HEALTH_UNKNOWN
            raise
        return self._health_name(response.status)

    def wait_ready(self, service: str = "", *, timeout: float = 30.0, interval: float = 0.05) -> None:
        """Blocks until ``service`` is SERVING.

        Raises:
            TimeoutError: it was not SERVING within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        status = "unreachable"
        while time.monotonic() < deadline:
            try:
                status = self.health(service, timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except grpc.RpcError as error:
                status = f"unreachable ({error.code().name})" if isinstance(error, grpc.Call) else "unreachable"
            if status == "SERVING":
                return
            time.sleep(interval)
        raise TimeoutError(f"{self.target}: service {service!r} not SERVING after {timeout:.1f}s (last: {status})")

    def close(self) -> None:
        """Closes the channel."""
        self.channel.close()

    def __enter__(self) -> RecsysClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
