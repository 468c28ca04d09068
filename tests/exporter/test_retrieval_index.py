"""Building the retrieval index: the bias folded in, the L2 transform order-preserving, files described."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from exporter.files import sha256_file
from exporter.retrieval_index import KINDS, IndexSpec, augment_items, augment_queries, build_index, l2_transform

faiss = pytest.importorskip("faiss")


@pytest.fixture
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((500, 8)).astype(np.float32), rng.standard_normal(500).astype(np.float32)


def test_bias_is_folded_into_the_inner_product(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, biases = vectors
    users = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    folded = augment_queries(users, "inner_product") @ augment_items(items, biases).T
    np.testing.assert_allclose(folded, users @ items.T + biases, rtol=1e-5, atol=1e-5)
    assert augment_items(items).shape == (500, 9) and not augment_items(items)[:, -1].any()


def test_l2_transform_orders_items_as_the_inner_product_does(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    rows, max_norm = l2_transform(augment_items(*vectors))
    queries = augment_queries(np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32), "l2")
    distances = ((queries[:, None, :] - rows[None, :, :]) ** 2).sum(axis=2)
    scores = queries[:, :-1] @ rows[:, :-1].T
    np.testing.assert_array_equal(np.argsort(distances, axis=1)[:, :20], np.argsort(-scores, axis=1)[:, :20])
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), max_norm, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_written_and_described(kind: str, vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    built = build_index(*vectors, tmp_path / "v1", IndexSpec(kind=kind, ivf_lists=8))
    assert built.path == tmp_path / "v1" / "retrieval.faiss" and built.sha256 == sha256_file(built.path)
    assert (built.kind, built.dim, built.num_items) == (kind, 8, 500)
    assert built.metric == ("l2" if kind == "hnsw" else "inner_product")
    index = faiss.read_index(str(built.path))
    assert index.ntotal == 500 and index.d == 8 + (2 if kind == "hnsw" else 1)
    if kind.startswith("hnsw"):
        assert built.parameters["m"] == "32" and index.hnsw.efSearch == int(built.parameters["ef_search"])
    if kind == "ivf":
        assert built.parameters["lists"] == "8"


def test_unusable_vectors_and_specs_are_refused(vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    items, biases = vectors
    broken = items.copy()
    broken[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        build_index(broken, biases, tmp_path)
    with pytest.raises(ValueError, match=r"item biases must have shape \(500,\)"):
        build_index(items, biases[:10], tmp_path)
    with pytest.raises(ValueError, match="unknown retrieval index kind 'lsh'"):
        IndexSpec(kind="lsh")
    assert not list(tmp_path.iterdir())


def test_missing_faiss_says_how_to_install_it(
    vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[retrieval\]'"):
        build_index(*vectors, tmp_path)
