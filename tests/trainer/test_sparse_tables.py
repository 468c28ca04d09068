"""Large data: rating tables train with sparse gradients and lazy Adam; smaller data keeps dense Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer import config as config_module
from trainer import fitting
from trainer.baselines import baseline_metrics
from trainer.config import TrainConfig
from trainer.data.splits import Split, validation_split
from trainer.evaluation import rating_errors
from trainer.experiment import build_for
from trainer.minibatches import PairBatches


@pytest.mark.parametrize("name", ["mf", "dense"])
def test_sparse_tables_give_the_same_loss_and_step_only_the_rows_read(name: str, tiny_split: Split) -> None:
    train = tiny_split.train
    model = build_for(name, train, {"dim": 8})
    inputs, target = next(PairBatches(train, 16).epoch(np.random.default_rng(0)))
    step = fitting.RatingStep(model, 0.02)
    model.eval()  # no dropout: the two losses must match
    dense_loss, _ = step(inputs, target)
    tables = model.row_tables()
    with fitting.sparse_gradients(tables):
        sparse_loss, _ = step(inputs, target)
        model.zero_grad(set_to_none=True)
        sparse_loss.backward()
        assert all(table.weight.grad.is_sparse for table in tables)
        optimizer = fitting.adamw(model, model.rating_parameters(), 0.1, 0.0, [t.weight for t in tables])
        users_before = tables[0].weight.detach().clone()
        optimizer.step()
    assert not any(table.sparse for table in tables)  # restored
    torch.testing.assert_close(sparse_loss, dense_loss)
    moved = (tables[0].weight.detach() != users_before).any(dim=1)
    assert set(torch.nonzero(moved).squeeze(1).tolist()) == set(inputs[0].unique().tolist())


def test_the_rating_loop_switches_to_lazy_adam_on_large_data(
    tiny_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    config = TrainConfig(epochs=8, batch_size=64, learning_rate=1e-2, progress=False)
    built: list[object] = []
    original = fitting.adamw

    def spy(*args: object, **kwargs: object) -> object:
        built.append(optimizer := original(*args, **kwargs))
        return optimizer

    monkeypatch.setattr(fitting, "adamw", spy)
    torch.manual_seed(0)
    fitting.fit(build_for("mf", fit_data, {"dim": 8}), fit_data, valid, config)
    assert isinstance(built[-1], torch.optim.AdamW)  # small data: the measured dense Adam
    monkeypatch.setattr(config_module, "LARGE_DATA_RATINGS", len(fit_data))
    for name in ("mf", "dense"):
        torch.manual_seed(0)
        model = build_for(name, fit_data, {"dim": 8})
        result = fitting.fit(model, fit_data, valid, config)
        optimizer = built[-1]
        lazy = optimizer.optimizers if isinstance(optimizer, fitting.JointOptimizer) else (optimizer,)
        assert any(isinstance(o, torch.optim.SparseAdam) for o in lazy)
        assert not any(table.sparse for table in model.row_tables())
        predicted = model.rate(tiny_split.test.users, tiny_split.test.items, fit_data.histories()).numpy()
        rmse = rating_errors(predicted, tiny_split.test.ratings, (1, 5))["rmse"]
        assert rmse < baseline_metrics(tiny_split)["global_mean"]["rmse"], (name, rmse, result.val_rmses)
