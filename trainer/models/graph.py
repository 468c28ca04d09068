"""The normalised user-item bipartite adjacency the GCN propagates over (plain torch, built once)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def _csr_beta_quiet() -> Iterator[None]:
    """Silence torch's "Sparse CSR tensor support is in beta" warning, once per use of the CSR layout here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        yield


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


def _normalized_edges(
    num_users: int, num_items: int, user: torch.Tensor, item: torch.Tensor, normalization: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both directions of every rating as (row, col, value), normalised by the degrees of all ratings.

    Raises:
        ValueError: unknown normalisation.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    row = torch.cat([user, item + num_users])
    col = torch.cat([item + num_users, user])
    degree = torch.bincount(row, minlength=num_users + num_items).float()
    if normalization == "left":
        return row, col, (1.0 / degree.clamp(min=1))[row]
    inv_sqrt = degree.clamp(min=1).rsqrt() * (degree > 0)
    return row, col, inv_sqrt[row] * inv_sqrt[col]


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
    num_nodes = num_users + num_items
    row, col, value = _normalized_edges(num_users, num_items, user, item, normalization)
    if weight is not None:
        value = value * torch.cat([weight, weight]).float()
        keep = value != 0
        row, col, value = row[keep], col[keep], value[keep]
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, (num_nodes, num_nodes), check_invariants=True)
    with _csr_beta_quiet():
        return coo.coalesce().to_sparse_csr()


def row_entries(
    adjacency: torch.Tensor, rows: torch.Tensor, sample: int = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries a propagation step reads for ``rows``: all of them, or an unbiased sample of long rows.

    With ``sample`` 0, or for a row of at most ``sample`` entries, every entry of the row is returned
    with scale 1. A longer row gets ``sample`` entries drawn uniformly with replacement, each scaled by
    ``degree / sample``, so that ``sum(scale * value * x[column])`` over the returned entries is an
    unbiased estimate of the row's product with ``x`` (GraphSAGE's neighbour sampling, Hamilton et al.
    2017): the cost of a step is bounded by ``len(rows) * sample``, not by the graph.

    Args:
        adjacency: sparse CSR [N, N] (:func:`normalized_adjacency`, :func:`level_graph`).
        rows: int64 [R] row indices.
        sample: entries kept per long row (0 keeps every entry).
        generator: random stream of the draws.

    Returns:
        (owner int64 [E], position int64 [E], scale float32 [E]): entry e reads the adjacency's stored
        entry ``position[e]`` (an index into its ``col_indices()`` and ``values()``) for output row
        ``owner[e]`` (an index into ``rows``).
    """
    crow = adjacency.crow_indices()
    starts, degree = crow[rows], crow[rows + 1] - crow[rows]
    whole = degree if sample <= 0 else torch.where(degree <= sample, degree, torch.zeros_like(degree))
    device = rows.device
    owner = torch.repeat_interleave(torch.arange(len(rows), device=device), whole)
    first = torch.repeat_interleave(torch.cumsum(whole, 0) - whole, whole)
    position = torch.repeat_interleave(starts, whole) + torch.arange(len(owner), device=device) - first
    scale = torch.ones(len(owner), device=device)
    if sample > 0:
        long_rows = torch.nonzero(degree > sample).squeeze(1)
        if len(long_rows):
            draws = torch.rand(len(long_rows), sample, generator=generator, device=device)
            offset = (draws * degree[long_rows].unsqueeze(1)).long().clamp(max=degree[long_rows].unsqueeze(1) - 1)
            owner = torch.cat([owner, long_rows.repeat_interleave(sample)])
            position = torch.cat([position, (starts[long_rows].unsqueeze(1) + offset).reshape(-1)])
            scale = torch.cat([scale, (degree[long_rows].float() / sample).repeat_interleave(sample)])
    return owner, position, scale


def row_neighbours(
    adjacency: torch.Tensor, rows: torch.Tensor, sample: int = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The neighbours a propagation step reads for ``rows`` (:func:`row_entries`), with their values.

    Returns:
        (owner int64 [E], neighbour int64 [E], value float32 [E]): entry e adds ``value[e] *
        x[neighbour[e]]`` to output row ``owner[e]`` (an index into ``rows``).
    """
    owner, position, scale = row_entries(adjacency, rows, sample, generator)
    return owner, adjacency.col_indices()[position], adjacency.values()[position] * scale


def level_graph(
    num_users: int,
    num_items: int,
    user: torch.Tensor,
    item: torch.Tensor,
    level: torch.Tensor,
    normalization: str = "symmetric",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rating as one normalised bipartite adjacency, with each stored entry's rating level beside it.

    The per-level adjacencies of GC-MC are this matrix's entries of one level each (same degrees, same
    values); keeping them in one CSR lets a sampled step draw a budget of neighbours per node across all
    levels (:func:`row_entries`) where drawing per level spent it once for every level. Duplicate
    ratings of a pair stay separate entries.

    Args:
        num_users: number of user nodes.
        num_items: number of item nodes.
        user: int64 [n] user index of each rating.
        item: int64 [n] item index of each rating.
        level: int64 [n] rating level of each rating.
        normalization: ``symmetric`` or ``left`` (:func:`normalized_adjacency`).

    Returns:
        (float32 sparse CSR [N, N], int64 [2n] level of each stored entry, in CSR order).

    Raises:
        ValueError: unknown normalisation.
    """
    num_nodes = num_users + num_items
    row, col, value = _normalized_edges(num_users, num_items, user, item, normalization)
    order = torch.argsort(row * num_nodes + col, stable=True)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    with _csr_beta_quiet():
        adjacency = torch.sparse_csr_tensor(
            crow, col[order], value[order], (num_nodes, num_nodes), check_invariants=False
        )
    return adjacency, torch.cat([level, level])[order]


def propagate_rows(
    adjacency: torch.Tensor,
    x: torch.Tensor,
    rows: torch.Tensor,
    sample: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rows ``rows`` of ``adjacency @ x`` (or their unbiased estimate, see :func:`row_neighbours`): [R, d]."""
    owner, neighbour, value = row_neighbours(adjacency, rows, sample, generator)
    return sparse_product(owner, neighbour, value, len(rows), x)


def sparse_product(
    row: torch.Tensor, column: torch.Tensor, value: torch.Tensor, num_rows: int, dense: torch.Tensor
) -> torch.Tensor:
    """``S @ dense`` for the sparse ``S`` [num_rows, len(dense)] of entries (row, column, value), repeats summed.

    A sparse product because its gradient is one more sparse product, where gathering and scattering the
    [E, d] messages took ~4x as long at MovieLens 5M's shape; in CSR because CPU products of a COO matrix
    took ~3x as long forward and ~2x backward (11.6M entries x 100 columns, a GCN step at 25M's shape).
    """
    coo = torch.sparse_coo_tensor(
        torch.stack([row, column]), value, (num_rows, dense.size(0)), check_invariants=False
    )  # indices built by the caller, in range by construction
    with _csr_beta_quiet():
        return torch.sparse.mm(coo.coalesce().to_sparse_csr(), dense)
