"""Eager PyTorch answers computed straight from a trainer checkpoint, to compare the server against."""

from __future__ import annotations

import numpy as np
import torch


def stored_history(checkpoint, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The most recent ``max_history_length`` training events of each user, right-padded."""
    limit = int(checkpoint.hparams["max_history_length"])
    offsets = checkpoint.history_offsets
    rows = []
    for user in users.tolist():
        start, end = int(offsets[user]), int(offsets[user + 1])
        start = max(start, end - limit)
        rows.append((checkpoint.history_items[start:end], checkpoint.history_ratings[start:end]))
    return padded(rows)


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
    """Eager ``predict`` for (user index, item index) pairs."""
    model = checkpoint.model
    item_tensor = torch.as_tensor(items, dtype=torch.long)
    with torch.no_grad():
        if checkpoint.architecture == "lstm":
            return model.predict(*stored_history(checkpoint, users), item_tensor).numpy()
        return model.predict(torch.as_tensor(users, dtype=torch.long), item_tensor).numpy()


def recommend(checkpoint, users: np.ndarray) -> np.ndarray:
    """Eager ``recommend`` scores [B, num_items] for user indices."""
    model = checkpoint.model
    with torch.no_grad():
        if checkpoint.architecture == "lstm":
            return model.recommend(*stored_history(checkpoint, users)).numpy()
        return model.recommend(torch.as_tensor(users, dtype=torch.long)).numpy()


def recommend_histories(checkpoint, rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Eager LSTM ``recommend`` scores for explicit histories of item indices."""
    with torch.no_grad():
        return checkpoint.model.recommend(*padded(rows)).numpy()
