"""Eager PyTorch answers computed straight from a trainer checkpoint, to compare the server against.

Every model answers through the same two heads whatever its architecture: ``rate`` (stars) for Predict and
``rank`` (ranking scores, no unit) for Recommend, each reading the checkpoint's stored histories where the
model needs them; the LSTM's ``recommend`` ranks for histories sent in a request.
"""

from __future__ import annotations

import numpy as np
import torch

from trainer.data.interactions import UserHistories


def histories(checkpoint) -> UserHistories:
    """The checkpoint's training histories, as the models read them."""
    return UserHistories(checkpoint.history_offsets, checkpoint.history_items, checkpoint.history_ratings)


def padded(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(items, ratings) per row -> right-padded tensors and lengths."""
    width = max(len(items) for items, _ in rows)
    items = torch.zeros(len(rows), width, dtype=torch.long)
    ratings = torch.zeros(len(rows), width, dtype=torch.float32)
    for row, (row_items, row_ratings) in enumerate(rows):
        items[row, : len(row_items)] = torch.as_tensor(np.asarray(row_items, dtype=np.int64))
        ratings[row, : len(row_ratings)] = torch.as_tensor(np.asarray(row_ratings, dtype=np.float32))
    lengths = torch.tensor([len(r[0]) for r in rows], dtype=torch.long)
    return items, ratings, lengths


def predict(checkpoint, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Eager rating head for (user index, item index) pairs: stars, float32 [B]."""
    with torch.no_grad():
        return checkpoint.model.rate(np.asarray(users), np.asarray(items), histories(checkpoint)).numpy()


def recommend(checkpoint, users: np.ndarray) -> np.ndarray:
    """Eager ranking head for user indices: ranking scores, float32 [B, num_items]."""
    with torch.no_grad():
        return checkpoint.model.rank(np.asarray(users), histories(checkpoint)).numpy()


def recommend_histories(checkpoint, rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Eager LSTM ranking head for explicit histories of item indices: float32 [B, num_items]."""
    with torch.no_grad():
        return checkpoint.model.recommend(*padded(rows)).numpy()


def seen_items(checkpoint, user: int) -> np.ndarray:
    """Item indices the user rated in training (what ``exclude_seen`` leaves out)."""
    offsets = checkpoint.history_offsets
    return checkpoint.history_items[offsets[user] : offsets[user + 1]]


def top_k_masked(scores: np.ndarray, masked: np.ndarray, k: int) -> np.ndarray:
    """The k best item indices of one row of scores once ``masked`` items are set to -inf, best first."""
    row = np.asarray(scores, dtype=np.float64).copy()
    row[np.asarray(masked, dtype=np.int64)] = -np.inf
    return np.argsort(-row, kind="stable")[:k]


def assert_same_top_k(served: list[int], scores: np.ndarray, masked: np.ndarray, tolerance: float) -> None:
    """Assert a served list of item indices is the eager top-k, in order, up to ties.

    Position by position, the served item must score (eagerly) within ``tolerance`` of the eager item at
    that position, so only items whose eager scores are that close may swap; the served items must be
    distinct and none of them masked.

    Raises:
        AssertionError: naming the first position that differs.
    """
    row = np.asarray(scores, dtype=np.float64)
    expected = top_k_masked(row, masked, len(served))
    assert len(set(served)) == len(served), f"duplicate items in {served}"
    assert not set(served) & set(np.asarray(masked).tolist()), f"masked items served: {served}"
    for position, (got, want) in enumerate(zip(served, expected.tolist(), strict=True)):
        assert abs(row[got] - row[want]) <= tolerance, (
            f"position {position}: served item {got} (eager score {row[got]:.6f}) but the eager top-k has "
            f"{want} ({row[want]:.6f}); served {served}, eager {expected.tolist()}"
        )
