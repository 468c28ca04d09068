"""The normalised user-item bipartite adjacency the GCN propagates over (plain torch, built once)."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def history_edges(
    history_offsets: np.ndarray | torch.Tensor, history_items: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand CSR training histories into (user, item) edge arrays.

    Args:
        history_offsets: int64 [num_users + 1] CSR offsets.
        history_items: int64 [n] item index of each training rating.

    Returns:
        (user int64 [n], item int64 [n]).
    """
    offsets = torch.as_tensor(np.asarray(history_offsets), dtype=torch.long)
    items = torch.as_tensor(np.asarray(history_items), dtype=torch.long)
    if offsets.dim() != 1 or offsets.numel() < 1 or int(offsets[-1]) != items.numel():
        raise ValueError(
            f"history_offsets (last value {int(offsets[-1]) if offsets.numel() else 'n/a'}) do not match "
            f"{items.numel()} history items"
        )
    users = torch.repeat_interleave(torch.arange(offsets.numel() - 1), offsets.diff())
    return users, items


NORMALIZATIONS: tuple[str, ...] = ("symmetric", "left")


def normalized_adjacency(
    num_users: int,
    num_items: int,
    user: torch.Tensor,
    item: torch.Tensor,
    weight: torch.Tensor | None = None,
    normalization: str = "symmetric",
) -> torch.Tensor:
    """Normalised bipartite adjacency as a sparse CSR matrix.

    ``symmetric`` is ``D^-1/2 A D^-1/2`` (Kipf & Welling); ``left`` is ``D^-1 A``, so a node receives the
    mean of its neighbours' messages (GC-MC's left normalisation). Nodes ``0..num_users-1`` are users and
    ``num_users..num_users+num_items-1`` items; each rating is an undirected edge. Degrees count all edges
    of a node even when ``weight`` selects a subset (GC-MC's per-rating-level graphs share one
    normalisation), and isolated nodes get zero rows.

    Args:
        num_users: number of user nodes.
        num_items: number of item nodes.
        user: int64 [n] user index of each edge.
        item: int64 [n] item index of each edge.
        weight: optional float32 [n] edge weights (e.g. 1 for one rating level, 0 elsewhere).
        normalization: ``symmetric`` or ``left``.

    Returns:
        float32 sparse CSR tensor [num_users + num_items, num_users + num_items].

    Raises:
        ValueError: unknown normalisation.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    num_nodes = num_users + num_items
    row = torch.cat([user, item + num_users])
    col = torch.cat([item + num_users, user])
    degree = torch.bincount(row, minlength=num_nodes).float()
    if normalization == "left":
        value = (1.0 / degree.clamp(min=1))[row]
    else:
        inv_sqrt = degree.clamp(min=1).rsqrt() * (degree > 0)
        value = inv_sqrt[row] * inv_sqrt[col]
    if weight is not None:
        value = value * torch.cat([weight, weight]).float()
        keep = value != 0
        row, col, value = row[keep], col[keep], value[keep]
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, (num_nodes, num_nodes), check_invariants=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return coo.coalesce().to_sparse_csr()


def row_neighbours(
    adjacency: torch.Tensor, rows: torch.Tensor, sample: int = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The neighbours a propagation step reads for ``rows``, all of them or an unbiased sample.

    With ``sample`` 0, or for a row of at most ``sample`` neighbours, every entry of the row is returned
    with its value. A longer row gets ``sample`` entries drawn uniformly with replacement, each value
    scaled by ``degree / sample``, so that ``sum(value * x[neighbour])`` over the returned entries is an
    unbiased estimate of the row's product with ``x`` (GraphSAGE's neighbour sampling, Hamilton et al.
    2017): the cost of a step is bounded by ``len(rows) * sample``, not by the graph.

    Args:
        adjacency: float32 sparse CSR [N, N] (:func:`normalized_adjacency`).
        rows: int64 [R] row indices.
        sample: neighbours kept per long row (0 keeps every neighbour).
        generator: random stream of the draws.

    Returns:
        (owner int64 [E], neighbour int64 [E], value float32 [E]): entry e adds ``value[e] *
        x[neighbour[e]]`` to output row ``owner[e]`` (an index into ``rows``).
    """
    crow, col, values = adjacency.crow_indices(), adjacency.col_indices(), adjacency.values()
    starts, degree = crow[rows], crow[rows + 1] - crow[rows]
    whole = degree if sample <= 0 else torch.where(degree <= sample, degree, torch.zeros_like(degree))
    owner = torch.repeat_interleave(torch.arange(len(rows)), whole)
    first = torch.repeat_interleave(torch.cumsum(whole, 0) - whole, whole)
    position = torch.repeat_interleave(starts, whole) + torch.arange(len(owner)) - first
    value = values[position]
    if sample > 0:
        long_rows = torch.nonzero(degree > sample).squeeze(1)
        if len(long_rows):
            draws = torch.rand(len(long_rows), sample, generator=generator)
            offset = (draws * degree[long_rows].unsqueeze(1)).long().clamp(max=degree[long_rows].unsqueeze(1) - 1)
            drawn = (starts[long_rows].unsqueeze(1) + offset).reshape(-1)
            scale = (degree[long_rows].float() / sample).repeat_interleave(sample)
            owner = torch.cat([owner, long_rows.repeat_interleave(sample)])
            position = torch.cat([position, drawn])
            value = torch.cat([value, values[drawn] * scale])
    return owner, col[position], value


def propagate_rows(
    adjacency: torch.Tensor,
    x: torch.Tensor,
    rows: torch.Tensor,
    sample: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rows ``rows`` of ``adjacency @ x`` (or their unbiased estimate, see :func:`row_neighbours`): [R, d]."""
    owner, neighbour, value = row_neighbours(adjacency, rows, sample, generator)
    # As a sparse product: its gradient is one more sparse product, where gathering and scattering the
    # [E, d] messages took ~4x as long at MovieLens 5M's shape.
    picked = torch.sparse_coo_tensor(
        torch.stack([owner, neighbour]), value, (len(rows), x.size(0)), check_invariants=False
    )
    return torch.sparse.mm(picked.coalesce(), x)
