"""Workloads whose every answer is checked against what the exported files compute."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from google.protobuf.message import Message

from protos.recsys.v1 import service_pb2

from . import reference
from .drivers import Call
from .oracle import ModelFacts

Check = Callable[[Message], None]


def _spec(name: str) -> service_pb2.ModelSpec:
    return service_pb2.ModelSpec(name=name)


def predict_check(version_dir: Path, facts: ModelFacts, users: list[str], items: list[str]) -> Check:
    """Checks a PredictResponse against ONNX Runtime on the version's own predict.onnx."""
    expected = reference.predict(version_dir, facts, users, items)

    def check(response: Message) -> None:
        np.testing.assert_allclose(np.asarray(response.ratings), expected, atol=1e-5)

    return check


def recommend_check(version_dir: Path, facts: ModelFacts, user: str, k: int) -> Check:
    """Checks a one-user RecommendResponse against ONNX Runtime on the version's recommend.onnx."""
    items, scores = reference.recommend(version_dir, facts, user, k)

    def check(response: Message) -> None:
        (result,) = response.results
        assert list(result.item_ids) == items, f"items {list(result.item_ids)} != {items}"
        np.testing.assert_allclose(np.asarray(result.scores), scores, atol=1e-5)

    return check


def by_version(checks: Mapping[int, Check]) -> Check:
    """Dispatches on the answering version: the whole answer must be that version's."""

    def check(response: Message) -> None:
        version = response.model.version
        assert version in checks, f"answer from unexpected version {version}"
        checks[version](response)

    return check


def pair_calls(name: str, versions: Mapping[int, tuple[Path, ModelFacts]], rows: int, offset: int = 0) -> list[Call]:
    """A Predict of ``rows`` pairs and a one-user Recommend of model ``name``, checked per version.

    The ids are taken from the first version; every version must know them (same training data).
    """
    facts = next(iter(versions.values()))[1]
    count = len(facts.user_ids)
    users = [facts.user_ids[(offset + i) % count] for i in range(rows)]
    items = [facts.item_ids[(offset * 7 + i * 3) % len(facts.item_ids)] for i in range(rows)]
    predict = by_version({v: predict_check(d, f, users, items) for v, (d, f) in versions.items()})
    recommend = by_version({v: recommend_check(d, f, users[0], 10) for v, (d, f) in versions.items()})
    return [
        Call("Predict", service_pb2.PredictRequest(model=_spec(name), user_ids=users, item_ids=items), predict),
        Call("Recommend", service_pb2.RecommendRequest(model=_spec(name), user_ids=users[:1], k=10), recommend),
    ]


def history_call(facts: ModelFacts, first_answer: Message) -> Call:
    """A Recommend for a sent history (LSTM), which must keep getting its first answer."""

    def check(response: Message) -> None:
        assert list(response.results[0].item_ids) == list(first_answer.results[0].item_ids)
        np.testing.assert_allclose(response.results[0].scores, first_answer.results[0].scores, atol=1e-5)

    return Call("Recommend", history_request(facts), check)


def history_request(facts: ModelFacts) -> service_pb2.RecommendRequest:
    """A Recommend of the LSTM for a five-event history of the first items."""
    history = service_pb2.History(item_ids=list(facts.item_ids[:5]), ratings=[5.0, 3.0, 4.0, 1.0, 2.5])
    return service_pb2.RecommendRequest(model=_spec(facts.name), histories=[history], k=10)
