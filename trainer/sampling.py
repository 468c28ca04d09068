"""Negative sampling for ranking losses, kept apart so that a model never knows how its negatives were drawn.

Uniform over the catalogue, with every draw that hits one of the row's own positives (a user's training
items) drawn again (and, for the few draws of users who rated most of the catalogue that still collide
after a few rounds, drawn from that user's unrated items directly), so a negative is never an item the
user rated (Spotlight's ``sample_items`` draws
uniformly and accepts such collisions; at MovieLens densities ~6% of uniform draws would be positives).
"""

from __future__ import annotations

import numpy as np

REDRAW_ROUNDS = 8


def positive_keys(rows: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    """Sorted ``row * num_items + item`` keys of every (row, positive item): the set draws are checked against."""
    return np.unique(np.asarray(rows, dtype=np.int64) * num_items + np.asarray(items, dtype=np.int64))


def sample_negatives(
    num_items: int,
    keys: np.ndarray,
    rows: np.ndarray,
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Uniform negatives for each of ``rows``, none of them a positive of its row.

    Args:
        num_items: catalogue size; items are ``0 .. num_items - 1``.
        keys: :func:`positive_keys` of the rows' positives.
        rows: int64 [n] the row each negative set is for (rows may repeat).
        count: negatives per row.
        rng: seeded generator.

    Returns:
        int64 [n, count] item indices.

    Raises:
        ValueError: some row's positives cover the whole catalogue, so it has no negative to draw.
    """
    rows = np.asarray(rows, dtype=np.int64)
    draws = rng.integers(0, num_items, (len(rows), count), dtype=np.int64)
    if not len(keys):
        return draws
    for _ in range(REDRAW_ROUNDS):
        collides = _collisions(keys, rows, draws, num_items)
        if not collides.any():
            return draws
        draws[collides] = rng.integers(0, num_items, int(collides.sum()), dtype=np.int64)
    collides = _collisions(keys, rows, draws, num_items)
    for index in np.flatnonzero(collides.any(axis=1)):
        row = rows[index]
        start, end = np.searchsorted(keys, [row * num_items, (row + 1) * num_items])
        unrated = np.setdiff1d(np.arange(num_items), keys[start:end] - row * num_items, assume_unique=True)
        if not len(unrated):
            raise ValueError(f"row {row} rated every item: it has no negative to draw; use loss='softmax'")
        draws[index, collides[index]] = rng.choice(unrated, int(collides[index].sum()))
    return draws


def _collisions(keys: np.ndarray, rows: np.ndarray, draws: np.ndarray, num_items: int) -> np.ndarray:
    """Mask of draws that are positives of their row."""
    candidate = rows[:, None] * num_items + draws
    found = np.minimum(np.searchsorted(keys, candidate), len(keys) - 1)
    return keys[found] == candidate
