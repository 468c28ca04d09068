"""The GCN's precomputed adjacency: normalisation and per-level structure."""

from __future__ import annotations

import pytest
import torch

from trainer.models.graph import history_edges, normalized_adjacency

USER = torch.tensor([0, 0, 1, 2, 2, 2])
ITEM = torch.tensor([0, 1, 1, 0, 1, 2])


def test_left_normalisation_averages_neighbours() -> None:
    adjacency = normalized_adjacency(3, 4, USER, ITEM, normalization="left").to_dense()
    degree = torch.tensor([2, 1, 3, 2, 3, 1, 0], dtype=torch.float32)
    torch.testing.assert_close(adjacency.sum(dim=1), (degree > 0).float())  # isolated item 3: zero row
    assert adjacency[0, 3] == pytest.approx(0.5) and adjacency[3, 0] == pytest.approx(0.5)


def test_symmetric_normalisation() -> None:
    adjacency = normalized_adjacency(3, 4, USER, ITEM).to_dense()
    torch.testing.assert_close(adjacency, adjacency.t())
    assert adjacency[2, 3 + 2] == pytest.approx(1 / (3**0.5 * 1))
    assert adjacency.layout == torch.strided and normalized_adjacency(3, 4, USER, ITEM).layout == torch.sparse_csr


def test_level_subsets_share_the_full_degree() -> None:
    level = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    part = normalized_adjacency(3, 4, USER, ITEM, level, "left").to_dense()
    whole = normalized_adjacency(3, 4, USER, ITEM, normalization="left").to_dense()
    assert int((part != 0).sum()) == 6  # three edges of that level, both directions
    kept = part != 0
    torch.testing.assert_close(part[kept], whole[kept])
    with pytest.raises(ValueError, match="unknown normalization"):
        normalized_adjacency(3, 4, USER, ITEM, normalization="right")


def test_history_edges_expand_csr() -> None:
    users, items = history_edges([0, 2, 2, 3], [5, 6, 7])
    assert users.tolist() == [0, 0, 2] and items.tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="do not match"):
        history_edges([0, 2], [1, 2, 3])
