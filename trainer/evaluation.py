"""Test-split metrics: rating error in stars and on the [0, 1] scale, and top-10 ranking quality and coverage."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from trainer.data.interactions import Interactions, UserHistories

RELEVANT_RATING = 4.0
TOP_K = 10


def rating_errors(predicted: np.ndarray, actual: np.ndarray, rating_scale: tuple[float, float]) -> dict[str, float]:
    """RMSE and MAE in stars, and RMSE on ratings rescaled to [0, 1].

    ``rmse_01`` maps ``r -> (r - min) / (max - min)`` (``(r - 1) / 4`` for 1-5 stars), the scale the
    seed article reports, so it is ``rmse / (max - min)``.

    Args:
        predicted: float [n] predicted ratings in stars.
        actual: float [n] true ratings in stars.
        rating_scale: (min, max) in stars.

    Returns:
        ``{"rmse", "mae", "rmse_01"}``.

    Raises:
        ValueError: empty or mismatched arrays.
    """
    if len(predicted) != len(actual) or not len(actual):
        raise ValueError(f"need equal, non-empty arrays, got {len(predicted)} predictions for {len(actual)} ratings")
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    rmse = float(np.sqrt(np.mean(error**2)))
    return {
        "rmse": rmse,
        "mae": float(np.mean(np.abs(error))),
        "rmse_01": rmse / (rating_scale[1] - rating_scale[0]),
    }


def ranking_metrics(
    score_users: Callable[[np.ndarray], torch.Tensor],
    train_histories: UserHistories,
    test: Interactions,
    *,
    k: int = TOP_K,
    users_per_batch: int = 256,
) -> dict[str, float]:
    """Recall@k, NDCG@k and catalogue coverage@k over all items each user has not rated in training.

    Relevant items are the user's test items rated >= 4 stars; users without a relevant test item
    are skipped. Recall@k is hits / number of relevant items; NDCG@k uses binary gains and the ideal
    ordering of min(k, relevant) hits. Coverage@k is the share of the catalogue that appears in at
    least one evaluated user's top k: a ranking that beats popularity by showing everyone the same few
    items scores low on it.

    Args:
        score_users: int64 [B] user indices -> float32 [B, num_items] scores (higher is better).
        train_histories: training histories, whose items are excluded from each user's candidates.
        test: test interactions.
        k: cut-off.
        users_per_batch: users scored per call.

    Returns:
        ``{"recall@k": ..., "ndcg@k": ..., "coverage@k": ...}``, the first two averaged over users with a
        relevant test item (all 0 if none).
    """
    relevant_rows = test.ratings >= RELEVANT_RATING
    users = np.unique(test.users[relevant_rows])
    if not len(users):
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, f"coverage@{k}": 0.0}
    relevant = _item_sets(test.users[relevant_rows], test.items[relevant_rows])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    shown = np.zeros(test.num_items, dtype=bool)
    for start in range(0, len(users), users_per_batch):
        batch = users[start : start + users_per_batch]
        scores = score_users(batch).clone()
        for row, user in enumerate(batch):
            seen = train_histories.items[train_histories.offsets[user] : train_histories.offsets[user + 1]]
            scores[row, torch.from_numpy(seen)] = -torch.inf
        top = torch.topk(scores, min(k, scores.size(1)), dim=1).indices.numpy()
        shown[top.ravel()] = True
        for row, user in enumerate(batch):
            hits = np.isin(top[row], relevant[user])
            recalls.append(hits.sum() / len(relevant[user]))
            ideal = discounts[: min(k, len(relevant[user]))].sum()
            ndcgs.append(float((hits * discounts[: len(hits)]).sum() / ideal))
    return {
        f"recall@{k}": float(np.mean(recalls)),
        f"ndcg@{k}": float(np.mean(ndcgs)),
        f"coverage@{k}": float(shown.mean()),
    }


def _item_sets(users: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(users, kind="stable")
    unique, starts = np.unique(users[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    return {int(u): items[order][s:e] for u, s, e in zip(unique, starts, ends, strict=True)}
