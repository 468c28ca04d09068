"""It learns on real data: MF for a short budget on MovieLens 100K's u1 split (loaded from its path, never copied)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trainer.data.sources import load_split
from trainer.defaults import TRAIN_DEFAULTS
from trainer.pipeline import train_and_evaluate

ML100K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml-100k"


@pytest.mark.slow
@pytest.mark.skipif(
    not (ML100K / "u1.base").is_file(), reason=f"MovieLens 100K not found at {ML100K} (GroupLens terms: not bundled)"
)
def test_mf_on_movielens_u1_beats_one_star_rmse() -> None:
    split = load_split(str(ML100K), "u1")
    assert (len(split.train), len(split.test)) == (80_000, 20_000)
    config = dataclasses.replace(TRAIN_DEFAULTS["mf"], epochs=8, max_seconds=45, progress=False)
    trained = train_and_evaluate("mf", split, config=config)
    assert trained.metrics["rmse"] < 1.0
    assert trained.metrics["mae"] < 0.8
