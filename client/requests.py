"""Request messages built from plain Python values.

Exposed so that callers sending the same request many times (the load tester) build it once
and pass the message to ``RecsysClient.predict_message`` / ``recommend_message``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from protos.recsys.v1 import service_pb2


def predict_request(
    model: str, user_ids: Iterable[str], item_ids: Iterable[str], *, version: int = 0
) -> service_pb2.PredictRequest:
    """A ``PredictRequest`` for the pairs ``zip(user_ids, item_ids)``."""
    return service_pb2.PredictRequest(
        model=service_pb2.ModelSpec(name=model, version=version), user_ids=user_ids, item_ids=item_ids
    )


def recommend_request(
    model: str,
    user_ids: Iterable[str] = (),
    *,
    k: int = 10,
    exclude_seen: bool = True,
    candidates: Iterable[str] = (),
    histories: Sequence[tuple[Sequence[str], Sequence[float]]] = (),
    allow_popularity_fallback: bool = False,
    version: int = 0,
) -> service_pb2.RecommendRequest:
    """A ``RecommendRequest``; ``histories`` are ``(item_ids, ratings)`` pairs, oldest first."""
    return service_pb2.RecommendRequest(
        model=service_pb2.ModelSpec(name=model, version=version),
        user_ids=user_ids,
        histories=[service_pb2.History(item_ids=items, ratings=ratings) for items, ratings in histories],
        k=k,
        exclude_seen=exclude_seen,
        candidate_item_ids=candidates,
        allow_popularity_fallback=allow_popularity_fallback,
    )


def metadata_request(model: str, version: int = 0) -> service_pb2.GetModelMetadataRequest:
    """A ``GetModelMetadataRequest``."""
    return service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name=model, version=version))
