"""Each model learns on small synthetic data, early stopping keeps the best epoch, and failures are loud."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainer import architecture as registry
from trainer.baselines import baseline_metrics
from trainer.config import RankingConfig, TrainConfig
from trainer.data.splits import Split, validation_split
from trainer.experiment import build_for, train_and_evaluate
from trainer.fitting import fit

ARCHITECTURES = registry.BUILT_IN

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
RANK = RankingConfig(epochs=4, eval_every=2, batch_size=64, learning_rate=1e-2, progress=False)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_model_learns_and_beats_the_global_mean(architecture: str, small_split: Split) -> None:
    config = dataclasses.replace(QUICK[architecture], progress=False)
    trained = train_and_evaluate(
        architecture, small_split, overrides=SMALL[architecture], config=config, ranking_config=RANK
    )
    baseline = baseline_metrics(small_split)["global_mean"]["rmse"]
    assert trained.metrics["rmse"] < baseline - 0.05, (trained.metrics["rmse"], baseline)
    assert trained.fit.losses[-1] < trained.fit.losses[0]
    assert all(np.isfinite(trained.fit.losses))
    assert 0.0 <= trained.metrics["recall@10"] <= 1.0 and 0.0 <= trained.metrics["ndcg@10"] <= 1.0
    assert trained.metrics["rmse_01"] == pytest.approx(trained.metrics["rmse"] / 4)
    assert not trained.model.training


def test_training_is_reproducible_from_the_seed(tiny_split: Split) -> None:
    config = TrainConfig(epochs=2, batch_size=256, progress=False)
    rank = dataclasses.replace(RANK, seed=3, loss="sampled_softmax", negatives=5)
    runs = [
        train_and_evaluate("mf", tiny_split, overrides={"dim": 8}, config=config, ranking_config=rank, seed=3)
        for _ in range(2)
    ]
    assert runs[0].metrics["rmse"] == runs[1].metrics["rmse"]
    assert runs[0].ranking_fit.losses == runs[1].ranking_fit.losses  # sampled negatives are seeded too
    other = train_and_evaluate(
        "mf",
        tiny_split,
        overrides={"dim": 8},
        config=dataclasses.replace(config, seed=4),
        ranking_config=dataclasses.replace(rank, seed=4),
        seed=4,
    )
    assert other.metrics["rmse"] != runs[0].metrics["rmse"]
    assert other.ranking_fit.losses != runs[0].ranking_fit.losses


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

    predicted = model.rate(valid.users, valid.items, fit_data.histories()).numpy()
    now = rating_errors(predicted, valid.ratings, (1, 5))
    assert now["rmse"] == pytest.approx(result.best_val_rmse, abs=1e-6)


def test_a_diverging_loss_raises(tiny_split: Split) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    with torch.no_grad():
        model.user_factors.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="degenerate loss"):
        fit(model, fit_data, valid, TrainConfig(epochs=1, batch_size=1 << 20, progress=False))


def test_every_architecture_declares_its_settings() -> None:
    for name in ARCHITECTURES:
        declaration = registry.get(name)
        assert declaration.name == name and declaration.model_class.architecture == name
        assert {s.name for s in declaration.signatures} >= {"predict", "recommend"}
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="unknown ranking loss"):
        RankingConfig(loss="hinge")


def test_refit_trains_on_every_training_rating_for_the_best_epoch_count(tiny_split: Split) -> None:
    config = TrainConfig(epochs=6, batch_size=256, patience=6, progress=False, refit=True)
    trained = train_and_evaluate("mf", tiny_split, overrides={"dim": 8}, config=config, ranking_config=RANK)
    plain = train_and_evaluate(
        "mf", tiny_split, overrides={"dim": 8}, config=dataclasses.replace(config, refit=False), ranking_config=RANK
    )
    assert trained.fit.best_epoch == plain.fit.best_epoch
    assert trained.metrics["rmse"] != plain.metrics["rmse"]  # a different model: it saw the validation ratings
    fit_data, _ = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    result = fit(model, tiny_split.train, None, dataclasses.replace(config, epochs=3))
    assert result.epochs_run == result.best_epoch == 3 and np.isnan(result.best_val_rmse)
