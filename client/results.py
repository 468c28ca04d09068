"""Typed results of the client, converted from the response messages in one place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protos.recsys.v1 import model_config_pb2, service_pb2


@dataclass(frozen=True)
class Prediction:
    """Answer to a Predict call.

    Attributes:
        ratings: float32 [pairs], the predicted rating of each pair in stars, in request order.
        model: Model name.
        version: The version that computed every rating.
    """

    ratings: np.ndarray
    model: str
    version: int


@dataclass(frozen=True)
class Recommendation:
    """Ranked items for one user or history.

    Attributes:
        user_id: The user (empty for a history).
        item_ids: Raw item ids, best first.
        scores: float32 [len(item_ids)], the model's ranking score of each item (no unit: only the
            order counts; versions exported before ranking heads give unclipped stars); for a fallback,
            the item's number of training ratings.
        fallback: True when the user was unknown and these are the most popular items.
    """

    user_id: str
    item_ids: list[str]
    scores: np.ndarray
    fallback: bool


@dataclass(frozen=True)
class Recommendations:
    """Answer to a Recommend call: one :class:`Recommendation` per user or history, in order."""

    results: list[Recommendation]
    model: str
    version: int


@dataclass(frozen=True)
class VersionStatus:
    """State of one model version on the server.

    Attributes:
        version: Version number.
        state: ``LOADING``, ``READY``, ``UNAVAILABLE`` or ``UNLOADING``.
        reason: Why it is not ready; empty when ready.
    """

    version: int
    state: str
    reason: str


@dataclass(frozen=True)
class ModelStatus:
    """A model and every version the server knows of, newest first."""

    name: str
    versions: list[VersionStatus]


@dataclass(frozen=True)
class ModelMetadata:
    """How one model version is served.

    Attributes:
        status: Its state.
        config: The exported ``ModelConfig`` (signatures, sizes, metrics, parity, ...).
        backend: ``onnx`` or ``torchscript``.
        execution_providers: Providers or devices really in use, best first.
        max_batch_size: Dynamic batching: most rows per runtime call.
        max_queue_delay_us: Dynamic batching: longest wait for a batch, in microseconds.
        max_queue_rows: Dynamic batching: queue bound in rows.
        integer_ids: Every user and item id is a decimal integer, so ``predict`` takes integer ids (faster).
    """

    status: VersionStatus
    config: model_config_pb2.ModelConfig
    backend: str
    execution_providers: list[str]
    max_batch_size: int
    max_queue_delay_us: int
    max_queue_rows: int
    integer_ids: bool = False


_STATE_PREFIX = len("VERSION_STATE_")


def version_status(message: service_pb2.ModelVersionStatus) -> VersionStatus:
    """Converts a ``ModelVersionStatus`` message."""
    return VersionStatus(message.version, service_pb2.VersionState.Name(message.state)[_STATE_PREFIX:], message.reason)


def prediction(response: service_pb2.PredictResponse) -> Prediction:
    """Converts a ``PredictResponse``."""
    ratings = np.fromiter(response.ratings, np.float32, len(response.ratings))
    return Prediction(ratings, response.model.name, response.model.version)


def recommendations(response: service_pb2.RecommendResponse) -> Recommendations:
    """Converts a ``RecommendResponse``."""
    results = [
        Recommendation(r.user_id, list(r.item_ids), np.fromiter(r.scores, np.float32, len(r.scores)), r.fallback)
        for r in response.results
    ]
    return Recommendations(results, response.model.name, response.model.version)


def model_statuses(response: service_pb2.ListModelsResponse) -> list[ModelStatus]:
    """Converts a ``ListModelsResponse``."""
    return [ModelStatus(m.name, [version_status(v) for v in m.versions]) for m in response.models]


def model_metadata(response: service_pb2.GetModelMetadataResponse) -> ModelMetadata:
    """Converts a ``GetModelMetadataResponse``."""
    return ModelMetadata(
        status=version_status(response.status),
        config=response.config,
        backend=response.backend,
        execution_providers=list(response.execution_providers),
        max_batch_size=response.batching.max_batch_size,
        max_queue_delay_us=response.batching.max_queue_delay_us,
        max_queue_rows=response.batching.max_queue_rows,
        integer_ids=response.integer_ids,
    )
