"""Top-k items from an approximate nearest-neighbour index, with seen items and candidate lists honoured.

The index (written by the exporter, see ``exporter/retrieval_index.py``) proposes items; this module
filters out what a user must not be offered, re-scores what remains exactly from the item vectors,
and asks again for more whenever filtering left fewer than k. Merlin's ``QueryFaiss`` filters after
one top-k search and can return fewer than k; here a row gets ``min(k, eligible items)`` results,
where eligible means in the candidate list (or the catalogue) and not seen: after a few rounds of
over-fetching, rows still short are scored exactly over the whole catalogue (or candidate list).

Index and item vectors are memory-mapped (``faiss.IO_FLAG_MMAP_IFC``, ``np.load(mmap_mode="r")``), so
server processes serving the same version share one copy of the pages.

The server never imports the trainer or exporter; this module needs only numpy and faiss (optional:
``pip install -e .[retrieval]``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from server.errors import ModelLoadError

_LOGGER = logging.getLogger(__name__)

Ranked = tuple[np.ndarray, np.ndarray]
"""Per row: item indices int64 [<=k] and their exact scores float32 [<=k], best first."""


@dataclass(frozen=True)
class SearchOptions:
    """How hard to search before falling back to exact scoring.

    Attributes:
        rounds: index searches per call, the fetch size doubling each time, before rows still short of
            k are scored exactly.
        exact_fraction: once a fetch would exceed this share of the eligible items, score exactly
            instead (the index would visit most of the catalogue anyway).
        small_candidates: candidate lists up to this size are scored exactly without the index (a
            matrix-vector product over a few thousand rows is cheaper than a graph search plus filtering).
        ef_search: HNSW candidate list per search (raised to the fetch size when that is larger); 0 keeps
            the index's own.
    """

    rounds: int = 4
    exact_fraction: float = 0.25
    small_candidates: int = 4096
    ef_search: int = 0


def _import_faiss() -> ModuleType:
    try:
        import faiss
    except ImportError as error:
        raise ModelLoadError(
            "this version has a retrieval index but faiss is not installed: pip install -e '.[retrieval]'"
        ) from error
    return faiss


def load_vectors(path: Path, *, mmap: bool = True) -> np.ndarray:
    """A float32 .npy side file, memory-mapped read-only by default (never unpickled).

    Raises:
        ModelLoadError: missing, unreadable, pickled or not float32 2-D/1-D.
    """
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"side file {path.name} cannot be read as a plain .npy: {error}") from error
    if array.dtype != np.float32 or array.ndim not in (1, 2):
        raise ModelLoadError(f"side file {path.name} must be float32 1-D or 2-D, got {array.dtype} {array.shape}")
    return array


class RetrievalIndex:
    """Exact top-k by index proposal and exact re-scoring: ``score = <p_u, q_i> + b_i + offset_u``.

    Args:
        index: a faiss index over rows ``[q_i, b_i]`` (inner product) or ``[q_i, b_i, sqrt(M^2 - |.|^2)]``
            (L2), ids = item indices.
        item_vectors: float32 [num_items, d] (may be a memory map).
        item_biases: float32 [num_items], or None for no item bias.
        options: search settings.

    Raises:
        ModelLoadError: the index and the vectors disagree in size or dimension.
    """

    def __init__(
        self,
        index: object,
        item_vectors: np.ndarray,
        item_biases: np.ndarray | None = None,
        options: SearchOptions | None = None,
    ) -> None:
        self.faiss = _import_faiss()
        self.index = index
        self.item_vectors = item_vectors
        self.item_biases = item_biases
        self.options = options or SearchOptions()
        self.num_items, self.dim = int(item_vectors.shape[0]), int(item_vectors.shape[1])
        self.metric = "l2" if index.metric_type == self.faiss.METRIC_L2 else "inner_product"
        expected = self.dim + (2 if self.metric == "l2" else 1)
        if index.d != expected or index.ntotal != self.num_items:
            raise ModelLoadError(
                f"retrieval index holds {index.ntotal} x {index.d} rows but the item vectors are "
                f"{self.num_items} x {self.dim} (expected {self.num_items} x {expected}): re-export the version"
            )
        if item_biases is not None and item_biases.shape != (self.num_items,):
            raise ModelLoadError(f"item biases have shape {item_biases.shape}, expected ({self.num_items},)")
        self._hnsw = getattr(index, "hnsw", None)
        if self._hnsw is not None and self.options.ef_search:
            self._hnsw.efSearch = self.options.ef_search

    @classmethod
    def load(
        cls,
        index_path: Path,
        item_vectors_path: Path,
        item_biases_path: Path | None = None,
        *,
        mmap: bool = True,
        options: SearchOptions | None = None,
    ) -> RetrievalIndex:
        """Read an index and its side files from a version folder, memory-mapped by default.

        Raises:
            ModelLoadError: a file is missing or unreadable, or the files disagree.
        """
        faiss = _import_faiss()
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        try:
            index = faiss.read_index(str(index_path), flags)
        except RuntimeError as error:
            raise ModelLoadError(f"retrieval index {index_path.name} cannot be read: {error}") from error
        vectors = load_vectors(item_vectors_path, mmap=mmap)
        biases = load_vectors(item_biases_path, mmap=mmap) if item_biases_path is not None else None
        return cls(index, vectors, biases, options)

    def exact_scores(self, queries: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """float32 [B, len(items) or num_items]: ``<p_u, q_i> + b_i`` of the given (or all) items."""
        vectors = self.item_vectors if items is None else self.item_vectors[items]
        scores = queries @ np.asarray(vectors).T
        if self.item_biases is not None:
            scores += self.item_biases if items is None else self.item_biases[items]
        return scores

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        seen: tuple[np.ndarray, np.ndarray] | None = None,
        candidates: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> list[Ranked]:
        """The best ``k`` eligible items of each query, exactly scored, best first.

        Args:
            queries: float32 [B, d] user vectors.
            k: results per row, at least 1.
            seen: (rows int64 [n], items int64 [n]) pairs a row must not get (``Catalog.seen_pairs``).
            candidates: sorted unique item indices to choose from (shared by all rows); None for all.
            offsets: float32 [B] added to every score of a row (global mean + user bias); None for 0.

        Returns:
            Per row ``(items int64 [m], scores float32 [m])`` with ``m = min(k, eligible items of the row)``.

        Raises:
            ValueError: k < 1, or queries of the wrong shape.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if k < 1 or queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"need k >= 1 and queries [B, {self.dim}], got k={k} and shape {queries.shape}")
        banned = _banned_keys(seen, self.num_items)
        if candidates is not None and len(candidates) <= self.options.small_candidates:
            results = self._exact(queries, np.arange(len(queries)), k, banned, candidates)
        else:
            results = self._indexed(queries, k, banned, candidates)
        if offsets is not None:
            results = [(items, scores + np.float32(offsets[row])) for row, (items, scores) in enumerate(results)]
        return results

    def _indexed(self, queries: np.ndarray, k: int, banned: np.ndarray, candidates: np.ndarray | None) -> list[Ranked]:
        results: list[Ranked | None] = [None] * len(queries)
        eligible_total = self.num_items if candidates is None else len(candidates)
        seen_per_row = np.bincount(banned // self.num_items, minlength=len(queries)) if len(banned) else None
        pending = np.arange(len(queries))
        fetch = k + (int(seen_per_row.max()) if seen_per_row is not None else 0)
        if candidates is not None:  # a candidate list of share s keeps about s of what the index returns
            fetch = int(np.ceil(fetch * self.num_items / max(len(candidates), 1)))
        augmented = _augment(queries, self.metric)
        for _ in range(self.options.rounds):
            if not len(pending) or fetch > self.options.exact_fraction * eligible_total:
                break
            items = self._search(augmented[pending], fetch)
            still = []
            for position, row in enumerate(pending):
                kept = _eligible(items[position], row, banned, candidates, self.num_items)
                if len(kept) >= k:
                    results[row] = self._rank(queries[row : row + 1], kept, k)
                else:
                    still.append(row)
            pending = np.asarray(still, dtype=np.int64)
            fetch *= 2
        if len(pending):
            for row, ranked in zip(pending, self._exact(queries, pending, k, banned, candidates), strict=True):
                results[row] = ranked
        return results  # type: ignore[return-value]

    def _search(self, queries: np.ndarray, fetch: int) -> np.ndarray:
        fetch = min(fetch, self.num_items)
        if self._hnsw is not None and self._hnsw.efSearch < fetch:
            params = self.faiss.SearchParametersHNSW()
            params.efSearch = fetch
            _, items = self.index.search(queries, fetch, params=params)
        else:
            _, items = self.index.search(queries, fetch)
        return items

    def _rank(self, query: np.ndarray, items: np.ndarray, k: int) -> Ranked:
        scores = self.exact_scores(query, items)[0]
        if len(items) > k:
            best = np.argpartition(-scores, k - 1)[:k]
            items, scores = items[best], scores[best]
        order = np.lexsort((items, -scores))  # ties by item index, as exact top-k over a sorted catalogue
        return items[order].astype(np.int64), scores[order].astype(np.float32)

    def _exact(
        self, queries: np.ndarray, rows: np.ndarray, k: int, banned: np.ndarray, candidates: np.ndarray | None
    ) -> list[Ranked]:
        """Exact top-k of some rows over the candidates (or the catalogue), one row at a time to bound memory."""
        out = []
        pool = np.arange(self.num_items, dtype=np.int64) if candidates is None else np.asarray(candidates, np.int64)
        for row in rows:
            items = _eligible(pool, row, banned, None, self.num_items)
            out.append(self._rank(queries[row : row + 1], items, k) if len(items) else _empty())
        return out


def _empty() -> Ranked:
    return np.empty(0, np.int64), np.empty(0, np.float32)


def _augment(queries: np.ndarray, metric: str) -> np.ndarray:
    columns = [queries, np.ones((len(queries), 1), np.float32)]
    if metric == "l2":
        columns.append(np.zeros((len(queries), 1), np.float32))
    return np.ascontiguousarray(np.concatenate(columns, axis=1))


def _banned_keys(seen: tuple[np.ndarray, np.ndarray] | None, num_items: int) -> np.ndarray:
    """Sorted unique ``row * num_items + item`` keys of the seen pairs."""
    if seen is None or not len(seen[0]):
        return np.empty(0, np.int64)
    rows, items = (np.asarray(a, np.int64) for a in seen)
    return np.unique(rows * num_items + items)


def _eligible(
    items: np.ndarray, row: int, banned: np.ndarray, candidates: np.ndarray | None, num_items: int
) -> np.ndarray:
    """``items`` without padding (-1), duplicates, the row's seen items and non-candidates, in the given order."""
    items = items[items >= 0].astype(np.int64, copy=False)
    if len(banned):
        lo, hi = np.searchsorted(banned, [row * num_items, (row + 1) * num_items])
        if hi > lo:
            items = items[~np.isin(items, banned[lo:hi] - row * num_items, assume_unique=False)]
    if candidates is not None:
        position = np.minimum(np.searchsorted(candidates, items), len(candidates) - 1)
        items = items[candidates[position] == items]
    return items


def as_candidates(candidates: Sequence[int] | np.ndarray | None) -> np.ndarray | None:
    """Sorted unique int64 item indices, the form :meth:`RetrievalIndex.search` takes, or None."""
    return None if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))


def set_search_threads(threads: int) -> None:
    """OpenMP threads of one faiss search (0 keeps faiss' default, all cores).

    The server searches from several worker threads at once, one user per call at low load: faiss'
    parallel search of a single query then mostly waits on its own threads (at 20K items over gRPC on a
    busy 2-core machine, p50 9.9 ms with the default against ~1 ms single-threaded).
    """
    if threads > 0:
        _import_faiss().omp_set_num_threads(threads)


class UserRetrieval:
    """Recommend by user index from a retrieval index: the query is the user's row of the ranking user vectors.

    It stands in for one signature (``signature``, the one routed for Recommend by user id), whose scores
    are ``user_vectors[u] @ item_vectors.T + item_bias`` (model_config.proto, ``RetrievalIndex``), so the
    scores returned equal that signature's within float error.

    Args:
        index: the version's index with its item vectors and biases.
        user_vectors: float32 [num_users, d] (``RANKING_USER_VECTORS``, may be a memory map).
        signature: the signature it stands in for.
        executor: threads searches run in, off the event loop (faiss releases the GIL).

    Attributes:
        calls: searches served so far (how tests and operators see that the index answers).
    """

    def __init__(self, index: RetrievalIndex, user_vectors: np.ndarray, signature: str, executor: Executor) -> None:
        if user_vectors.ndim != 2 or user_vectors.shape[1] != index.dim:
            raise ModelLoadError(
                f"ranking user vectors have shape {user_vectors.shape}, expected [num_users, {index.dim}]"
            )
        self.index = index
        self.user_vectors = user_vectors
        self.signature = signature
        self.executor = executor
        self.calls = 0

    async def top_k(
        self, users: np.ndarray, k: int, seen: tuple[np.ndarray, np.ndarray] | None, candidates: np.ndarray | None
    ) -> list[Ranked]:
        """The best ``k`` eligible items of each user, exactly scored, best first (see :meth:`RetrievalIndex.search`).

        Args:
            users: int64 [B] user indices.
            k: items per row.
            seen: (rows, items) pairs to leave out, or None.
            candidates: sorted unique item indices to choose from, or None for the catalogue.
        """
        self.calls += 1
        queries = np.asarray(self.user_vectors[users], dtype=np.float32)
        search = functools.partial(self.index.search, queries, k, seen=seen, candidates=candidates)
        return await asyncio.get_running_loop().run_in_executor(self.executor, search)
