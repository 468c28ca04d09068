"""bench.gcn_schedules: the GCN's rating head on its full-graph and mini-batch schedules."""

from __future__ import annotations

import math

from bench.gcn_schedules import fit_schedule
from trainer import architecture
from trainer.data.splits import random_split
from trainer.data.synthetic import synthetic_interactions
from trainer.tiny import TINY_DATA


def test_both_schedules_fit_and_report() -> None:
    split = random_split(synthetic_interactions(TINY_DATA), 0.1, seed=0)
    full = fit_schedule(split, None, max_seconds=5.0)
    batched = fit_schedule(split, 8)
    large = architecture.get("gcn").large_data
    assert large is not None and large.training is not None
    assert batched["epochs"] <= large.training.epochs < full["epochs"] or full["seconds"] >= 5.0
    for row in (full, batched):
        assert math.isfinite(row["test_rmse"]) and 1 <= row["best_epoch"] <= row["epochs"]
    # Each run read the data's test side: a different schedule gives a different model.
    assert batched["test_rmse"] != full["test_rmse"]
