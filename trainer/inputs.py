"""Turn (user, item) rows into each architecture's model inputs, in batches.

MF, dense and GCN take user indices; the LSTM takes the user's training history instead, so its
rows are grouped by user and each distinct user's history is encoded once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from trainer.data.interactions import Histories
from trainer.models import RatingModel


def _lstm_history(model: RatingModel, histories: Histories, users: np.ndarray) -> tuple[torch.Tensor, ...]:
    items, ratings, lengths = histories.padded(users, int(model.hparams["max_history_length"]))
    return torch.from_numpy(items), torch.from_numpy(ratings), torch.from_numpy(lengths)


@torch.no_grad()
def predict_pairs(
    model: RatingModel,
    users: np.ndarray,
    items: np.ndarray,
    histories: Histories,
    *,
    batch_size: int = 4096,
    clip: bool = True,
) -> np.ndarray:
    """Predicted ratings for (user, item) rows, in stars.

    Args:
        model: any of the four models (put in eval mode by the caller).
        users: int64 [n] user indices.
        items: int64 [n] item indices.
        histories: training histories; the LSTM reads each user's most recent events from them.
        batch_size: rows per forward pass.
        clip: clip to the rating scale (``predict``) rather than the raw ``forward``.

    Returns:
        float32 [n].
    """
    out = np.empty(len(users), dtype=np.float32)
    if model.architecture != "lstm":
        for start in range(0, len(users), batch_size):
            u = torch.from_numpy(np.asarray(users[start : start + batch_size], dtype=np.int64))
            i = torch.from_numpy(np.asarray(items[start : start + batch_size], dtype=np.int64))
            raw = model(u, i)
            out[start : start + batch_size] = (model.clip(raw) if clip else raw).numpy()
        return out
    for rows, unique in _by_user(users, batch_size // 16 or 1):
        hist = _lstm_history(model, histories, unique)
        inverse = np.searchsorted(unique, users[rows])
        raw = model(*hist, torch.from_numpy(np.asarray(items[rows], dtype=np.int64)), torch.from_numpy(inverse))
        out[rows] = (model.clip(raw) if clip else raw).numpy()
    return out


@torch.no_grad()
def score_catalogue(model: RatingModel, users: np.ndarray, histories: Histories) -> torch.Tensor:
    """``recommend`` scores of every item for some users: int64 [B] -> float32 [B, num_items]."""
    if model.architecture == "lstm":
        return model.recommend(*_lstm_history(model, histories, np.asarray(users, dtype=np.int64)))
    return model.recommend(torch.from_numpy(np.asarray(users, dtype=np.int64)))


def _by_user(users: np.ndarray, users_per_batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row indices grouped into batches of at most ``users_per_batch`` distinct users (sorted)."""
    order = np.argsort(users, kind="stable")
    unique, starts = np.unique(users[order], return_index=True)
    bounds = np.append(starts, len(order))
    for first in range(0, len(unique), users_per_batch):
        last = min(first + users_per_batch, len(unique))
        yield order[bounds[first] : bounds[last]], unique[first:last]
