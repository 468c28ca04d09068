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
