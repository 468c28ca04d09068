"""Train/test splits and the validation set carved from training data for early stopping."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from trainer.data.interactions import Interactions

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """A train/test split of one data set; both sides share the id maps.

    Attributes:
        train: ratings the model may learn from (histories and graph come from here only).
        test: held-out ratings, used for the final metrics only.
        name: how it was made (``u1``, ``random``, ``temporal``), for provenance.
    """

    train: Interactions
    test: Interactions
    name: str

    def __post_init__(self) -> None:
        if self.train.user_ids != self.test.user_ids or self.train.item_ids != self.test.item_ids:
            raise ValueError("train and test must share their id maps")
        if not len(self.train) or not len(self.test):
            raise ValueError(f"split {self.name!r} has {len(self.train)} train and {len(self.test)} test ratings")


def random_split(data: Interactions, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Hold out a seeded random share of the ratings.

    Raises:
        ValueError: ``test_fraction`` not in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    is_test = np.zeros(len(data), dtype=bool)
    is_test[np.random.default_rng(seed).permutation(len(data))[: round(len(data) * test_fraction)]] = True
    return Split(data.subset(~is_test), data.subset(is_test), "random")


def last_per_user(data: Interactions, count: int) -> np.ndarray:
    """Boolean mask of each user's ``count`` most recent ratings (ties by row order).

    Users with ``count`` or fewer ratings keep their first one out of the mask, so nobody loses their
    whole history.

    Raises:
        ValueError: ``count`` < 1.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))
    sorted_users = data.users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    rank_from_end = ends - np.arange(len(data))  # 1 = most recent
    keep_first = (ends - starts) <= count
    held = (rank_from_end <= count) & ~(keep_first & (np.arange(len(data)) == starts))
    mask = np.zeros(len(data), dtype=bool)
    mask[order[held]] = True
    return mask


def temporal_split(data: Interactions, test_per_user: int = 5) -> Split:
    """Hold out each user's last ``test_per_user`` ratings in time order."""
    is_test = last_per_user(data, test_per_user)
    return Split(data.subset(~is_test), data.subset(is_test), "temporal")


def validation_split(
    train: Interactions, fraction: float = 0.05, seed: int = 0, temporal: bool = False
) -> tuple[Interactions, Interactions]:
    """Carve a validation set out of the training ratings only (the test split is never touched).

    Args:
        train: the training side of a split.
        fraction: share of training ratings to hold out.
        seed: random seed (random mode).
        temporal: hold out each user's most recent ratings instead (about ``fraction`` of each history),
            matching a temporal test split.

    Returns:
        (fit, valid): ratings to fit and ratings to early-stop on.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if temporal:
        per_user = max(1, round(fraction * len(train) / max(len(np.unique(train.users)), 1)))
        is_valid = last_per_user(train, per_user)
    else:
        is_valid = np.zeros(len(train), dtype=bool)
        is_valid[np.random.default_rng(seed).permutation(len(train))[: max(1, round(len(train) * fraction))]] = True
    return train.subset(~is_valid), train.subset(is_valid)
