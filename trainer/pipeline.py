"""Train one architecture on a split and evaluate it: the unit the CLI, the benchmark and tests share."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from trainer.data.interactions import Interactions
from trainer.data.splits import Split, validation_split
from trainer.defaults import MODEL_DEFAULTS, TRAIN_DEFAULTS
from trainer.evaluation import ranking_metrics, rating_errors
from trainer.inputs import predict_pairs, score_catalogue
from trainer.models import RatingModel, build_model
from trainer.models._base import HParam
from trainer.training import FitResult, TrainConfig, fit

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A fitted model with its test metrics.

    Attributes:
        model: in eval mode, holding the full training data's graph (GCN).
        metrics: ``rmse``, ``mae``, ``rmse_01``, ``recall@10``, ``ndcg@10``, ``train_seconds``.
        fit: the training history.
    """

    model: RatingModel
    metrics: dict[str, float]
    fit: FitResult


def build_for(architecture: str, train: Interactions, overrides: Mapping[str, HParam] | None = None) -> RatingModel:
    """A fresh model sized for ``train``, with the defaults, the data's mean and scale, and ``overrides``."""
    hparams: dict[str, HParam] = dict(MODEL_DEFAULTS[architecture])
    if architecture != "lstm":
        hparams["num_users"] = train.num_users
    hparams.update(
        num_items=train.num_items,
        global_mean=train.global_mean(),
        rating_min=train.rating_scale[0],
        rating_max=train.rating_scale[1],
    )
    hparams.update(overrides or {})
    histories = train.histories()
    return build_model(
        architecture,
        hparams,
        history_offsets=histories.offsets,
        history_items=histories.items,
        history_ratings=histories.ratings,
    )


def train_and_evaluate(
    architecture: str,
    split: Split,
    *,
    overrides: Mapping[str, HParam] | None = None,
    config: TrainConfig | None = None,
    val_fraction: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> TrainedModel:
    """Carve validation from ``split.train``, fit, then evaluate on ``split.test`` with the full training data.

    The model is fitted on training minus validation (then, with ``config.refit``, refitted on the whole
    training side for the best epoch count). For the test metrics the LSTM reads, and the GCN propagates
    over, the whole training side (never the test side).

    Args:
        architecture: ``mf``, ``dense``, ``lstm`` or ``gcn``.
        split: train and test ratings.
        overrides: hyper-parameters replacing the defaults.
        config: training settings; defaults to the architecture's tuned ones (with ``seed``).
        val_fraction: share of the training ratings used for early stopping.
        seed: seeds the validation carve, initialisation and shuffling.
        progress: show the tqdm bar.

    Returns:
        The model and its test metrics.
    """
    config = config or dataclasses.replace(TRAIN_DEFAULTS[architecture], seed=seed)
    config = dataclasses.replace(config, progress=progress and config.progress)
    fit_data, valid = validation_split(split.train, val_fraction, seed, temporal=split.name == "temporal")
    started = time.perf_counter()
    torch.manual_seed(seed)  # the initialisation, so a run is reproducible from its seed
    # The mean of the whole training side, as the checkpoint's histories hold it.
    hparams = {"global_mean": split.train.global_mean(), **(overrides or {})}
    model = build_for(architecture, fit_data, hparams)
    result = fit(model, fit_data, valid, config)
    if config.refit:
        torch.manual_seed(seed)
        model = build_for(architecture, split.train, hparams)
        fit(model, split.train, None, dataclasses.replace(config, epochs=max(result.best_epoch, 1)))
    seconds = time.perf_counter() - started
    if architecture == "gcn":
        full = split.train.histories()
        model.set_graph(full.offsets, full.items, full.ratings)
    metrics = evaluate(model, split.train, split.test)
    metrics["train_seconds"] = seconds
    _LOGGER.info("%s: test RMSE %.4f, MAE %.4f (%.1f s)", architecture, metrics["rmse"], metrics["mae"], seconds)
    return TrainedModel(model, metrics, result)


def evaluate(model: RatingModel, train: Interactions, test: Interactions) -> dict[str, float]:
    """Test metrics of a fitted model: rating errors and top-10 ranking over items unseen in ``train``."""
    model.eval()
    histories = train.histories()
    predicted = predict_pairs(model, test.users, test.items, histories)
    metrics = rating_errors(predicted, test.ratings, test.rating_scale)
    metrics.update(ranking_metrics(lambda users: score_catalogue(model, users, histories), histories, test))
    return metrics
