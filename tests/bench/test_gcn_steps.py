"""bench.gcn_steps: per-step timing of the GCN's mini-batch rating head."""

from __future__ import annotations

import math

from bench.gcn_steps import time_steps
from trainer.data.splits import random_split
from trainer.data.synthetic import synthetic_interactions
from trainer.tiny import TINY_DATA


def test_times_each_part_of_a_step_and_counts_an_epoch() -> None:
    timed = time_steps(random_split(synthetic_interactions(TINY_DATA), 0.1, seed=0), neighbours=4, steps=2)
    assert all(timed[part] > 0 for part in ("forward", "backward", "optimizer", "build"))
    assert math.isclose(timed["step"], timed["forward"] + timed["backward"] + timed["optimizer"])
    assert timed["steps_per_epoch"] == 1  # the tiny split fits in one 64K-rating batch
