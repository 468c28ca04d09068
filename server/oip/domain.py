"""The one place the OIP servicer touches the serving domain: leases, Predict, Recommend, metadata.

The servicer only converts tensors and never reaches into a loaded version itself: every call it
makes into the registry and a ``ServedModel`` goes through the functions below, the same calls
``server/servicer.py`` makes for recsys.v1, so that both APIs run through the same dynamic batchers
and give the same numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from protos.recsys.v1 import model_config_pb2 as mc
from server.errors import ModelNotFound
from server.model import RecommendQuery, ServedModel
from server.registry import READY, ModelRegistry

Model = ServedModel
"""What a lease hands out: an opaque, loaded model version."""


@dataclass(frozen=True)
class Recommendations:
    """Top-k of each user, as ids: ``item_ids[row]`` best first, with ``scores[row]`` and ``fallback[row]``."""

    item_ids: list[list[str]]
    scores: list[np.ndarray]
    fallback: list[bool]


def lease(registry: ModelRegistry, name: str, version: int) -> contextlib.AbstractAsyncContextManager[Model]:
    """The version a call runs on, counted in flight (so it is not unloaded) until the block ends.

    Args:
        registry: The server's model registry.
        name: Model name (only ever used as a dictionary key).
        version: Version number; 0 for the newest ready one.

    Raises:
        ModelNotFound: no such model or version.
        ModelNotReady: the version is loading, broken, superseded or unloading.
    """
    return registry.lease(name, version)


def version(model: Model) -> int:
    """The version number of a leased model."""
    return model.version


def integer_ids(model: Model) -> bool:
    """Whether every user and item id of the version is a decimal integer (int64 inputs allowed)."""
    return model.catalog.integer_ids


async def predict(model: Model, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
    """Predicted rating of each (user, item) pair of raw string ids, in stars, float32 [B].

    Raises:
        InvalidInput: empty or mismatched lists, too many rows, unknown ids (all named).
    """
    return await model.predict(user_ids, item_ids)


async def predict_integers(model: Model, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """:func:`predict` for pairs of integer ids, int64 [B] each.

    Raises:
        InvalidInput: as :func:`predict`, or the version's ids are not all integers.
    """
    return await model.predict_integers(user_ids, item_ids)


async def recommend(
    model: Model, user_ids: Sequence[str], *, k: int, exclude_seen: bool, allow_popularity_fallback: bool
) -> Recommendations:
    """The top-k items of each user, exactly as recsys.v1 Recommend ranks them.

    Raises:
        InvalidInput: empty request, k outside 1..items, too many rows, unknown users (unless the
            popularity fallback is allowed).
    """
    query = RecommendQuery(
        user_ids=user_ids, k=k, exclude_seen=exclude_seen, allow_popularity_fallback=allow_popularity_fallback
    )
    ranked = await model.recommend(query)
    return Recommendations(
        item_ids=[result.item_ids for result in ranked],
        scores=[result.scores for result in ranked],
        fallback=[result.fallback for result in ranked],
    )


def ready_versions(registry: ModelRegistry, name: str) -> list[int]:
    """The ready versions of a model, newest first; empty for an unknown model or none ready."""
    return [record.version for record in registry.models().get(name, []) if record.state == READY]


def model_names(registry: ModelRegistry, name: str, stem: str) -> Collection[str]:
    """Model names to resolve the OIP name ``name`` (``stem`` + an optional suffix) against.

    The ready names when they decide the answer (cheap, once per call); else every model of the
    repository, ready or not, so that a model that is not ready is UNAVAILABLE rather than NOT_FOUND.
    """
    ready = registry.ready_models()
    if name in ready or (stem in ready and not _exists(registry, name)):
        return ready
    return registry.models().keys()


def _exists(registry: ModelRegistry, name: str) -> bool:
    try:
        registry.record(name)
    except ModelNotFound:
        return False
    return True


def any_ready(registry: ModelRegistry) -> bool:
    """Whether at least one model version is ready to serve."""
    return bool(registry.ready_models())


def model_config(model: Model) -> mc.ModelConfig:
    """The exported config (``config.json``) of a leased model: its signatures, sizes and architecture."""
    return model.config
