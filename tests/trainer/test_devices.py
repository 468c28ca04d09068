"""Where fits step: device names resolve with clear errors, batches move whole, and a fit that steps a copy
of the model (as on a GPU) ends with exactly the weights and history of a fit that steps the model itself.

The CUDA tests run where torch sees a GPU (``bench/gpu_check.sh``); everywhere else they are skipped, and
the copy-publishing logic they rely on is proven on the CPU by forcing the copy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np
import pytest
import torch

from trainer import architecture as registry
from trainer import devices, fitting, ranking_fit
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions
from trainer.data.splits import Split, validation_split
from trainer.distributed import DistributedContext
from trainer.experiment import build_for
from trainer.losses import Positives
from trainer.minibatches import RankingBatch
from trainer.models import RatingModel

SINGLE = DistributedContext()
NCCL = DistributedContext(rank=1, world_size=2, local_rank=1, backend="nccl")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bench/gpu_check.sh)")

CASES = {
    "mf": ({"dim": 8}, TrainConfig(epochs=4, batch_size=256, learning_rate=1e-2, l2=0.05, patience=2)),
    "dense": ({"dim": 8, "hidden_dim": 16}, TrainConfig(epochs=3, batch_size=256, learning_rate=5e-3, l2=0.02)),
    "lstm": ({"dim": 8, "hidden_dim": 16}, TrainConfig(epochs=3, batch_size=32, learning_rate=5e-3)),
    "gcn": ({"hidden_dim": 50, "dim": 8}, TrainConfig(epochs=6, batch_size=1 << 20, learning_rate=2e-2)),
    # Overfits within a few epochs, so both fits stop past their best and must restore it.
    "mf-overfit": (
        {"dim": 32, "init_std": 0.5},
        TrainConfig(epochs=30, batch_size=64, learning_rate=3e-2, patience=2),
    ),
    # The mini-batch rating head and LightGCN's sampled layer read graphs that are plain attributes.
    "gcn-sampled": (
        {"hidden_dim": 50, "dim": 8, "rating_neighbours": 4, "ranking_neighbours": 3},
        TrainConfig(epochs=3, batch_size=512, learning_rate=1e-2),
    ),
}
RANK = RankingConfig(epochs=3, eval_every=1, batch_size=64, learning_rate=1e-2, loss="sampled_softmax", negatives=4)
OVERFIT_RANK = RankingConfig(epochs=12, eval_every=1, patience=2, batch_size=16, learning_rate=0.2, low_rating_weight=1)


def _architecture(case: str) -> str:
    return case.partition("-")[0]


def test_resolve_names_the_device_and_says_what_to_do() -> None:
    assert devices.resolve(None, SINGLE) == "cpu"
    assert devices.resolve("cpu", SINGLE) == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        devices.resolve("tpu", SINGLE)
    with pytest.raises(ValueError, match="--device cuda"):
        devices.resolve("cpu", NCCL)  # nccl reduces CUDA tensors only


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a host without CUDA answers")
def test_without_cuda_auto_is_the_cpu_and_cuda_is_refused() -> None:
    assert devices.resolve("auto", SINGLE) == "cpu"
    for requested in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=r"sees no CUDA device.*--device cpu"):
            devices.resolve(requested, SINGLE)
    with pytest.raises(ValueError, match="sees no CUDA device"):
        devices.resolve(None, NCCL)  # nccl's default is this rank's GPU


@needs_cuda
def test_with_cuda_each_rank_takes_its_local_gpu() -> None:
    assert devices.resolve("auto", SINGLE) == "cuda"
    assert devices.resolve(None, NCCL) == "cuda:1"
    assert devices.resolve("cuda:0", NCCL) == "cuda:0"


def test_to_device_moves_every_tensor_of_a_batch_and_leaves_the_rest() -> None:
    positives = Positives(torch.tensor([0, 0, 1]), torch.tensor([4, 5, 6]), torch.ones(3))
    batch = RankingBatch((torch.tensor([7, 8]), torch.tensor([1, 2])), positives, np.array([7, 8]))
    assert devices.to_device(batch, torch.device("cpu")) is batch  # nothing to do on the CPU
    moved = devices.to_device(batch, torch.device("meta"))  # a device that is not the CPU, on any host
    assert isinstance(moved, RankingBatch) and isinstance(moved.positives, Positives)
    tensors = [*moved.inputs, moved.positives.rows, moved.positives.items, moved.positives.weights]
    assert all(t.device.type == "meta" for t in tensors)
    assert [t.shape for t in tensors] == [(2,), (2,), (3,), (3,), (3,)]
    assert isinstance(moved.row_users, np.ndarray) and moved.row_users is batch.row_users
    pair = devices.to_device(((torch.zeros(2, dtype=torch.long),), torch.ones(2)), torch.device("meta"))
    assert pair[0][0].device.type == "meta" and pair[1].device.type == "meta"


def test_on_the_cpu_the_fit_steps_the_model_itself(tiny_split: Split) -> None:
    model = build_for("mf", tiny_split.train, {"dim": 4})
    placed = devices.TrainingCopy(model, "cpu")
    assert placed.worker is model
    copied = devices.TrainingCopy(model, "cpu", copy_always=True)
    assert copied.worker is not model
    assert copied.worker.user_factors.weight.data_ptr() != model.user_factors.weight.data_ptr()


class Fits(NamedTuple):
    model: RatingModel
    rating: fitting.FitResult
    ranking: ranking_fit.RankingFitResult
    fit_data: Interactions
    valid: Interactions


def _fits(case: str, split: Split, device: str, *, copy_always: bool, monkeypatch: pytest.MonkeyPatch) -> Fits:
    """Both heads' fits of ``case`` on ``device``, stepping a copy of the model when ``copy_always``."""
    overrides, config = CASES[case]
    placing = functools.partial(devices.TrainingCopy, copy_always=copy_always)
    monkeypatch.setattr(fitting, "TrainingCopy", placing)
    monkeypatch.setattr(ranking_fit, "TrainingCopy", placing)
    fit_data, valid = validation_split(split.train, 0.1, seed=0)
    torch.manual_seed(0)
    model = build_for(_architecture(case), fit_data, overrides)
    rating = fitting.fit(model, fit_data, valid, dataclasses.replace(config, progress=False, device=device))
    rank = OVERFIT_RANK if case.endswith("overfit") else RANK
    ranking = ranking_fit.fit_ranking(model, fit_data, valid, dataclasses.replace(rank, progress=False, device=device))
    return Fits(model, rating, ranking, fit_data, valid)


@pytest.mark.parametrize("case", list(CASES))
def test_stepping_a_copy_publishes_exactly_what_stepping_the_model_does(
    case: str, tiny_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU path's bookkeeping on the CPU: validation reads the copy's weights, the best are restored."""
    model, rating, ranking, _, _ = _fits(case, tiny_split, "cpu", copy_always=False, monkeypatch=monkeypatch)
    twin, twin_rating, twin_ranking, _, _ = _fits(case, tiny_split, "cpu", copy_always=True, monkeypatch=monkeypatch)
    assert twin_rating.val_rmses == rating.val_rmses and twin_rating.best_epoch == rating.best_epoch
    assert twin_ranking.val_recalls == ranking.val_recalls and twin_ranking.best_epoch == ranking.best_epoch
    assert len(set(rating.val_rmses)) > 1, "validation must see the weights change"
    if case.endswith("overfit"):
        assert rating.best_epoch < rating.epochs_run and ranking.best_epoch < ranking.epochs_run
    want, got = model.state_dict(), twin.state_dict()
    assert want.keys() == got.keys()
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)
    assert all(t.device.type == "cpu" for t in got.values())


@needs_cuda
@pytest.mark.parametrize("case", list(CASES))
def test_a_fit_on_cuda_matches_the_cpu_and_returns_a_cpu_model(
    case: str, small_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = _fits(case, small_split, "cpu", copy_always=False, monkeypatch=monkeypatch)
    gpu = _fits(case, small_split, "cuda", copy_always=False, monkeypatch=monkeypatch)
    assert all(t.device.type == "cpu" for t in gpu.model.state_dict().values())
    assert all(math.isfinite(loss) for loss in gpu.rating.losses + gpu.ranking.losses)
    # Other kernels and random streams: close, not equal.
    assert abs(gpu.rating.best_val_rmse - cpu.rating.best_val_rmse) < 0.05
    assert abs(gpu.ranking.best_val_recall - cpu.ranking.best_val_recall) < 0.1
    predicted = gpu.model.rate(gpu.valid.users, gpu.valid.items, gpu.fit_data.histories()).numpy()
    rmse = float(np.sqrt(np.mean((predicted - gpu.valid.ratings) ** 2)))
    assert rmse == pytest.approx(gpu.rating.best_val_rmse, abs=1e-4)  # the best weights came back


def test_every_declared_architecture_is_covered() -> None:
    assert {_architecture(case) for case in CASES} == set(registry.BUILT_IN)
