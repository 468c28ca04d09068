"""It learns on real data: MF on MovieLens 100K u1 for a fixed number of epochs (read from its path, never copied).

The folder comes from ``RECSYS_ML100K`` (default: ``../shared/data/ml-100k`` beside the checkout). Without it
the test skips on a developer's machine and fails in CI (``CI`` set), where the data is always laid out.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from trainer import architecture
from trainer.baselines import baseline_metrics
from trainer.data.sources import load_split
from trainer.experiment import train_and_evaluate

ML100K = Path(os.environ.get("RECSYS_ML100K", Path(__file__).resolve().parents[2].parent / "shared/data/ml-100k"))
# bench/quality.py, seed 0: MF test RMSE with its declared settings (README, "Model quality").
BENCHMARK_MF_RMSE = 0.927
RATING_EPOCHS = 20
RANKING_EPOCHS = 20


@pytest.fixture(scope="module")
def u1():
    if not (ML100K / "u1.base").is_file():
        message = f"MovieLens 100K not found at {ML100K}: set RECSYS_ML100K (GroupLens terms: it is not bundled)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return load_split(str(ML100K), "u1")


@pytest.mark.slow
def test_mf_on_movielens_u1_rates_near_the_benchmark_and_ranks_well_above_popularity(u1) -> None:
    assert (len(u1.train), len(u1.test)) == (80_000, 20_000)
    declared = architecture.get("mf")
    rating = dataclasses.replace(
        declared.training, epochs=RATING_EPOCHS, patience=RATING_EPOCHS, refit=False, progress=False
    )
    ranking = dataclasses.replace(
        declared.ranking, epochs=RANKING_EPOCHS, eval_every=RANKING_EPOCHS, refit=False, progress=False
    )
    trained = train_and_evaluate("mf", u1, config=rating, ranking_config=ranking)
    assert trained.fit.epochs_run == RATING_EPOCHS and trained.ranking_fit.epochs_run == RANKING_EPOCHS
    assert abs(trained.metrics["rmse"] - BENCHMARK_MF_RMSE) <= 0.02, trained.metrics["rmse"]
    popularity = baseline_metrics(u1)["popularity"]["recall@10"]
    assert trained.metrics["recall@10"] >= 1.5 * popularity, (trained.metrics["recall@10"], popularity)
