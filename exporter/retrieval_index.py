"""Approximate nearest-neighbour index over a model's item vectors, for catalogues too large to score whole.

A model whose Recommend scores are ``s(u, i) = c_u + <p_u, q_i> + b_i`` (MF, the GCN's frozen tables,
the LSTM's encoded users) ranks items by inner product once the bias is folded in: item rows
``[q_i, b_i]`` and queries ``[p_u, 1]``. These index kinds are built over those rows with faiss:

- ``hnsw-ip``: a HNSW graph (Malkov & Yashunin, 2018, ``IndexHNSWFlat``) searched by inner product: at
  20K factor-shaped items it reached recall@10 0.995 where the same graph over the
  rows turned into an L2 problem by one more coordinate ``sqrt(M^2 - |x_i|^2)`` (Bachrach et al.,
  2014), kind ``hnsw``, reached 0.84: the extra coordinate dominates for the many low-norm (unpopular)
  items and flattens the neighbourhoods the graph is built from. ``hnsw`` stays for comparison.
- ``ivf``: an inverted file of k-means cells (``IndexIVFFlat``, inner product), searched in ``nprobe`` cells,
  the default: ``bench/retrieval.py`` at 1M x 64 gave recall@10 0.957 (target 0.95) at ~1 ms p50 / 1.5 ms p99,
  a 257 MiB file, where ``hnsw-ip`` (M=32, efSearch=128) gave 0.890 and a 507 MiB file (100K: 0.956 vs 0.972).
- ``flat``: exact search (``IndexFlatIP``), for tests and small catalogues.

The index only proposes candidates: the server re-scores them exactly from the item vectors, so
returned scores equal the model's. faiss is an optional dependency (``pip install -e .[retrieval]``),
imported when an index is built.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from exporter.files import sha256_file

_LOGGER = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("hnsw", "hnsw-ip", "ivf", "flat")
INDEX_FILE_NAME = "retrieval.faiss"


@dataclass(frozen=True)
class IndexSpec:
    """Which index to build, with its parameters.

    Attributes:
        kind: one of :data:`KINDS`; ``ivf`` was chosen by measurement (``bench/retrieval.py``).
        hnsw_m: graph neighbours per node (HNSW's M): more gives higher recall, a larger file, slower builds.
        ef_construction: candidate list while building the graph.
        ef_search: candidate list while searching (the server may raise it per query; at least k is used).
        ivf_lists: k-means cells of ``ivf``; ``0`` picks ``4 * sqrt(num_items)``.
        ivf_nprobe: cells searched per query by ``ivf``.
        threads: faiss threads while building (0 keeps faiss' default, all cores).
    """

    kind: str = "ivf"
    hnsw_m: int = 32
    ef_construction: int = 64
    ef_search: int = 128
    ivf_lists: int = 0
    ivf_nprobe: int = 64
    threads: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown retrieval index kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if min(self.hnsw_m, self.ef_construction, self.ef_search, self.ivf_nprobe) < 1 or self.ivf_lists < 0:
            raise ValueError(f"index parameters must be positive, got {self}")


@dataclass(frozen=True)
class BuiltIndex:
    """An index written to a version folder, described for the model config.

    Attributes:
        path: the index file.
        sha256: hex SHA-256 of the file.
        kind: the :data:`KINDS` entry it was built as.
        metric: ``inner_product`` or ``l2`` (what faiss searches; scores are inner products either way).
        dim: dimension of the query vectors it expects before augmentation (the model's user vectors).
        num_items: items indexed, ids 0..num_items-1 = item indices.
        parameters: everything needed to reproduce or tune it, as strings (a proto ``map<string, string>``).
        build_seconds: wall-clock seconds to build (train, add, write).
    """

    path: Path
    sha256: str
    kind: str
    metric: str
    dim: int
    num_items: int
    parameters: dict[str, str] = field(default_factory=dict)
    build_seconds: float = 0.0


def import_faiss() -> ModuleType:
    """faiss, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "retrieval indexes need faiss: pip install -e '.[retrieval]' (faiss-cpu), or export without one"
        ) from error
    return faiss


def augment_items(item_vectors: np.ndarray, item_biases: np.ndarray | None = None) -> np.ndarray:
    """Rows ``[q_i, b_i]``, float32 [num_items, d + 1], so that ``<[p, 1], [q_i, b_i]> = <p, q_i> + b_i``.

    Raises:
        ValueError: not a 2-D float array, non-finite values, or biases of the wrong length.
    """
    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
        raise ValueError(f"item vectors must be float32 [num_items, d], got shape {vectors.shape}")
    biases = np.zeros(len(vectors), np.float32) if item_biases is None else np.asarray(item_biases, np.float32)
    if biases.shape != (len(vectors),):
        raise ValueError(f"item biases must have shape ({len(vectors)},), got {biases.shape}")
    rows = np.concatenate([vectors, biases[:, None]], axis=1)
    if not np.isfinite(rows).all():
        raise ValueError("item vectors or biases hold NaN or infinite values: the model is broken, re-train it")
    return np.ascontiguousarray(rows)


def augment_queries(user_vectors: np.ndarray, metric: str) -> np.ndarray:
    """Queries ``[p_u, 1]`` (inner product) or ``[p_u, 1, 0]`` (the L2 transform), float32 [B, d + 1 or d + 2]."""
    vectors = np.asarray(user_vectors, dtype=np.float32)
    columns = [vectors, np.ones((len(vectors), 1), np.float32)]
    if metric == "l2":
        columns.append(np.zeros((len(vectors), 1), np.float32))
    return np.ascontiguousarray(np.concatenate(columns, axis=1))


def l2_transform(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """Rows with ``sqrt(M^2 - |x|^2)`` appended (M the largest norm), so L2 order equals inner-product order."""
    norms = np.einsum("nd,nd->n", rows, rows, dtype=np.float64)
    top = float(norms.max())
    extra = np.sqrt(np.maximum(top - norms, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.concatenate([rows, extra[:, None]], axis=1)), top**0.5


def _make(faiss: ModuleType, spec: IndexSpec, rows: np.ndarray) -> tuple[object, dict[str, str]]:
    dim = rows.shape[1]
    if spec.kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if spec.kind in ("hnsw", "hnsw-ip"):
        metric = faiss.METRIC_L2 if spec.kind == "hnsw" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, metric)
        index.hnsw.efConstruction = spec.ef_construction
        index.hnsw.efSearch = spec.ef_search
        return index, {
            "m": str(spec.hnsw_m),
            "ef_construction": str(spec.ef_construction),
            "ef_search": str(spec.ef_search),
        }
    lists = spec.ivf_lists or max(1, min(len(rows) // 39, round(4 * np.sqrt(len(rows)))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = min(spec.ivf_nprobe, lists)
    return index, {"lists": str(lists), "nprobe": str(index.nprobe)}


def build_index(
    item_vectors: np.ndarray,
    item_biases: np.ndarray | None,
    folder: Path,
    spec: IndexSpec | None = None,
    *,
    file_name: str = INDEX_FILE_NAME,
    seed: int = 0,
) -> BuiltIndex:
    """Build an index over items and write it to ``folder/file_name`` with ``faiss.write_index``.

    Args:
        item_vectors: float32 [num_items, d], the model's item factors (row = item index).
        item_biases: float32 [num_items] added to each item's score, or None.
        folder: the version's staging folder.
        spec: which index; defaults to :class:`IndexSpec` (IVF-Flat, inner product).
        file_name: the file's name inside ``folder``.
        seed: seeds IVF's k-means sample.

    Returns:
        The written index with its SHA-256 and parameters.

    Raises:
        ValueError: unusable vectors (see :func:`augment_items`).
        ImportError: faiss is not installed.
    """
    faiss = import_faiss()
    spec = spec or IndexSpec()
    start = time.perf_counter()
    if spec.threads:
        faiss.omp_set_num_threads(spec.threads)
    rows = augment_items(item_vectors, item_biases)
    parameters: dict[str, str] = {"bias_column": "true"}
    metric = "inner_product"
    if spec.kind == "hnsw":
        rows, max_norm = l2_transform(rows)
        parameters["max_norm"] = repr(max_norm)
        metric = "l2"
    index, own = _make(faiss, spec, rows)
    parameters.update(own)
    if not index.is_trained:
        sample = rows
        cap = 256 * int(own["lists"])
        if len(rows) > cap:
            sample = rows[np.sort(np.random.default_rng(seed).choice(len(rows), cap, replace=False))]
        index.train(sample)
    index.add(rows)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    faiss.write_index(index, str(path))
    seconds = time.perf_counter() - start
    built = BuiltIndex(
        path=path,
        sha256=sha256_file(path),
        kind=spec.kind,
        metric=metric,
        dim=int(np.asarray(item_vectors).shape[1]),
        num_items=len(rows),
        parameters=parameters,
        build_seconds=seconds,
    )
    _LOGGER.info(
        "built %s index over %d items x %d in %.1f s: %s", spec.kind, built.num_items, built.dim, seconds, path
    )
    return built
