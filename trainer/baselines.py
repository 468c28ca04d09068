"""Reference rows for the metrics table: the global mean, item popularity and EASE.

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) is a closed-form item-item
model on the binarised training matrix, ``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1``:
strong on top-k, and the bar the ranking heads are held to. Its [num_items, num_items] inverse limits it
to catalogues of a few ten thousand items; larger ones get no EASE row.
"""

from __future__ import annotations

import numpy as np
import torch

from trainer.data.splits import Split
from trainer.evaluation import ranking_metrics, rating_errors

BASELINES: tuple[str, ...] = ("global_mean", "popularity", "ease")

# Shrinks item means of rarely rated items toward the global mean (a Bayesian average, in ratings).
POPULARITY_SHRINKAGE = 10.0
EASE_LAMBDA = 400.0
"""EASE's L2 weight: Recall@10 on MovieLens 100K u1 is flat over 250-500 (0.2331 at 250, 0.2326 at 500)."""
EASE_MAX_ITEMS = 20_000
"""Largest catalogue EASE is computed for (its item-item matrix is num_items^2 float32: 1.6 GB here)."""


def baseline_metrics(split: Split) -> dict[str, dict[str, float | None]]:
    """Metrics of three models that need no gradient training, on ``split.test``.

    ``global_mean`` predicts the mean training rating for every pair and cannot rank (its ranking
    metrics are ``None``). ``popularity`` predicts each item's shrunken mean training rating and ranks
    items by their number of training ratings. ``ease`` ranks by EASE and predicts no ratings.

    Returns:
        ``{"global_mean": {...}, "popularity": {...}, "ease": {...}}`` with the same keys as a model's
        metrics (``train_seconds`` is the fit's; EASE is absent above :data:`EASE_MAX_ITEMS` items).
    """
    train, test = split.train, split.test
    mean = train.global_mean()
    histories = train.histories()
    no_ranking = {"recall@10": None, "ndcg@10": None, "coverage@10": None}
    no_rating = {"rmse": None, "mae": None, "rmse_01": None}
    rows: dict[str, dict[str, float | None]] = {}
    constant = np.full(len(test), mean, dtype=np.float32)
    rows["global_mean"] = {**rating_errors(constant, test.ratings, test.rating_scale), **no_ranking}
    rows["global_mean"]["train_seconds"] = 0.0
    counts = np.bincount(train.items, minlength=train.num_items).astype(np.float64)
    sums = np.bincount(train.items, weights=train.ratings, minlength=train.num_items)
    item_mean = (sums + POPULARITY_SHRINKAGE * mean) / (counts + POPULARITY_SHRINKAGE)
    popularity = torch.from_numpy(train.item_popularity())
    rows["popularity"] = {
        **rating_errors(item_mean[test.items], test.ratings, test.rating_scale),
        **ranking_metrics(lambda users: popularity.expand(len(users), -1), histories, test),
        "train_seconds": 0.0,
    }
    if train.num_items <= EASE_MAX_ITEMS:
        import time

        started = time.perf_counter()
        weights = ease_weights(train.users, train.items, train.num_users, train.num_items)
        seconds = time.perf_counter() - started
        matrix = _binary_rows(histories.offsets, histories.items, train.num_items)
        rows["ease"] = {
            **no_rating,
            **ranking_metrics(lambda users: matrix(users) @ weights, histories, test),
            "train_seconds": seconds,
        }
    return rows


def ease_weights(
    users: np.ndarray, items: np.ndarray, num_users: int, num_items: int, lam: float = EASE_LAMBDA
) -> torch.Tensor:
    """EASE's item-item weights with a zero diagonal, float32 [num_items, num_items] (Steck, 2019).

    Args:
        users: int64 [n] user of each training rating.
        items: int64 [n] item of each training rating (a rating is a 1, whatever its value).
        num_users: number of users.
        num_items: number of items.
        lam: L2 weight on the item-item matrix.
    """
    x = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([users, items]).astype(np.int64)),
        torch.ones(len(users), dtype=torch.float64),
        (num_users, num_items),
        check_invariants=True,
    ).coalesce()
    # Duplicates count once.
    x = torch.sparse_coo_tensor(x.indices(), torch.ones_like(x.values()), x.shape, check_invariants=False)
    gram = (x.t() @ x).to_dense() + lam * torch.eye(num_items, dtype=torch.float64)
    precision = torch.linalg.inv(gram)
    weights = -precision / torch.diag(precision)
    weights.fill_diagonal_(0.0)
    return weights.float()


def _binary_rows(offsets: np.ndarray, items: np.ndarray, num_items: int):
    def rows(users: np.ndarray) -> torch.Tensor:
        out = torch.zeros(len(users), num_items)
        for row, user in enumerate(np.asarray(users, dtype=np.int64)):
            out[row, torch.from_numpy(items[offsets[user] : offsets[user + 1]])] = 1.0
        return out

    return rows
