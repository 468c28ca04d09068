"""Request messages built from plain Python values.

Exposed so that callers sending the same request many times (the load tester) build it once
and pass the message to ``RecsysClient.predict_message`` / ``recommend_message``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict, Unpack

from protos.recsys.v1 import service_pb2


class RecommendOptions(TypedDict, total=False):
    """Keyword options of a Recommend call (see ``RecommendRequest`` in service.proto).

    Attributes:
        k: Items per user, 1 <= k <= catalogue size (default 10).
        exclude_seen: Leave out the items the user rated in training (default True).
        candidates: Raw item ids to rank instead of the whole catalogue.
        histories: ``(item_ids, ratings)`` pairs, oldest first, instead of user ids (LSTM only).
        allow_popularity_fallback: Answer unknown users with popular items (flagged) instead of failing.
        version: Model version; 0 (default) for the newest ready one.
    """

    k: int
    exclude_seen: bool
    candidates: Iterable[str]
    histories: Sequence[tuple[Sequence[str], Sequence[float]]]
    allow_popularity_fallback: bool
    version: int


def predict_request(
    model: str, user_ids: Iterable[str], item_ids: Iterable[str], *, version: int = 0
) -> service_pb2.PredictRequest:
    """A ``PredictRequest`` for the pairs ``zip(user_ids, item_ids)``."""
    return service_pb2.PredictRequest(
        model=service_pb2.ModelSpec(name=model, version=version), user_ids=user_ids, item_ids=item_ids
    )


def recommend_request(
    model: str, user_ids: Iterable[str] = (), **options: Unpack[RecommendOptions]
) -> service_pb2.RecommendRequest:
    """A ``RecommendRequest`` for ``user_ids`` (or ``options["histories"]``); see :class:`RecommendOptions`."""
    return service_pb2.RecommendRequest(
        model=service_pb2.ModelSpec(name=model, version=options.get("version", 0)),
        user_ids=user_ids,
        histories=[service_pb2.History(item_ids=i, ratings=r) for i, r in options.get("histories", ())],
        k=options.get("k", 10),
        exclude_seen=options.get("exclude_seen", True),
        candidate_item_ids=options.get("candidates", ()),
        allow_popularity_fallback=options.get("allow_popularity_fallback", False),
    )


def metadata_request(model: str, version: int = 0) -> service_pb2.GetModelMetadataRequest:
    """A ``GetModelMetadataRequest``."""
    return service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name=model, version=version))
