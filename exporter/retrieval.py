"""The export's retrieval step: an ANN index over the ranking tables for large catalogues, checked for recall.

A version whose catalogue holds at least :attr:`RetrievalOptions.min_items` items gets a faiss index
(``exporter.retrieval_index.build_index``) over its :class:`~exporter.ranking_tables.RankingTables`, so a
server can serve Recommend by user id without scoring every item. Before the version is published the
index's top-10 of some stored users is compared with the exact top-10 of the same tables (which equal the
signature's scores, see ``exporter.ranking_tables``): the recall is recorded in ``config.json`` and the
export fails below :attr:`RetrievalOptions.recall_floor`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exporter.errors import ExportError, ExportInputError
from exporter.ranking_tables import RankingTables
from exporter.retrieval_index import IndexSpec, augment_queries, build_index, import_faiss
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
        recall_floor: fail the export when the index's recall@10 against the exact top-10 is below this.
        recall_users: stored users the recall is measured on (all of them when fewer).
        required: fail when faiss is missing instead of exporting without an index (set when the caller
            asked for an index explicitly).
    """

    min_items: int = DEFAULT_MIN_ITEMS
    spec: IndexSpec = field(default_factory=IndexSpec)
    recall_floor: float = 0.9
    recall_users: int = 256
    required: bool = False

    def __post_init__(self) -> None:
        if self.min_items < 0 or not 0.0 <= self.recall_floor <= 1.0 or self.recall_users < 1:
            raise ExportInputError(
                f"retrieval options out of range: min_items={self.min_items} must be >= 0, "
                f"recall_floor={self.recall_floor} within [0, 1], recall_users={self.recall_users} >= 1"
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


def measure_recall(index_path: Path, tables: RankingTables, users: np.ndarray, metric: str) -> float:
    """Mean share of each user's exact top-10 found in the index's top-10 (1.0 for an exact index)."""
    faiss = import_faiss()
    index = faiss.read_index(str(index_path))
    k = min(RECALL_K, len(tables.item_vectors))
    _, found = index.search(augment_queries(tables.user_vectors[users], metric), k)
    truth = exact_top_k(tables, users, k)
    return float(np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, truth, strict=True)]))


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
    recall = measure_recall(built.path, tables, users, built.metric)
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
