"""Long epochs: the wall-time cap ends an epoch between batches, and the epoch bar counts batches."""

from __future__ import annotations

import io
import math

import pytest
import torch
from tqdm import tqdm

from trainer import progress
from trainer.config import RankingConfig, TrainConfig
from trainer.data.splits import Split, validation_split
from trainer.distributed import shard, shard_length
from trainer.experiment import build_for
from trainer.fitting import fit
from trainer.ranking_fit import fit_ranking


def test_max_seconds_ends_the_rating_epoch_after_the_batch_that_crossed_it(tiny_split: Split) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    config = TrainConfig(epochs=5, batch_size=32, progress=False)
    full = fit(model, fit_data, valid, config)
    assert full.shard_batches == len(model.rating_batches(fit_data, config)) > 1
    torch.manual_seed(0)
    model = build_for("mf", fit_data, {"dim": 8})
    capped = fit(model, fit_data, valid, TrainConfig(epochs=5, batch_size=32, progress=False, max_seconds=0.0))
    assert capped.epochs_run == 1 and capped.shard_batches == 1
    assert capped.best_epoch == 1  # the partial epoch is validated and kept
    assert capped.cut_short and math.isnan(capped.seconds_per_epoch())  # a partial epoch is no epoch's cost
    assert not full.cut_short and len(full.epoch_seconds) == full.epochs_run
    assert full.seconds_per_epoch() == pytest.approx(sum(full.epoch_seconds) / full.epochs_run)


def test_max_seconds_ends_the_ranking_epoch_after_the_batch_that_crossed_it(tiny_split: Split) -> None:
    fit_data, valid = validation_split(tiny_split.train, 0.1)
    model = build_for("mf", fit_data, {"dim": 8})
    config = RankingConfig(epochs=4, batch_size=8, eval_every=1, progress=False)
    full = fit_ranking(model, fit_data, valid, config)
    assert full.shard_batches > 1 and full.epochs_run == 4
    capped = fit_ranking(model, fit_data, valid, RankingConfig(epochs=4, batch_size=8, progress=False, max_seconds=0))
    assert capped.epochs_run == 1 and capped.shard_batches == 1


@pytest.mark.parametrize(("batches", "world_size"), [(10, 1), (10, 2), (10, 3), (2, 4), (0, 2)])
def test_shard_length_is_what_shard_hands_each_rank(batches: int, world_size: int) -> None:
    expected = {len(list(shard(range(batches), rank, world_size))) for rank in range(world_size)}
    assert expected == {shard_length(range(batches), world_size)}
    assert shard_length(iter(range(batches)), world_size) is None  # no length, no count on the bar


def test_the_epoch_bar_shows_the_batch_count_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    out = io.StringIO()
    bar = tqdm(total=3, file=out, mininterval=0)
    watch = progress.EpochWatch(bar, 40, progress.deadline_after(None, clock[0]), stop_mid_epoch=True)
    clock[0] += 0.5
    assert not watch.tick(1)
    assert "batch 1/40" not in out.getvalue()
    clock[0] += 1.0
    assert not watch.tick(2)
    assert "batch 2/40" in out.getvalue()
    bar.close()


def test_the_deadline_waits_for_the_epoch_end_when_ranks_must_step_together(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = tqdm(total=1, disable=True)
    together = progress.EpochWatch(bar, None, progress.deadline_after(5.0, 0.0), stop_mid_epoch=False)
    alone = progress.EpochWatch(bar, None, progress.deadline_after(5.0, 0.0), stop_mid_epoch=True)
    assert not alone.tick(1) and not alone.out_of_time()
    clock[0] = 6.0
    assert not together.tick(2) and together.out_of_time()
    assert alone.tick(2) and alone.cut_short
