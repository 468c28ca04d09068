"""What the server must answer to any request, from the contract in service.proto alone.

An independent, deliberately plain re-statement of the documented rules: given a request and
the facts of the exported models (read from the repository with numpy, no server code), it
returns the status codes the contract allows and, for OK, a check of the response's content.
The fuzz tests compare the real server with it call by call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from protos.recsys.v1 import model_config_pb2 as mc
from protos.recsys.v1 import service_pb2

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
TOO_BIG = grpc.StatusCode.RESOURCE_EXHAUSTED

Check = Callable[[Message], None]

_INTEGER_FORM = re.compile(r"0|-?[1-9][0-9]*")  # ASCII digits, no sign but "-", no leading zero, no "-0"


def has_integer_form(raw_id: str) -> bool:
    """service.proto: "a decimal integer (written exactly as str(int) would, within int64)".

    Stated here as a pattern, independently of ``protos.rules``, so that the two statements check each other.
    """
    return bool(_INTEGER_FORM.fullmatch(raw_id)) and -(2**63) <= int(raw_id) < 2**63


@dataclass(frozen=True, repr=False)
class ModelFacts:
    """What the contract lets a client know about one exported version, read from its folder."""

    name: str
    version: int
    reads_histories: bool
    history_for: frozenset[str]
    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    seen: dict[str, frozenset[str]]
    popularity: dict[str, float]
    max_history_length: int
    rating_min: float
    rating_max: float

    @property
    def integer_ids(self) -> bool:
        """GetModelMetadataResponse.integer_ids: every user and item id has an integer form."""
        return all(map(has_integer_form, self.user_ids)) and all(map(has_integer_form, self.item_ids))

    def __repr__(self) -> str:
        return f"ModelFacts({self.name!r} v{self.version})"

    @property
    def sequential(self) -> bool:
        """The version takes histories sent in Recommend requests."""
        return self.reads_histories

    @property
    def num_items(self) -> int:
        return len(self.item_ids)


def _is_history(spec: mc.TensorSpec) -> bool:
    """model_config.proto: the kind says it; versions exported before kinds keep the kind's name."""
    return spec.kind == mc.TENSOR_KIND_HISTORY_ITEMS or (not spec.kind and spec.name == "history_items")


def _calls_needing_a_stored_history(config: mc.ModelConfig) -> frozenset[str]:
    """The calls ("Predict", "Recommend") that refuse a user id whose stored training history is empty.

    model_config.proto: a signature marked ``reads_stored_history`` (or, exported before that field, named
    ``*_user``) has meaningless rows for such users, and one taking a history has none to read; Predict is
    answered by the signatures with a ``rating`` output, Recommend by those with ``scores``.
    """
    calls = set()
    for signature in config.signatures:
        legacy = not config.architecture_name and signature.name.endswith("_user")
        if signature.reads_stored_history or legacy or any(_is_history(spec) for spec in signature.inputs):
            outputs = {spec.name for spec in signature.outputs}
            calls |= {"Predict"} if "rating" in outputs else {"Recommend"} if "scores" in outputs else set()
    return frozenset(calls)


def read_facts(version_dir: Path) -> ModelFacts:
    """Reads a version folder's config.json and side files (numpy without pickle)."""
    config = json_format.Parse((version_dir / "config.json").read_text(), mc.ModelConfig(), ignore_unknown_fields=True)
    side = {entry.kind: np.load(version_dir / entry.path, allow_pickle=False) for entry in config.side_files}
    users = [str(u) for u in side[mc.SIDE_FILE_KIND_USER_IDS].tolist()]
    items = [str(i) for i in side[mc.SIDE_FILE_KIND_ITEM_IDS].tolist()]
    offsets = side[mc.SIDE_FILE_KIND_HISTORY_OFFSETS]
    history = side[mc.SIDE_FILE_KIND_HISTORY_ITEMS]
    seen = {
        user: frozenset(items[i] for i in history[offsets[u] : offsets[u + 1]].tolist()) for u, user in enumerate(users)
    }
    popularity = dict(zip(items, side[mc.SIDE_FILE_KIND_ITEM_POPULARITY].astype(float).tolist(), strict=True))
    return ModelFacts(
        name=config.name,
        version=int(config.version),
        reads_histories=any(_is_history(spec) for signature in config.signatures for spec in signature.inputs),
        history_for=_calls_needing_a_stored_history(config),
        user_ids=tuple(users),
        item_ids=tuple(items),
        seen=seen,
        popularity=popularity,
        max_history_length=int(config.max_history_length),
        rating_min=float(config.rating_scale.min),
        rating_max=float(config.rating_scale.max),
    )


@dataclass(frozen=True)
class Served:
    """The models a server serves (name -> version -> facts) and its request limits."""

    models: dict[str, dict[int, ModelFacts]]
    max_rows: int
    max_message_bytes: int

    def resolve(self, spec: service_pb2.ModelSpec) -> ModelFacts | None:
        """The version a ModelSpec names (0: the newest), or None when the contract says NOT_FOUND."""
        versions = self.models.get(spec.name)
        if not versions:
            return None
        return versions[max(versions)] if spec.version == 0 else versions.get(spec.version)


@dataclass(frozen=True)
class Expectation:
    """The status codes a request may get, and a check of an OK response."""

    codes: frozenset[grpc.StatusCode]
    why: str
    check: Check | None = None


def _refuse(code: grpc.StatusCode, why: str) -> Expectation:
    return Expectation(frozenset({code}), why)


def _target(request: Message, served: Served) -> ModelFacts | Expectation:
    """The version a request names, or the refusal it earns before any of its fields is looked at."""
    if request.ByteSize() > served.max_message_bytes:
        return _refuse(TOO_BIG, "request larger than max_message_bytes")
    facts = served.resolve(request.model)
    return _refuse(NOT_FOUND, "unknown model or version") if facts is None else facts


def _known_user(facts: ModelFacts, user: str, call: str) -> bool:
    return user in facts.seen and (call not in facts.history_for or bool(facts.seen[user]))


def _predict_pairs(request: service_pb2.PredictRequest, facts: ModelFacts) -> tuple[list[str], list[str]] | str:
    """The pairs as raw ids, from the string or the integer fields, or why the contract refuses them."""
    if not (request.user_int_ids or request.item_int_ids):
        return list(request.user_ids), list(request.item_ids)
    if request.user_ids or request.item_ids:
        return "both string and integer ids set"
    if len(request.user_int_ids) != len(request.item_int_ids):
        return "user_int_ids and item_int_ids differ in length"
    if not facts.integer_ids:
        return "integer ids sent to a version whose ids are not all integers"
    return [str(u) for u in request.user_int_ids], [str(i) for i in request.item_int_ids]


def expect_predict(request: service_pb2.PredictRequest, served: Served) -> Expectation:
    """What Predict must answer, to pairs sent as strings or as integers."""
    facts = _target(request, served)
    if isinstance(facts, Expectation):
        return facts
    pairs = _predict_pairs(request, facts)
    if isinstance(pairs, str):
        return _refuse(INVALID, pairs)
    users, items = pairs
    known_items = set(facts.item_ids)
    if len(users) != len(items):
        return _refuse(INVALID, "user_ids and item_ids differ in length")
    if not users:
        return _refuse(INVALID, "no pairs")
    if len(users) > served.max_rows:
        return _refuse(INVALID, "more pairs than max_rows_per_request")
    if not all(_known_user(facts, u, "Predict") for u in users) or not all(i in known_items for i in items):
        return _refuse(INVALID, "unknown user or item id")

    def check(response: Message) -> None:
        assert response.model.name == facts.name and response.model.version == facts.version
        ratings = np.asarray(response.ratings, dtype=np.float64)
        assert ratings.shape == (len(users),)
        assert np.all(np.isfinite(ratings))
        assert np.all((ratings >= facts.rating_min - 1e-5) & (ratings <= facts.rating_max + 1e-5))

    return Expectation(frozenset({OK}), "valid pairs", check)


def _history_problem(facts: ModelFacts, history: service_pb2.History) -> str | None:
    items, ratings = list(history.item_ids), list(history.ratings)
    if len(items) != len(ratings):
        return "history item_ids and ratings differ in length"
    if not 1 <= len(items) <= facts.max_history_length:
        return "history length outside 1..max_history_length"
    known = set(facts.item_ids)
    if not all(i in known for i in items):
        return "unknown history item"
    for rating in ratings:
        if not math.isfinite(rating) or not facts.rating_min <= rating <= facts.rating_max:
            return "history rating not finite or outside the rating scale"
    return None


def _recommend_problem(request: service_pb2.RecommendRequest, facts: ModelFacts, served: Served) -> str | None:
    users, histories = list(request.user_ids), list(request.histories)
    if users and histories:
        return "both user_ids and histories"
    rows = len(users) or len(histories)
    if rows == 0:
        return "neither user_ids nor histories"
    if rows > served.max_rows:
        return "more rows than max_rows_per_request"
    if not 1 <= request.k <= facts.num_items:
        return "k outside 1..num_items"
    if histories and not facts.sequential:
        return "histories sent to a model that does not read histories"
    known = set(facts.item_ids)
    if not all(c in known for c in request.candidate_item_ids):
        return "unknown candidate item"
    for history in histories:
        problem = _history_problem(facts, history)
        if problem:
            return problem
    if not request.allow_popularity_fallback and not all(_known_user(facts, u, "Recommend") for u in users):
        return "unknown user without popularity fallback"
    return None


def expect_recommend(request: service_pb2.RecommendRequest, served: Served) -> Expectation:
    """What Recommend must answer."""
    facts = _target(request, served)
    if isinstance(facts, Expectation):
        return facts
    problem = _recommend_problem(request, facts, served)
    if problem:
        return _refuse(INVALID, problem)
    exclude_seen = request.exclude_seen if request.HasField("exclude_seen") else True
    pool = set(request.candidate_item_ids) or set(facts.item_ids)
    rows = [(u, set(facts.seen.get(u, ())), not _known_user(facts, u, "Recommend")) for u in request.user_ids]
    rows += [("", set(h.item_ids), False) for h in request.histories]

    def check(response: Message) -> None:
        assert response.model.name == facts.name and response.model.version == facts.version
        assert len(response.results) == len(rows)
        for result, (user, seen, fallback) in zip(response.results, rows, strict=True):
            got = list(result.item_ids)
            scores = np.asarray(result.scores, dtype=np.float64)
            assert result.user_id == user and result.fallback == fallback
            assert len(got) == len(set(got)) == len(scores) <= request.k
            assert set(got) <= pool
            assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 1e-6)
            if fallback:
                assert scores.tolist() == [facts.popularity[i] for i in got]
                assert len(got) == min(request.k, len(pool))
                continue
            available = pool - seen if exclude_seen else pool
            assert set(got) <= available
            assert len(got) == min(request.k, len(available))

    return Expectation(frozenset({OK}), "valid recommendation request", check)


def expect_bytes(method: str, payload: bytes, served: Served) -> Expectation:
    """What a method must answer to raw bytes: INVALID_ARGUMENT if they do not decode, else as parsed."""
    message_type = {"Predict": service_pb2.PredictRequest, "Recommend": service_pb2.RecommendRequest}[method]
    if len(payload) > served.max_message_bytes:
        return _refuse(TOO_BIG, "request larger than max_message_bytes")
    try:
        request = message_type.FromString(payload)
    except DecodeError:
        return _refuse(INVALID, "bytes do not decode")
    return expect_predict(request, served) if method == "Predict" else expect_recommend(request, served)
