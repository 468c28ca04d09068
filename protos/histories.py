"""The one rule for reading a stored history (``model_config.proto``, HISTORY_* side files), for every stage.

A model that reads histories sees each user's most recent ``max_length`` training events, oldest first,
right-padded with 0: the trainer when it evaluates, the exporter when it encodes users' states, the
server when a call names a user. Pure NumPy; imports nothing of ours.
"""

from __future__ import annotations

import numpy as np


def newest_events_padded(
    offsets: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    users: np.ndarray,
    max_length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most recent ``max_length`` events of each user, right-padded.

    Args:
        offsets: int64 [num_users + 1] CSR offsets; user u's events are ``[offsets[u], offsets[u + 1])``,
            oldest first.
        items: int64 [n] item index of each event.
        ratings: float32 [n] rating of each event, in stars.
        users: int64 [B] user indices.
        max_length: keep at most this many events per user (>= 1).

    Returns:
        (items int64 [B, T], ratings float32 [B, T], lengths int64 [B]) with T the longest kept history,
        at least 1; padding is 0. A user without events gets length 0 and a row of padding.

    Raises:
        ValueError: ``max_length`` < 1.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    users = np.asarray(users, dtype=np.int64)
    ends = offsets[users + 1]
    lengths = np.minimum(ends - offsets[users], max_length).astype(np.int64)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    steps = np.arange(width, dtype=np.int64)
    real = steps[None, :] < lengths[:, None]
    positions = np.where(real, (ends - lengths)[:, None] + steps[None, :], 0)
    padded_items = np.where(real, items[positions] if len(items) else 0, 0).astype(np.int64)
    padded_ratings = np.where(real, ratings[positions] if len(ratings) else 0, 0).astype(np.float32)
    return padded_items, padded_ratings, lengths
