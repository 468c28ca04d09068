"""Each model learns on small synthetic data, early stopping keeps the best epoch, and failures are loud."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainer.baselines import baseline_metrics
from trainer.data.splits import Split, validation_split
from trainer.defaults import TRAIN_DEFAULTS
from trainer.models import ARCHITECTURES
from trainer.pipeline import build_for, train_and_evaluate
from trainer.training import TrainConfig, fit

SMALL = {
    "mf": {"dim": 16},
    "dense": {"dim": 16, "hidden_dim": 32},
    "lstm": {"dim": 16, "hidden_dim": 32, "max_history_length": 60},
    "gcn": {"hidden_dim": 50, "dim": 16},
}
QUICK = {
    "mf": TrainConfig(epochs=12, batch_size=512, learning_rate=1e-2, l2=0.05),
    "dense": TrainConfig(epochs=10, batch_size=512, learning_rate=5e-3, l2=0.02),
    "lstm": TrainConfig(epochs=10, batch_size=32, learning_rate=5e-3, weight_decay=1e-4),
    "gcn": TrainConfig(epochs=40, batch_size=1 << 20, learning_rate=2e-2, patience=10),
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_model_learns_and_beats_the_global_mean(architecture: str, small_split: Split) -> None:
    config = dataclasses.replace(QUICK[architecture], progress=False)
    trained = train_and_evaluate(architecture, small_split, overrides=SMALL[architecture], config=config)
    baseline = baseline_metrics(small_split)["global_mean"]["rmse"]
    assert trained.metrics["rmse"] < baseline - 0.05, (trained.metrics["rmse"], baseline)
    assert trained.fit.losses[-1] < trained.fit.losses[0]
    assert all(np.isfinite(trained.fit.losses))
    assert 0.0 <= trained.metrics["recall@10"] <= 1.0 and 0.0 <= trained.metrics["ndcg@10"] <= 1.0
    assert trained.metrics["rmse_01"] == pytest.approx(trained.metrics["rmse"] / 4)
    assert not trained.model.training


def test_training_is_reproducible_from_the_seed(tiny_split: Split) -> None:
    config = TrainConfig(epochs=2, batch_size=256, progress=False)
    runs = [train_and_evaluate("mf", tiny_split, overrides={"dim": 8}, config=config, seed=3) for _ in range(2)]
    assert runs[0].metrics["rmse"] == runs[1].metrics["rmse"]
    other = train_and_evaluate(
        "mf", tiny_split, overrides={"dim": 8}, config=dataclasses.replace(config, seed=4), seed=4
    )
    assert other.metrics["rmse"] != runs[0].metrics["rmse"]


def test_early_stopping_restores_the_best_epoch(tiny_split: Split) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    torch.manual_seed(0)
    model = build_for("mf", fit_data, {"dim": 32, "init_std": 0.5})  # overfits fast without l2
    config = TrainConfig(epochs=30, batch_size=64, learning_rate=3e-2, patience=2, progress=False)
    result = fit(model, fit_data, valid, config)
    assert result.epochs_run < 30, "should stop early"
    assert result.best_epoch == int(np.argmin(result.val_rmses)) + 1
    assert result.epochs_run == result.best_epoch + 2
    assert result.best_val_rmse == pytest.approx(min(result.val_rmses))
    from trainer.evaluation import rating_errors
    from trainer.inputs import predict_pairs

    now = rating_errors(predict_pairs(model, valid.users, valid.items, fit_data.histories()), valid.ratings, (1, 5))
    assert now["rmse"] == pytest.approx(result.best_val_rmse, abs=1e-6)


def test_a_diverging_loss_raises(tiny_split: Split) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    with torch.no_grad():
        model.user_factors.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="degenerate loss"):
        fit(model, fit_data, valid, TrainConfig(epochs=1, batch_size=1 << 20, progress=False))


def test_defaults_exist_for_every_architecture() -> None:
    assert set(TRAIN_DEFAULTS) == set(ARCHITECTURES)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)


def test_refit_trains_on_every_training_rating_for_the_best_epoch_count(tiny_split: Split) -> None:
    config = TrainConfig(epochs=6, batch_size=256, patience=6, progress=False, refit=True)
    trained = train_and_evaluate("mf", tiny_split, overrides={"dim": 8}, config=config)
    plain = train_and_evaluate("mf", tiny_split, overrides={"dim": 8}, config=dataclasses.replace(config, refit=False))
    assert trained.fit.best_epoch == plain.fit.best_epoch
    assert trained.metrics["rmse"] != plain.metrics["rmse"]  # a different model: it saw the validation ratings
    fit_data, _ = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    result = fit(model, tiny_split.train, None, dataclasses.replace(config, epochs=3))
    assert result.epochs_run == result.best_epoch == 3 and np.isnan(result.best_val_rmse)
