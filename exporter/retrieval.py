"""The export's retrieval step: an ANN index over the ranking tables for large catalogues, checked for recall.

A version whose catalogue holds at least :attr:`RetrievalOptions.min_items` items gets a faiss index
(``exporter.retrieval_index.build_index``) over its :class:`~exporter.ranking_tables.RankingTables`, so a
server can serve Recommend by user id without scoring every item. Before the version is published the
index's top-10 of some stored users is compared with the exact top-10 of the same tables (which equal the
signature's scores, see ``exporter.ranking_tables``): the recall is recorded in ``config.json`` and the
export fails below :attr:`RetrievalOptions.recall_floor`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import ExportError, ExportInputError
from exporter.files import sha256_file
from exporter.ranking_tables import RankingTables
from exporter.retrieval_index import BuiltIndex, IndexSpec, augment_queries, build_index, import_faiss
from protos.recsys.v1 import model_config_pb2 as mc

_LOGGER = logging.getLogger(__name__)

DEFAULT_MIN_ITEMS = 100_000
"""Catalogue size from which an index is built by default: below it, scoring every item costs well under 1 ms."""

RECALL_K = 10


class RetrievalError(ExportError):
    """The retrieval index misses too many of the exact top items, or could not be built."""


@dataclass(frozen=True)
class RetrievalOptions:
    """Whether and how to build a version's retrieval index.

    Attributes:
        min_items: build the index for catalogues of at least this many items; it is also written as the
            config's ``min_num_items``, the size from which a server uses it.
        spec: which index (kind and parameters), IVF-Flat by default.
        recall_target: an IVF index searches more cells (``nprobe`` doubled) until its recall@10 reaches
            this, or searches them all (:func:`tune_nprobe`); ``bench/retrieval.py``'s target.
        recall_floor: fail the export when the index's recall@10 against the exact top-10 is below this.
        recall_users: stored users the recall is measured on (all of them when fewer).
        required: fail when faiss is missing instead of exporting without an index (set when the caller
            asked for an index explicitly).
    """

    min_items: int = DEFAULT_MIN_ITEMS
    spec: IndexSpec = field(default_factory=IndexSpec)
    recall_target: float = 0.95
    recall_floor: float = 0.9
    recall_users: int = 256
    required: bool = False

    def __post_init__(self) -> None:
        recalls_in_range = 0.0 <= self.recall_floor <= 1.0 and 0.0 <= self.recall_target <= 1.0
        if self.min_items < 0 or not recalls_in_range or self.recall_users < 1:
            raise ExportInputError(
                f"retrieval options out of range: min_items={self.min_items} must be >= 0, "
                f"recall_floor={self.recall_floor} and recall_target={self.recall_target} within [0, 1], "
                f"recall_users={self.recall_users} >= 1"
            )


def wants_index(tables: RankingTables | None, num_items: int, options: RetrievalOptions) -> bool:
    """Whether this version gets an index: the catalogue is large enough, there are tables, and faiss is here.

    Raises:
        ExportInputError: an index is due and asked for explicitly (``options.required``) but the version has
            no frozen ranking tables or faiss is missing.
    """
    if num_items < options.min_items:
        return False
    if tables is None:
        if options.required:
            raise ExportInputError(
                "a retrieval index was asked for, but this architecture's Recommend by user id is not a frozen "
                "dot product (no FrozenDotRanking serves it); export without --retrieval-min-items"
            )
        return False
    try:
        import_faiss()
    except ImportError as error:
        if options.required:
            raise ExportInputError(str(error)) from error
        _LOGGER.warning("%d items but no retrieval index: %s", num_items, error)
        return False
    return True


def recall_users(history_counts: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` user indices with a stored history, evenly spread over the users (deterministic)."""
    users = np.flatnonzero(history_counts > 0)
    if len(users) > count:
        users = users[np.linspace(0, len(users) - 1, count).round().astype(np.int64)]
    return users.astype(np.int64)


def exact_top_k(tables: RankingTables, users: np.ndarray, k: int) -> np.ndarray:
    """int64 [len(users), k]: the best ``k`` items of each user by the exact scores (chunks of 32 users)."""
    out = np.empty((len(users), k), np.int64)
    for lo in range(0, len(users), 32):
        scores = tables.scores(users[lo : lo + 32])
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.argsort(-scores, axis=1)
        out[lo : lo + 32] = best[:, :k]
    return out


@dataclass(frozen=True)
class RecallCheck:
    """The exact top-10 of some users and their queries, computed once, to score any index against.

    Attributes:
        queries: float32 [U, d'], the users' vectors as the index expects them (:func:`augment_queries`).
        truth: int64 [U, k], each user's exact top-k items.
    """

    queries: np.ndarray
    truth: np.ndarray

    @classmethod
    def of_users(cls, tables: RankingTables, users: np.ndarray, metric: str) -> RecallCheck:
        """The check of ``users`` on ``tables``, for an index searched by ``metric``."""
        truth = exact_top_k(tables, users, min(RECALL_K, len(tables.item_vectors)))
        return cls(augment_queries(tables.user_vectors[users], metric), truth)

    def recall(self, index: Any) -> float:
        """Mean share of each user's exact top-k found in the index's top-k (1.0 for an exact index)."""
        k = self.truth.shape[1]
        _, found = index.search(self.queries, k)
        return float(np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, self.truth, strict=True)]))


def tune_nprobe(
    built: BuiltIndex, index: Any, check: RecallCheck, target: float, recall: float
) -> tuple[BuiltIndex, float]:
    """Double an IVF index's ``nprobe`` until its recall@10 reaches ``target`` or every cell is searched.

    The cells k-means finds, and so the recall of a given ``nprobe``, depend on the model's vectors: the
    same settings gave recall@10 0.957 at 1M items but 0.918 at 100K items with fewer cells
    (``bench/retrieval.py``). The searched cells are stored in the index file (the server reads them from
    there), so the file is rewritten and its SHA-256 and parameters updated. Other kinds, and an index
    that already reaches the target or searches every cell, come back as given.

    Args:
        built: the written index.
        index: the same index, loaded (``faiss.read_index``), whose ``nprobe`` is raised.
        check: the users' exact top-10 it is scored against.
        target: recall@10 to reach.
        recall: its recall@10 now.

    Returns:
        The index as written, and its recall@10.
    """
    if built.kind != "ivf":
        return built, recall
    lists, searched = int(built.parameters["lists"]), index.nprobe
    while recall < target and index.nprobe < lists:
        index.nprobe = min(lists, 2 * index.nprobe)
        recall = check.recall(index)
        _LOGGER.info("retrieval index ivf: nprobe %d gives recall@%d %.3f", index.nprobe, RECALL_K, recall)
    if index.nprobe == searched:
        return built, recall
    import_faiss().write_index(index, str(built.path))
    parameters = {**built.parameters, "nprobe": str(index.nprobe)}
    return dataclasses.replace(built, sha256=sha256_file(built.path), parameters=parameters), recall


def build_retrieval_index(
    tables: RankingTables, history_counts: np.ndarray, folder: Path, options: RetrievalOptions
) -> mc.RetrievalIndex:
    """Build, check and describe the index of one version.

    Args:
        tables: the ranking tables (also written as side files).
        history_counts: int64 [num_users] training ratings per user; recall is measured on users with some.
        folder: the version's staging folder.
        options: index kind and the recall floor.

    Returns:
        The config's ``retrieval_index`` message.

    Raises:
        RetrievalError: the recall is below the floor, or no user has a stored history to measure it on.
    """
    users = recall_users(history_counts, options.recall_users)
    if not len(users):
        raise RetrievalError("no user has a stored history to measure the retrieval index's recall on")
    built = build_index(tables.item_vectors, tables.item_bias, folder, options.spec)
    check = RecallCheck.of_users(tables, users, built.metric)
    index = import_faiss().read_index(str(built.path))
    recall = check.recall(index)
    built, recall = tune_nprobe(built, index, check, options.recall_target, recall)
    _LOGGER.info("retrieval index %s: recall@%d %.3f over %d users", built.kind, RECALL_K, recall, len(users))
    if recall < options.recall_floor:
        raise RetrievalError(
            f"retrieval index {built.kind} ({built.parameters}) reached recall@{RECALL_K} {recall:.3f} over "
            f"{len(users)} users, below the floor {options.recall_floor}: raise nprobe / ef_search, choose "
            "another kind, or lower the floor"
        )
    return mc.RetrievalIndex(
        path=built.path.name,
        sha256=built.sha256,
        kind=built.kind,
        metric=built.metric,
        parameters=built.parameters,
        min_num_items=options.min_items,
        signature=tables.signature,
        dim=built.dim,
        num_items=built.num_items,
        recall_at_10=recall,
        recall_users=len(users),
        build_seconds=built.build_seconds,
    )
