"""The GCN's precomputed adjacency: normalisation, per-level structure and sampled propagation."""

from __future__ import annotations

import pytest
import torch

from trainer.models.graph import history_edges, level_graph, normalized_adjacency, propagate_rows, row_neighbours

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


def _random_graph(seed: int = 0, users: int = 30, items: int = 12, edges: int = 200) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.unique(
        torch.stack(
            [
                torch.randint(0, users, (edges,), generator=generator),
                torch.randint(0, items, (edges,), generator=generator),
            ],
            1,
        ),
        dim=0,
    )
    return normalized_adjacency(users, items, pairs[:, 0], pairs[:, 1])


def test_propagating_rows_with_every_neighbour_is_the_sparse_product() -> None:
    adjacency = _random_graph()
    x = torch.randn(adjacency.size(0), 5)
    rows = torch.tensor([0, 7, 30, 41, 3, 30])
    exact = (adjacency @ x)[rows]
    torch.testing.assert_close(propagate_rows(adjacency, x, rows), exact)
    longest = int((adjacency.crow_indices().diff()).max())
    torch.testing.assert_close(propagate_rows(adjacency, x, rows, sample=longest), exact)  # no row is long


def test_sampled_rows_are_unbiased_and_bounded_by_the_sample() -> None:
    adjacency = _random_graph()
    x = torch.randn(adjacency.size(0), 4)
    rows = torch.arange(30, 42)  # the items, read by up to ~30 users each
    degree = adjacency.crow_indices().diff()[rows]
    assert int(degree.max()) > 6
    owner, _, _ = row_neighbours(adjacency, rows, sample=6)
    assert torch.bincount(owner, minlength=len(rows)).tolist() == torch.clamp(degree, max=6).tolist()
    generator = torch.Generator().manual_seed(1)
    draws = torch.stack([propagate_rows(adjacency, x, rows, 6, generator) for _ in range(4000)])
    exact = (adjacency @ x)[rows]
    assert not torch.allclose(draws[0], exact, atol=1e-3)  # one draw is an estimate
    standard_error = draws.std(0) / len(draws) ** 0.5
    assert ((draws.mean(0) - exact).abs() <= 5 * standard_error + 1e-6).all()  # unbiased: within 5 standard errors


@pytest.mark.parametrize("normalization", ["left", "symmetric"])
def test_level_graph_holds_every_level_adjacency(normalization: str) -> None:
    """Its entries of level r are GC-MC's level-r adjacency; a duplicate rating stays its own entry."""
    user, item = torch.cat([USER, torch.tensor([0])]), torch.cat([ITEM, torch.tensor([1])])  # (0, 1) twice
    level = torch.tensor([0, 1, 1, 0, 2, 1, 2])
    graph, entry_levels = level_graph(3, 4, user, item, level, normalization)
    assert graph.layout == torch.sparse_csr and len(entry_levels) == graph.values().numel() == 2 * len(user)
    crow, col, values = graph.crow_indices(), graph.col_indices(), graph.values()
    rows = torch.repeat_interleave(torch.arange(7), crow.diff())
    for r in range(3):
        chosen = entry_levels == r
        dense = torch.zeros(7, 7).index_put_((rows[chosen], col[chosen]), values[chosen], accumulate=True)
        want = normalized_adjacency(3, 4, user, item, (level == r).float(), normalization).to_dense()
        torch.testing.assert_close(dense, want)
