"""Large-data settings: the declarations that switch by run size, and the GCN rating head's mini-batch path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainer import architecture as registry
from trainer.architecture import LargeData
from trainer.config import TrainConfig
from trainer.data.splits import Split
from trainer.experiment import build_for, train_and_evaluate
from trainer.models import gcn


def _tiny_gcn(split: Split, **overrides: object) -> gcn.GraphRecommender:
    model = build_for("gcn", split.train, {**registry.get("gcn").tiny, "dropout": 0.0, **overrides})
    assert isinstance(model, gcn.GraphRecommender)
    return model


def test_batch_encoding_equals_full_propagation_when_every_neighbour_is_read(small_split: Split) -> None:
    full = _tiny_gcn(small_split)
    batch = _tiny_gcn(small_split, rating_neighbours=10**6)
    batch.load_state_dict(full.state_dict())
    users, items = torch.tensor([0, 3, 250]), torch.tensor([1, 7, 150, 199])
    want_users, want_items = full.propagate()
    got_users, got_items = batch.propagate_batch(users, items)
    torch.testing.assert_close(got_users, want_users[users])
    torch.testing.assert_close(got_items, want_items[items])
    # And the decoder reads the same vectors: the training-mode logits of a batch match.
    full.train(), batch.train()
    user, item = torch.tensor([3, 0, 3]), torch.tensor([7, 150, 1])
    torch.testing.assert_close(batch.level_logits(user, item), full.level_logits(user, item))


def test_sampled_first_layer_is_unbiased(small_split: Split) -> None:
    """With 2 of each level's neighbours, the error of the mean of draws falls like 1/sqrt(draws): no bias."""
    torch.manual_seed(0)  # the initial tables: the bound below is on their errors, not on other tests' draws
    model = _tiny_gcn(small_split, rating_neighbours=2).eval()  # eval: no node dropout, sampling only
    rows = torch.tensor([0, 1, 2, model.num_users, model.num_users + 1])
    with torch.no_grad():
        exact = model.first_layer()[rows]
        torch.manual_seed(0)
        draws = torch.stack([model.sampled_first_layer(rows) for _ in range(1600)])
    assert not torch.allclose(draws[0], draws[1])  # sampling really drew different neighbours

    def error(mean: torch.Tensor) -> float:
        return float((mean - exact).abs().mean() / exact.abs().mean())

    few, many = error(draws[:100].mean(0)), error(draws.mean(0))
    # 16x the draws: an unbiased estimate's error shrinks ~4x; a biased one's would stay near its bias.
    assert many < 0.5 * few and many < 0.2, (few, many)  # 0.12-0.14 over six initialisations


def test_minibatch_training_learns_and_keeps_the_choice_through_the_refit(
    small_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = registry.get("gcn")
    large = LargeData(
        from_ratings=len(small_split.train),  # this split is "large": the whole training side decides
        defaults={"rating_neighbours": 16},
        training=TrainConfig(epochs=6, batch_size=512, learning_rate=1e-2, patience=6, refit=True, progress=False),
    )
    monkeypatch.setitem(registry._REGISTERED, "gcn", dataclasses.replace(declared, large_data=large))
    built: list[gcn.GraphRecommender] = []
    real_fit = gcn.GraphRecommender.rating_loss

    def spy(self: gcn.GraphRecommender, inputs: tuple[torch.Tensor, ...], target: torch.Tensor):  # type: ignore[no-untyped-def]
        if not built or built[-1] is not self:
            built.append(self)
        return real_fit(self, inputs, target)

    monkeypatch.setattr(gcn.GraphRecommender, "rating_loss", spy)
    trained = train_and_evaluate(
        "gcn",
        small_split,
        overrides=dict(declared.tiny),
        ranking_config=dataclasses.replace(declared.ranking, epochs=1, refit=False, progress=False),
        progress=False,
    )
    assert len(built) == 2  # the early-stopped fit and the refit, both mini-batch
    assert all(model.rating_neighbours == 16 for model in built)
    assert trained.fit.epochs_run == 6  # the large-data schedule, not the declared 1000 full-graph epochs
    train = small_split.train
    constant = float(np.sqrt(np.mean((small_split.test.ratings - train.global_mean()) ** 2)))
    assert trained.metrics["rmse"] < constant - 0.05, (trained.metrics["rmse"], constant)


def test_declarations_pick_settings_by_run_size() -> None:
    declared = registry.get("gcn")
    assert declared.large_data is not None
    below, above = declared.large_data.from_ratings - 1, declared.large_data.from_ratings
    assert declared.defaults_for(below).get("rating_neighbours", 0) == 0
    assert declared.defaults_for(above)["rating_neighbours"] == gcn.RATING_NEIGHBOURS
    assert declared.training_for(below) == declared.training
    assert declared.training_for(above).batch_size < declared.training.batch_size
    mf = registry.get("mf")  # no large-data declaration: one set of settings at every size
    assert mf.training_for(10**9) == mf.training and mf.defaults_for(10**9) == dict(mf.defaults)


@pytest.mark.parametrize("name", ["mf", "dense", "lstm", "gcn"])
def test_large_runs_validate_the_ranking_head_every_epoch(name: str) -> None:
    declared = registry.get(name)
    assert declared.large_data is not None
    large = declared.ranking_for(declared.large_data.from_ratings)
    assert (large.eval_every, large.patience) == (1, min(declared.ranking.patience, 2))
    assert dataclasses.replace(large, eval_every=declared.ranking.eval_every, patience=declared.ranking.patience) == (
        declared.ranking
    )  # nothing else changes
    assert declared.ranking_for(declared.large_data.from_ratings - 1) == declared.ranking


def test_batches_grow_past_the_declared_steps_per_epoch() -> None:
    config = TrainConfig(batch_size=100, max_steps_per_epoch=4)
    assert config.for_ratings(400) is config  # 4 steps of 100: as declared
    assert config.for_ratings(401).batch_size == 101  # 4 steps, the last one short
    assert config.for_ratings(10_000).batch_size == 2_500
    fixed = TrainConfig(batch_size=100)
    assert fixed.for_ratings(10_000) is fixed
    with pytest.raises(ValueError, match="max_steps_per_epoch must be positive"):
        TrainConfig(max_steps_per_epoch=0)
    # The GCN's mini-batch schedule: 64K batches at MovieLens 1M's shape, 16 steps an epoch at 25M's.
    schedule = registry.get("gcn").training_for(25_000_000)
    assert schedule.for_ratings(760_000).batch_size == 1 << 16
    assert -(-21_000_000 // schedule.for_ratings(21_000_000).batch_size) == 16


def test_a_fit_steps_on_the_grown_batches(tiny_split: Split) -> None:
    from trainer.data.splits import validation_split
    from trainer.fitting import fit

    fit_data, valid = validation_split(tiny_split.train, 0.1, seed=0)
    model = build_for("mf", fit_data, {"dim": 4})
    config = TrainConfig(epochs=1, batch_size=16, max_steps_per_epoch=3, progress=False)
    result = fit(model, fit_data, valid, config)
    assert (result.shard_batches, result.shard_examples) == (3, len(fit_data))
