"""Top-k selection over score matrices, with seen items and non-candidates masked out."""

from __future__ import annotations

import numpy as np


def mask_pairs(scores: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> None:
    """Sets ``scores[rows, columns]`` to -inf in place (items a user must not be offered)."""
    if len(rows):
        scores[rows, columns] = -np.inf


def top_k(scores: np.ndarray, k: int, columns: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The best ``k`` columns of each row, best first, leaving out -inf (masked) entries.

    Uses ``np.argpartition`` (linear time) for the k best, then sorts only those.

    Args:
        scores: float32 [B, N]; -inf marks excluded items.
        k: Items per row, at least 1; more than the available columns returns them all.
        columns: Optional candidate column indices; only those are ranked.

    Returns:
        Per row ``(item_indices int64 [<=k], scores float32 [<=k])``, scores descending.
    """
    if columns is not None:
        scores = scores[:, columns]
    width = scores.shape[1]
    k = min(k, width)
    if len(scores) == 1:
        items, best = _top_k_row(scores[0], k)
        return [(columns[items] if columns is not None else items, best)]
    if k < width:
        best = np.argpartition(scores, width - k, axis=1)[:, width - k :]
    else:
        best = np.broadcast_to(np.arange(width), scores.shape)
    rows = np.arange(len(scores))[:, None]
    best_scores = scores[rows, best]
    order = np.argsort(best_scores, axis=1, kind="stable")[:, ::-1]
    best = best[rows, order]
    best_scores = best_scores[rows, order]
    if columns is not None:
        best = columns[best]
    valid = np.isfinite(best_scores).sum(axis=1).tolist()
    return [(best[row, :n], best_scores[row, :n]) for row, n in enumerate(valid)]


def _top_k_row(row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` for one row, with fewer NumPy calls (one user per call is the common case)."""
    width = len(row)
    best = np.argpartition(row, width - k)[width - k :] if k < width else np.arange(width)
    values = row[best]
    order = np.argsort(values, kind="stable")[::-1]
    best, values = best[order], values[order]
    if values[-1] == -np.inf:
        valid = int(np.count_nonzero(np.isfinite(values)))
        best, values = best[:valid], values[:valid]
    return best, values


def popular(
    order: np.ndarray, popularity: np.ndarray, k: int, candidates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most popular items (restricted to ``candidates`` if given), most popular first.

    Args:
        order: Item indices sorted by decreasing popularity.
        popularity: float32 [num_items], the training ratings of each item.
        k: Items to return.
        candidates: Optional candidate item indices.

    Returns:
        ``(item_indices, popularity)`` of the chosen items.
    """
    if candidates is not None:
        allowed = np.zeros(len(popularity), dtype=bool)
        allowed[candidates] = True
        order = order[allowed[order]]
    chosen = order[:k]
    return chosen, popularity[chosen]
