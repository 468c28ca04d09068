"""recsys-serve: a typed Python client of the gRPC API.

``RecsysClient`` blocks, ``AsyncRecsysClient`` awaits; both return the dataclasses of
:mod:`client.results` and raise ``grpc.RpcError`` with the server's status code. Depends on
``protos`` only.
"""

from client.aio import AsyncRecsysClient
from client.channel import DEFAULT_RETRY, DEFAULT_TIMEOUT_S, RetryPolicy
from client.requests import metadata_request, predict_request, recommend_request
from client.results import (
    ModelMetadata,
    ModelStatus,
    Prediction,
    Recommendation,
    Recommendations,
    VersionStatus,
)
from client.sync import RecsysClient

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT_S",
    "AsyncRecsysClient",
    "ModelMetadata",
    "ModelStatus",
    "Prediction",
    "Recommendation",
    "Recommendations",
    "RecsysClient",
    "RetryPolicy",
    "VersionStatus",
    "metadata_request",
    "predict_request",
    "recommend_request",
]
