"""Checks a sample of the answers a load test received: fast and wrong is not a result.

A server under load may answer quickly with the wrong number of rows, NaN scores, an unsorted
ranking or items the user already rated. Each step keeps a sample of successful responses and this
module checks them against the requests that produced them and the model's id space.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from protos.recsys.v1 import service_pb2

from .workload import IdSpace, Workload

_MAX_REPORTED = 5
_SCALE_TOLERANCE = 1e-3


@dataclass
class SanityReport:
    """Result of checking sampled responses.

    Attributes:
        checked: Responses checked.
        failed: Responses with at least one problem.
        problems: The first few problems, one line each.
    """

    checked: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every checked response passed."""
        return self.failed == 0

    def add(self, index: int, problems: list[str]) -> None:
        """Count one checked response of call ``index`` and keep its first problems."""
        self.checked += 1
        if problems:
            self.failed += 1
            room = _MAX_REPORTED - len(self.problems)
            self.problems.extend(f"call {index}: {p}" for p in problems[: max(room, 0)])


def pair_count(request: service_pb2.PredictRequest) -> int:
    """Pairs a Predict request asks for, whether sent as string ids or as integer ids (only one form is set)."""
    return max(len(request.user_ids), len(request.user_int_ids))


def _check_predict(request: service_pb2.PredictRequest, response: bytes, ids: IdSpace | None) -> list[str]:
    ratings = list(service_pb2.PredictResponse.FromString(response).ratings)
    problems = []
    pairs = pair_count(request)
    if len(ratings) != pairs:
        problems.append(f"{len(ratings)} ratings for {pairs} pairs")
    bad = [r for r in ratings if not math.isfinite(r)]
    if bad:
        problems.append(f"{len(bad)} non-finite ratings, e.g. {bad[0]}")
    if ids is not None and ids.rating_scale is not None:
        low, high = ids.rating_scale
        outside = [
            r for r in ratings if math.isfinite(r) and not low - _SCALE_TOLERANCE <= r <= high + _SCALE_TOLERANCE
        ]
        if outside:
            problems.append(f"{len(outside)} ratings outside the scale [{low}, {high}], e.g. {outside[0]}")
    return problems


class _RecommendChecker:
    def __init__(self, ids: IdSpace | None) -> None:
        self.ids = ids
        self.user_index = {} if ids is None else {u: i for i, u in enumerate(ids.user_ids.tolist())}
        self.item_index = {} if ids is None else {u: i for i, u in enumerate(ids.item_ids.tolist())}

    def check(self, request: service_pb2.RecommendRequest, response: bytes) -> list[str]:
        results = service_pb2.RecommendResponse.FromString(response).results
        problems = []
        if request.histories:  # a history's own items are its "seen" items; results carry no user id
            rows = [("", set(history.item_ids)) for history in request.histories]
        else:
            rows = [(user, self._seen_items(user)) for user in request.user_ids]
        if len(results) != len(rows):
            problems.append(f"{len(results)} results for {len(rows)} {'histories' if request.histories else 'users'}")
        for (user, seen), result in zip(rows, results, strict=False):
            problems.extend(f"user {user!r}: {p}" for p in self._result(user, seen, request, result))
        return problems

    def _seen_items(self, user: str) -> set[str] | None:
        if self.ids is None or user not in self.user_index:
            return None
        seen_index = self.ids.seen_items(self.user_index[user])
        return None if seen_index is None else set(self.ids.item_ids[seen_index].tolist())

    def _result(
        self,
        user: str,
        seen: set[str] | None,
        request: service_pb2.RecommendRequest,
        result: service_pb2.RecommendResult,
    ) -> list:
        items, scores = list(result.item_ids), list(result.scores)
        problems = []
        if result.user_id != user:
            problems.append(f"result is for user {result.user_id!r}")
        if len(items) != len(scores) or not 1 <= len(items) <= request.k:
            problems.append(f"{len(items)} items and {len(scores)} scores for k={request.k}")
        if not all(math.isfinite(s) for s in scores):
            problems.append("non-finite scores")
        elif any(a < b for a, b in itertools.pairwise(scores)):
            problems.append("scores not in descending order")
        if len(set(items)) != len(items):
            problems.append("an item appears twice")
        if self.item_index:
            unknown = [i for i in items if i not in self.item_index]
            if unknown:
                problems.append(f"unknown items {unknown[:3]}")
        problems.extend(self._seen(seen, request, items))
        return problems

    def _seen(self, seen: set[str] | None, request: service_pb2.RecommendRequest, items: list[str]) -> list[str]:
        exclude = request.exclude_seen if request.HasField("exclude_seen") else True
        if seen is None or not exclude:
            return []
        leaked = [i for i in items if i in seen]
        problems = [f"recommends seen items {leaked[:3]} although exclude_seen"] if leaked else []
        if self.ids is not None:
            expected = min(request.k, len(self.ids.item_ids) - len(seen))
            if len(items) != expected:
                problems.append(f"{len(items)} items where {expected} unseen items were available for k={request.k}")
        return problems


def check_responses(workload: Workload, samples: Sequence[tuple[int, bytes]], ids: IdSpace | None) -> SanityReport:
    """Check sampled responses against their requests.

    Args:
        workload: The workload that produced them (call ``i`` sent payload ``i % len(payloads)``).
        samples: ``(call number, response bytes)`` pairs.
        ids: The model's id space; with histories it also checks ``exclude_seen``. None checks only the
            response's own consistency.

    Returns:
        The report.
    """
    report = SanityReport()
    recommend = _RecommendChecker(ids) if workload.spec.method == "recommend" else None
    for index, response in samples:
        request = workload.parse_request(index)
        try:
            if recommend is None:
                problems = _check_predict(request, response, ids)
            else:
                problems = recommend.check(request, response)
        except Exception as error:  # a response that does not even parse is a failed check, not a crash
            problems = [f"response does not parse: {error}"]
        report.add(index, problems)
    return report
