"""Mini-batches for training: (user, item) pairs, or (context history, targets) for the LSTM."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from trainer.data.interactions import Histories, Interactions

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


class PairBatches:
    """Shuffled (user, item) -> rating batches for MF, dense and GCN.

    Args:
        train: the ratings to fit.
        batch_size: ratings per batch.
    """

    def __init__(self, train: Interactions, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.users = torch.from_numpy(train.users.astype(np.int64))
        self.items = torch.from_numpy(train.items.astype(np.int64))
        self.ratings = torch.from_numpy(train.ratings.astype(np.float32))
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.ratings) // self.batch_size)

    def epoch(self, rng: np.random.Generator) -> Iterator[Batch]:
        """One pass over the ratings in a random order."""
        order = torch.from_numpy(rng.permutation(len(self.ratings)))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield (self.users[rows], self.items[rows]), self.ratings[rows]


class HistoryBatches:
    """Batches of users for the LSTM: each user's history split at random into context and targets.

    Every epoch each training rating becomes a target with probability ``target_fraction``; the
    user's other ratings, in time order and cut to the most recent ``max_history_length``, form the
    context the LSTM reads. This mirrors test time, where the model reads the whole training history
    to predict held-out ratings, and costs one LSTM pass per user for all of that user's targets.

    Args:
        train: the ratings to fit.
        users_per_batch: users (LSTM rows) per batch.
        max_history_length: longest context read.
        target_fraction: share of each user's ratings held out as targets per epoch.
    """

    def __init__(
        self, train: Interactions, users_per_batch: int, max_history_length: int, target_fraction: float
    ) -> None:
        if users_per_batch < 1 or max_history_length < 1:
            raise ValueError("users_per_batch and max_history_length must be positive")
        if not 0.0 < target_fraction < 1.0:
            raise ValueError(f"target_fraction must be in (0, 1), got {target_fraction}")
        self.histories = train.histories()
        self.event_users = np.repeat(np.arange(self.histories.num_users), self.histories.lengths())
        self.users = np.flatnonzero(self.histories.lengths() > 1)
        self.users_per_batch = users_per_batch
        self.max_history_length = max_history_length
        self.target_fraction = target_fraction

    def __len__(self) -> int:
        return -(-len(self.users) // self.users_per_batch)

    def epoch(self, rng: np.random.Generator) -> Iterator[Batch]:
        """One pass over the users in a random order, with fresh context/target splits."""
        target = rng.random(len(self.histories.items)) < self.target_fraction
        counts = np.bincount(self.event_users[~target], minlength=self.histories.num_users)
        context = Histories(
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            self.histories.items[~target],
            self.histories.ratings[~target],
        )
        target_users = self.event_users[target]
        target_items = self.histories.items[target]
        target_ratings = self.histories.ratings[target]
        by_user = np.argsort(target_users, kind="stable")
        starts = np.searchsorted(target_users[by_user], np.arange(self.histories.num_users + 1))
        order = rng.permutation(self.users)
        for first in range(0, len(order), self.users_per_batch):
            users = order[first : first + self.users_per_batch]
            picked = np.concatenate([by_user[starts[u] : starts[u + 1]] for u in users])
            if not len(picked):
                continue
            row_of_user = np.full(self.histories.num_users, -1, dtype=np.int64)
            row_of_user[users] = np.arange(len(users))
            items, ratings, lengths = context.padded(users, self.max_history_length)
            inputs = (
                torch.from_numpy(items),
                torch.from_numpy(ratings),
                torch.from_numpy(lengths),
                torch.from_numpy(target_items[picked]),
                torch.from_numpy(row_of_user[target_users[picked]]),
            )
            yield inputs, torch.from_numpy(target_ratings[picked])
