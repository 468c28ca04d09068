"""Index-backed top-k: exact when the index is, and k results whenever k eligible items exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporter.retrieval_index import IndexSpec, build_index
from server.errors import ModelLoadError
from server.retrieval import RetrievalIndex, SearchOptions, as_candidates

faiss = pytest.importorskip("faiss")

NUM_ITEMS, DIM = 400, 8


@pytest.fixture(scope="module")
def factors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((NUM_ITEMS, DIM)).astype(np.float32)
    biases = rng.standard_normal(NUM_ITEMS).astype(np.float32)
    users = rng.standard_normal((6, DIM)).astype(np.float32)
    return items, biases, users


def _folder(tmp_path: Path, factors, kind: str, **spec) -> Path:
    items, biases, _ = factors
    built = build_index(items, biases, tmp_path, IndexSpec(kind=kind, **spec))
    np.save(tmp_path / "item_vectors.npy", items)
    np.save(tmp_path / "item_biases.npy", biases)
    return built.path


def _load(tmp_path: Path, factors, kind: str, options: SearchOptions | None = None, **spec) -> RetrievalIndex:
    path = _folder(tmp_path, factors, kind, **spec)
    return RetrievalIndex.load(path, tmp_path / "item_vectors.npy", tmp_path / "item_biases.npy", options=options)


def exact_top_k(users, items, biases, k, seen_rows=(), seen_items=(), candidates=None):
    scores = users @ items.T + biases
    scores[np.asarray(seen_rows, np.int64), np.asarray(seen_items, np.int64)] = -np.inf
    if candidates is not None:
        allowed = np.zeros(len(items), bool)
        allowed[candidates] = True
        scores[:, ~allowed] = -np.inf
    out = []
    for row in scores:
        order = np.lexsort((np.arange(len(row)), -row))
        order = order[np.isfinite(row[order])][:k]
        out.append((order, row[order]))
    return out


def assert_equal_results(got, expected) -> None:
    assert len(got) == len(expected)
    for (items, scores), (want_items, want_scores) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_an_exact_index_gives_exact_top_k_with_seen_items_and_candidates(tmp_path: Path, factors) -> None:
    items, biases, users = factors
    index = _load(tmp_path, factors, "flat", SearchOptions(small_candidates=0))
    assert_equal_results(index.search(users, 10), exact_top_k(users, items, biases, 10))
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(len(users)), 30)
    seen_items = rng.integers(0, NUM_ITEMS, len(rows))
    candidates = as_candidates(rng.choice(NUM_ITEMS, 150, replace=False))
    got = index.search(users, 10, seen=(rows, seen_items), candidates=candidates)
    assert_equal_results(got, exact_top_k(users, items, biases, 10, rows, seen_items, candidates))
    small = SearchOptions()  # the candidate list is now small enough to be scored without the index
    assert_equal_results(
        RetrievalIndex(index.index, items, biases, small).search(
            users, 10, seen=(rows, seen_items), candidates=candidates
        ),
        got,
    )


@pytest.mark.parametrize("exact_fraction", [0.25, 1.0])  # 1.0: the index itself is asked for the whole catalogue
@pytest.mark.parametrize("kind", ["hnsw", "hnsw-ip", "ivf"])
def test_a_user_who_has_seen_all_but_k_items_still_gets_k(
    tmp_path: Path, factors, kind: str, exact_fraction: float
) -> None:
    users = factors[2]
    options = SearchOptions(exact_fraction=exact_fraction)
    index = _load(tmp_path, factors, kind, options, ivf_lists=16, ivf_nprobe=1)
    k = 10
    keep = np.random.default_rng(2).choice(NUM_ITEMS, k, replace=False)
    seen_items = np.setdiff1d(np.arange(NUM_ITEMS), keep)
    [(got, scores)] = index.search(users[:1], k, seen=(np.zeros(len(seen_items), np.int64), seen_items))
    assert sorted(got.tolist()) == sorted(keep.tolist())
    assert np.all(np.diff(scores) <= 0)
    more_seen = np.concatenate([seen_items, keep[:3]])
    [(got, _)] = index.search(users[:1], k, seen=(np.zeros(len(more_seen), np.int64), more_seen))
    assert sorted(got.tolist()) == sorted(keep[3:].tolist()), "only 7 eligible items: all 7, nothing seen"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_a_candidate_list_of_exactly_k_items_returns_all_of_them(tmp_path: Path, factors, kind: str) -> None:
    users = factors[2]
    index = _load(tmp_path, factors, kind, SearchOptions(small_candidates=0), ivf_lists=16, ivf_nprobe=1)
    candidates = as_candidates(np.random.default_rng(3).choice(NUM_ITEMS, 10, replace=False))
    for got, _ in index.search(users, 10, candidates=candidates):
        np.testing.assert_array_equal(np.sort(got), candidates)


def test_over_fetching_fills_rows_a_single_filtered_search_leaves_short(tmp_path: Path, factors) -> None:
    items, biases, users = factors
    index = _load(tmp_path, factors, "ivf", SearchOptions(exact_fraction=1.0), ivf_lists=16, ivf_nprobe=1)
    k = 10
    best = np.argsort(-(users @ items.T + biases), axis=1)[:, :200]  # each user has seen their top 200
    rows = np.repeat(np.arange(len(users)), 200)
    _, single = index.index.search(np.concatenate([users, np.ones((len(users), 1), np.float32)], axis=1), k + 200)
    short = [len(np.setdiff1d(single[r][single[r] >= 0], best[r])) for r in range(len(users))]
    assert min(short) < k, "the Merlin-style single search must come up short for this test to mean anything"
    for row, (got, _) in enumerate(index.search(users, k, seen=(rows, best.reshape(-1)))):
        assert len(got) == k and not np.isin(got, best[row]).any()


def test_offsets_are_added_to_every_score(tmp_path: Path, factors) -> None:
    _, _, users = factors
    index = _load(tmp_path, factors, "flat")
    plain = index.search(users[:2], 5)
    shifted = index.search(users[:2], 5, offsets=np.array([1.5, -2.0], np.float32))
    for (items, scores), (items2, scores2), offset in zip(plain, shifted, [1.5, -2.0], strict=True):
        np.testing.assert_array_equal(items, items2)
        np.testing.assert_allclose(scores2, scores + offset, rtol=1e-6)


def test_files_are_memory_mapped_and_checked(tmp_path: Path, factors) -> None:
    items = factors[0]
    index = _load(tmp_path, factors, "hnsw")
    assert isinstance(index.item_vectors, np.memmap) and isinstance(index.item_biases, np.memmap)
    np.save(tmp_path / "short.npy", items[:100])
    with pytest.raises(ModelLoadError, match="holds 400 x 10 rows but the item vectors are 100 x 8"):
        RetrievalIndex.load(tmp_path / "retrieval.faiss", tmp_path / "short.npy")
    np.save(tmp_path / "pickled.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelLoadError, match=r"pickled\.npy cannot be read as a plain \.npy"):
        RetrievalIndex.load(tmp_path / "retrieval.faiss", tmp_path / "pickled.npy")
    (tmp_path / "broken.faiss").write_bytes(b"not an index")
    with pytest.raises(ModelLoadError, match=r"broken\.faiss cannot be read"):
        RetrievalIndex.load(tmp_path / "broken.faiss", tmp_path / "item_vectors.npy")


def test_bad_queries_are_refused(tmp_path: Path, factors) -> None:
    index = _load(tmp_path, factors, "flat")
    with pytest.raises(ValueError, match=r"queries \[B, 8\]"):
        index.search(np.zeros((2, 5), np.float32), 3)
    with pytest.raises(ValueError, match="k >= 1"):
        index.search(np.zeros((2, 8), np.float32), 0)
