"""The one data object every model trains from: explicit ratings with id maps and time order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protos.histories import newest_events_padded

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserHistories:
    """Each user's ratings in time order, as CSR arrays (the checkpoint's ``history_*`` fields).

    Attributes:
        offsets: int64 [num_users + 1]; user u's events are ``[offsets[u], offsets[u + 1])``.
        items: int64 [n] item index of each event, oldest first per user (ties keep input order).
        ratings: float32 [n] rating of each event, in stars.
    """

    offsets: np.ndarray
    items: np.ndarray
    ratings: np.ndarray

    @property
    def num_users(self) -> int:
        """Number of users (rows), including users with an empty history."""
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """int64 [num_users] events per user."""
        return np.diff(self.offsets)

    def padded(self, users: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-padded most-recent histories of some users, the LSTM's input layout.

        The contract's rule (:func:`protos.histories.newest_events_padded`), which the server applies too.

        Args:
            users: int64 [B] user indices.
            max_length: keep at most this many most recent events per user.

        Returns:
            (items int64 [B, T], ratings float32 [B, T], lengths int64 [B]) with T the longest kept
            history (at least 1); padding is 0.
        """
        return newest_events_padded(self.offsets, self.items, self.ratings, users, max_length)


@dataclass(frozen=True)
class Interactions:
    """Explicit ratings: parallel arrays of user index, item index, rating and timestamp.

    Modelled on Spotlight's ``Interactions``. Indices are contiguous; ``user_ids[u]`` and
    ``item_ids[i]`` give the raw ids, which the exporter and server need. Splits of one data set
    share the id maps, so an index means the same user or item in every split.

    Attributes:
        users: int64 [n] user indices.
        items: int64 [n] item indices.
        ratings: float32 [n] ratings in stars.
        timestamps: int64 [n] seconds (or any increasing clock); used for time order.
        user_ids: raw id of each user index.
        item_ids: raw id of each item index.
        rating_scale: (min, max) rating in stars.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    rating_scale: tuple[float, float] = (1.0, 5.0)

    def __post_init__(self) -> None:
        n = len(self.users)
        if not len(self.items) == len(self.ratings) == len(self.timestamps) == n:
            raise ValueError(
                f"users, items, ratings and timestamps must have one length, got {n}, {len(self.items)}, "
                f"{len(self.ratings)}, {len(self.timestamps)}"
            )
        if n and (self.users.min() < 0 or self.users.max() >= len(self.user_ids)):
            raise ValueError(f"user index outside [0, {len(self.user_ids)})")
        if n and (self.items.min() < 0 or self.items.max() >= len(self.item_ids)):
            raise ValueError(f"item index outside [0, {len(self.item_ids)})")
        if not self.rating_scale[0] < self.rating_scale[1]:
            raise ValueError(f"rating_scale must be (min, max) with min < max, got {self.rating_scale}")

    @classmethod
    def from_raw(
        cls,
        users: Sequence[str],
        items: Sequence[str],
        ratings: np.ndarray,
        timestamps: np.ndarray | None = None,
        rating_scale: tuple[float, float] | None = None,
    ) -> Interactions:
        """Map raw string ids to contiguous indices, in order of first appearance.

        Args:
            users: raw user id per rating (a sequence of str, or a numpy array, mapped without a Python loop).
            items: raw item id per rating.
            ratings: rating per row, in stars.
            timestamps: clock per row; defaults to the row number (file order).
            rating_scale: (min, max); defaults to the observed range, widened to integers.

        Returns:
            The interactions with their id maps.
        """
        user_index, user_ids = _index(users)
        item_index, item_ids = _index(items)
        ratings = np.asarray(ratings, dtype=np.float32)
        stamps = np.arange(len(ratings), dtype=np.int64) if timestamps is None else np.asarray(timestamps, np.int64)
        if rating_scale is None:
            rating_scale = default_rating_scale(ratings)
        return cls(user_index, item_index, ratings, stamps, user_ids, item_ids, rating_scale)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def num_users(self) -> int:
        """Number of user indices (the id map's size, not only users present in this split)."""
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        """Number of item indices."""
        return len(self.item_ids)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The selected rows (an index array or boolean mask), keeping the id maps."""
        return Interactions(
            self.users[rows],
            self.items[rows],
            self.ratings[rows],
            self.timestamps[rows],
            self.user_ids,
            self.item_ids,
            self.rating_scale,
        )

    def with_ids(self, user_ids: tuple[str, ...], item_ids: tuple[str, ...]) -> Interactions:
        """Re-index onto larger id maps that start with this object's maps (to align separately read splits)."""
        if user_ids[: self.num_users] != self.user_ids or item_ids[: self.num_items] != self.item_ids:
            raise ValueError("the new id maps must extend the current ones")
        return Interactions(
            self.users, self.items, self.ratings, self.timestamps, user_ids, item_ids, self.rating_scale
        )

    def global_mean(self) -> float:
        """Mean rating in stars (the middle of the scale when empty)."""
        return float(self.ratings.mean()) if len(self) else float(np.mean(self.rating_scale))

    def item_popularity(self) -> np.ndarray:
        """float32 [num_items] number of ratings per item."""
        return np.bincount(self.items, minlength=self.num_items).astype(np.float32)

    def histories(self) -> UserHistories:
        """Per-user time-ordered histories (Spotlight's ``to_sequence``), ties broken by row order."""
        order = np.lexsort((np.arange(len(self)), self.timestamps, self.users))
        counts = np.bincount(self.users, minlength=self.num_users)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return UserHistories(offsets, self.items[order].astype(np.int64), self.ratings[order].astype(np.float32))

    def describe(self) -> str:
        """One line for logs: sizes, density and rating range."""
        users = len(np.unique(self.users)) if len(self) else 0
        items = len(np.unique(self.items)) if len(self) else 0
        return (
            f"{len(self)} ratings by {users} users on {items} items (id maps {self.num_users} x {self.num_items}), "
            f"scale {self.rating_scale[0]:g}-{self.rating_scale[1]:g}"
        )


def default_rating_scale(ratings: np.ndarray) -> tuple[float, float]:
    """The observed rating range widened to integers, (1, 5) when empty, never of zero width."""
    if not len(ratings):
        return (1.0, 5.0)
    low, high = float(np.floor(ratings.min())), float(np.ceil(ratings.max()))
    return (low, high) if low < high else (low, low + 1.0)


def _index(raw: Sequence[str] | np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Contiguous indices for raw ids, in order of first appearance.

    A numpy array (strings or integers, as a columnar reader gives) is mapped with ``np.unique``
    (``return_index``/``return_inverse``) and renumbered by first appearance, with no Python loop over rows.
    """
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1:
            raise ValueError(f"raw ids must be one-dimensional, got shape {raw.shape}")
        if not len(raw):
            return np.empty(0, np.int64), ()
        uniques, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank[inverse.reshape(-1)], tuple(str(u) for u in uniques[order].tolist())
    mapping: dict[str, int] = {}
    index = np.fromiter((mapping.setdefault(str(r), len(mapping)) for r in raw), dtype=np.int64, count=len(raw))
    return index, tuple(mapping)
