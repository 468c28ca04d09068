"""Metric definitions on hand-made cases, baselines, and the report format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.baselines import baseline_metrics
from trainer.data.interactions import Interactions
from trainer.data.splits import Split
from trainer.evaluation import ranking_metrics, rating_errors
from trainer.report import build_report, format_table, write_report


def test_rating_errors() -> None:
    metrics = rating_errors(np.array([1.0, 3.0, 5.0]), np.array([2.0, 3.0, 3.0]), (1.0, 5.0))
    assert metrics["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert metrics["mae"] == pytest.approx(1.0)
    assert metrics["rmse_01"] == pytest.approx(math.sqrt(5 / 3) / 4)
    with pytest.raises(ValueError, match="non-empty"):
        rating_errors(np.array([]), np.array([]), (1.0, 5.0))


def _interactions(
    users: list[int], items: list[int], ratings: list[float], num_users: int, num_items: int
) -> Interactions:
    return Interactions(
        np.array(users, dtype=np.int64),
        np.array(items, dtype=np.int64),
        np.array(ratings, dtype=np.float32),
        np.arange(len(users), dtype=np.int64),
        tuple(str(u) for u in range(num_users)),
        tuple(str(i) for i in range(num_items)),
    )


def test_ranking_metrics_exclude_training_items_and_match_hand_computation() -> None:
    # user 0 rated item 0 in training; test: item 1 (5 stars, relevant), item 2 (2 stars, not relevant),
    # item 3 (4 stars, relevant). Scores rank 0 > 2 > 4 > 1 > 3 > others; item 0 must be skipped.
    train = _interactions([0, 1], [0, 0], [5, 3], 2, 20)
    test = _interactions([0, 0, 0, 1], [1, 2, 3, 5], [5, 2, 4, 3], 2, 20)
    scores = torch.zeros(1, 20)
    scores[0, [0, 2, 4, 1, 3]] = torch.tensor([10.0, 9.0, 8.0, 7.0, 6.0])
    metrics = ranking_metrics(lambda users: scores.expand(len(users), -1), train.histories(), test, k=3)
    # top-3 after excluding item 0: [2, 4, 1]; one of two relevant items found, at rank 3
    assert metrics["recall@3"] == pytest.approx(0.5)
    assert metrics["ndcg@3"] == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_coverage_counts_items_in_any_top_k() -> None:
    train = _interactions([0, 1], [0, 0], [5, 3], 2, 20)
    test = _interactions([0, 1], [1, 2], [5, 5], 2, 20)
    same = torch.arange(20, dtype=torch.float32).flip(0).expand(2, -1)  # everyone gets items 1, 2, 3
    assert ranking_metrics(lambda users: same[: len(users)], train.histories(), test, k=3)["coverage@3"] == 3 / 20
    apart = torch.zeros(2, 20)
    apart[0, [1, 2, 3]] = 1.0
    apart[1, [4, 5, 6]] = 1.0
    metrics = ranking_metrics(lambda users: apart[torch.from_numpy(users)], train.histories(), test, k=3)
    assert metrics["coverage@3"] == 6 / 20


def test_ranking_metrics_agree_with_torchmetrics_on_random_scores() -> None:
    from torchmetrics.functional.retrieval import retrieval_normalized_dcg, retrieval_recall

    rng = np.random.default_rng(7)
    num_users, num_items, k = 30, 60, 10
    train_pairs = [(u, i) for u in range(num_users) for i in rng.choice(num_items, 8, replace=False)]
    train = _interactions([u for u, _ in train_pairs], [i for _, i in train_pairs], [4] * len(train_pairs), 30, 60)
    seen = {(u, i) for u, i in train_pairs}
    test_pairs = [
        (u, i) for u in range(num_users) for i in rng.choice(num_items, 6, replace=False) if (u, i) not in seen
    ]
    ratings = rng.integers(1, 6, len(test_pairs))
    test = _interactions([u for u, _ in test_pairs], [i for _, i in test_pairs], ratings, 30, 60)
    scores = torch.from_numpy(rng.normal(size=(num_users, num_items)).astype(np.float32))
    ours = ranking_metrics(lambda users: scores[torch.from_numpy(users)], train.histories(), test, k=k)
    recalls, ndcgs = [], []
    for user in range(num_users):
        relevant = {i for (u, i), r in zip(test_pairs, ratings, strict=True) if u == user and r >= 4}
        if not relevant:
            continue
        candidates = [i for i in range(num_items) if (user, i) not in seen]
        target = torch.tensor([i in relevant for i in candidates])
        preds = scores[user, candidates]
        recalls.append(float(retrieval_recall(preds, target, top_k=k)))
        ndcgs.append(float(retrieval_normalized_dcg(preds, target, top_k=k)))
    assert ours["recall@10"] == pytest.approx(np.mean(recalls), abs=1e-6)
    assert ours["ndcg@10"] == pytest.approx(np.mean(ndcgs), abs=1e-6)


def test_baselines(tiny_split: Split) -> None:
    rows = baseline_metrics(tiny_split)
    assert set(rows) == {"global_mean", "popularity", "ease"}
    assert rows["global_mean"]["recall@10"] is None and rows["ease"]["rmse"] is None
    assert rows["popularity"]["rmse"] < rows["global_mean"]["rmse"]
    assert 0 < rows["popularity"]["recall@10"] <= 1
    assert rows["ease"]["recall@10"] > rows["popularity"]["recall@10"]


def test_ease_weights_solve_the_closed_form() -> None:
    from trainer.baselines import ease_weights

    users, items = np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 1, 2])
    weights = ease_weights(users, items, 3, 3, lam=2.0).double()
    x = torch.zeros(3, 3, dtype=torch.float64)
    x[users, items] = 1.0
    gram = x.t() @ x
    assert torch.diagonal(weights).abs().max() == 0
    # Steck (2019): B minimises ||X - XB||^2 + lam ||B||^2 subject to diag(B) = 0, so off the diagonal
    # the gradient (X^T X + lam I) B - X^T X vanishes.
    residual = (gram + 2.0 * torch.eye(3, dtype=torch.float64)) @ weights - gram
    off_diagonal = residual - torch.diag(torch.diagonal(residual))
    assert off_diagonal.abs().max() < 1e-5  # float32 weights


def test_report_json_and_table(tmp_path: Path) -> None:
    models = {"mf": {"rmse": 0.9, "mae": 0.7, "rmse_01": 0.225, "recall@10": 0.1, "ndcg@10": 0.2, "train_seconds": 3.0}}
    baselines = {
        "global_mean": {
            "rmse": 1.1,
            "mae": 0.9,
            "rmse_01": 0.275,
            "recall@10": None,
            "ndcg@10": None,
            "train_seconds": 0.0,
        }
    }
    report = build_report(models, baselines, data={"source": "synthetic"})
    path = write_report(tmp_path / "out" / "report.json", report)
    loaded = json.loads(path.read_text())
    assert loaded["models"]["mf"] == models["mf"]
    assert loaded["baselines"]["global_mean"]["recall@10"] is None
    assert loaded["data"] == {"source": "synthetic"}
    table = format_table(models, baselines).splitlines()
    assert table[0].startswith("| model | RMSE | MAE | RMSE_01 | Recall@10 | NDCG@10 | Coverage@10 |")
    assert table[2] == "| mf | 0.9000 | 0.7000 | 0.2250 | 0.1000 | 0.2000 | - | 3.0 |"  # no coverage given: -
    assert (
        table[3].startswith("| baseline: global_mean | 1.1000 |") and table[3].count(" - ") == 3
    )  # recall, ndcg and coverage do not apply
    with pytest.raises(ValueError):
        write_report(tmp_path / "nan.json", {"models": {"x": {"rmse": float("nan")}}})
