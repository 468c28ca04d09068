"""Reference rows for the metrics table: the global mean and item popularity."""

from __future__ import annotations

import numpy as np
import torch

from trainer.data.splits import Split
from trainer.evaluation import ranking_metrics, rating_errors

BASELINES: tuple[str, ...] = ("global_mean", "popularity")

# Shrinks item means of rarely rated items toward the global mean (a Bayesian average, in ratings).
POPULARITY_SHRINKAGE = 10.0


def baseline_metrics(split: Split) -> dict[str, dict[str, float | None]]:
    """Metrics of two models that need no training, on ``split.test``.

    ``global_mean`` predicts the mean training rating for every pair and cannot rank (its ranking
    metrics are ``None``). ``popularity`` predicts each item's shrunken mean training rating and ranks
    items by their number of training ratings.

    Returns:
        ``{"global_mean": {...}, "popularity": {...}}`` with the same keys as a model's metrics
        (``train_seconds`` is 0).
    """
    train, test = split.train, split.test
    mean = train.global_mean()
    histories = train.histories()
    rows: dict[str, dict[str, float | None]] = {}
    constant = np.full(len(test), mean, dtype=np.float32)
    rows["global_mean"] = {
        **rating_errors(constant, test.ratings, test.rating_scale),
        "recall@10": None,
        "ndcg@10": None,
        "train_seconds": 0.0,
    }
    counts = np.bincount(train.items, minlength=train.num_items).astype(np.float64)
    sums = np.bincount(train.items, weights=train.ratings, minlength=train.num_items)
    item_mean = (sums + POPULARITY_SHRINKAGE * mean) / (counts + POPULARITY_SHRINKAGE)
    popularity = torch.from_numpy(train.item_popularity())
    rows["popularity"] = {
        **rating_errors(item_mean[test.items], test.ratings, test.rating_scale),
        **ranking_metrics(lambda users: popularity.expand(len(users), -1), histories, test),
        "train_seconds": 0.0,
    }
    return rows
