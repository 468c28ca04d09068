"""Train one architecture on one split and evaluate it: the unit the CLI, the benchmarks and tests share.

Both heads are fitted on the training side minus a validation carve (early stopping), then, where the
declaration asks for it, refitted on the whole training side for the best epoch count: first the rating
head (``trainer.fitting``), then the ranking head (``trainer.ranking_fit``). Test metrics read the whole
training side (the LSTM's histories, the GCN's graph), never the test side.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from trainer import architecture
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions
from trainer.data.splits import Split, validation_split
from trainer.distributed import SINGLE, DistributedContext
from trainer.evaluation import ranking_metrics, rating_errors
from trainer.fitting import FitResult, fit
from trainer.models import RatingModel, build_model
from trainer.models._base import HParam
from trainer.ranking_fit import RankingFitResult, fit_ranking

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A fitted model with its test metrics.

    Attributes:
        model: in eval mode, reading the full training data's histories (and graph).
        metrics: ``rmse``, ``mae``, ``rmse_01``, ``recall@10``, ``ndcg@10``, ``coverage@10``, ``train_seconds``.
        fit: the rating head's training history.
        ranking_fit: the ranking head's training history.
    """

    model: RatingModel
    metrics: dict[str, float]
    fit: FitResult
    ranking_fit: RankingFitResult


def build_for(
    name: str, train: Interactions, overrides: Mapping[str, HParam] | None = None, run_ratings: int | None = None
) -> RatingModel:
    """A fresh model of architecture ``name`` sized for ``train``, with its defaults and ``overrides``.

    Args:
        name: a registered architecture.
        train: the ratings it will fit (sizes, mean, graph).
        overrides: hyper-parameters replacing the defaults.
        run_ratings: training ratings of the whole run, which pick the declared defaults (``large_data``);
            ``len(train)`` when None.
    """
    declaration = architecture.get(name)
    hparams: dict[str, HParam] = {
        **declaration.defaults_for(len(train) if run_ratings is None else run_ratings),
        **declaration.model_class.data_hparams(train),
    }
    hparams.update(overrides or {})
    return build_model(name, hparams, train.histories())


def train_and_evaluate(
    name: str,
    split: Split,
    *,
    overrides: Mapping[str, HParam] | None = None,
    config: TrainConfig | None = None,
    ranking_config: RankingConfig | None = None,
    val_fraction: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    context: DistributedContext = SINGLE,
    on_epoch: Callable[[], None] | None = None,
) -> TrainedModel:
    """Carve validation from ``split.train``, fit both heads, then evaluate on ``split.test``.

    Args:
        name: a registered architecture.
        split: train and test ratings.
        overrides: hyper-parameters replacing the defaults.
        config: rating-head settings; defaults to the declaration's for the size of ``split.train`` (with
            ``seed``).
        ranking_config: ranking-head settings; defaults to the declaration's for the size of
            ``split.train`` (with ``seed``).
        val_fraction: share of the training ratings used for early stopping.
        seed: seeds the validation carve, initialisation, shuffling and sampling.
        progress: show the tqdm bars.
        context: the data-parallel run this process belongs to; every rank trains, rank 0 alone validates
            and evaluates (other ranks return empty metrics).
        on_epoch: called before every epoch of every fit (thread rebalancing).

    Returns:
        The model and its test metrics.
    """
    declaration = architecture.get(name)
    config = config or dataclasses.replace(declaration.training_for(len(split.train)), seed=seed)
    config = dataclasses.replace(config, progress=progress and config.progress)
    ranking_config = ranking_config or dataclasses.replace(declaration.ranking_for(len(split.train)), seed=seed)
    ranking_config = dataclasses.replace(ranking_config, progress=progress and ranking_config.progress)
    fit_data, valid = validation_split(split.train, val_fraction, seed, temporal=split.name == "temporal")
    started = time.perf_counter()
    torch.manual_seed(seed)  # the initialisation, so a run is reproducible from its seed
    # The mean of the whole training side, as the checkpoint's histories hold it.
    hparams = {"global_mean": split.train.global_mean(), **(overrides or {})}
    model = build_for(name, fit_data, hparams, run_ratings=len(split.train))
    loops = {"context": context, "on_epoch": on_epoch}
    result = fit(model, fit_data, valid, config, **loops)
    if config.refit:
        torch.manual_seed(seed)
        # The same model (every hyper-parameter the data chose included) over the whole training side.
        model = build_for(name, split.train, model.hparams)
        fit(model, split.train, None, dataclasses.replace(config, epochs=max(result.best_epoch, 1)), **loops)
    ranking_result = _fit_ranking_head(model, split.train, fit_data, valid, ranking_config, seed, loops)
    seconds = time.perf_counter() - started
    model.use_histories(split.train.histories())
    if not context.is_main:
        return TrainedModel(model, {"train_seconds": seconds}, result, ranking_result)
    metrics = evaluate(model, split.train, split.test)
    metrics["train_seconds"] = seconds
    _LOGGER.info("%s: test RMSE %.4f, Recall@10 %.4f (%.1f s)", name, metrics["rmse"], metrics["recall@10"], seconds)
    return TrainedModel(model, metrics, result, ranking_result)


def _fit_ranking_head(
    model: RatingModel,
    train: Interactions,
    fit_data: Interactions,
    valid: Interactions,
    config: RankingConfig,
    seed: int,
    loops: dict[str, Any],
) -> RankingFitResult:
    """Early-stop the ranking head on ``valid`` (fitting ``fit_data``), then refit it on ``train`` if asked."""
    model.use_histories(fit_data.histories())
    result = fit_ranking(model, fit_data, valid, config, **loops)
    if config.refit:
        torch.manual_seed(seed)
        model.ranking.reset_parameters()
        model.use_histories(train.histories())
        refit = dataclasses.replace(config, epochs=max(result.best_epoch, 1))
        refit_result = fit_ranking(model, train, None, refit, **loops)
        result.seconds += refit_result.seconds
    return result


def evaluate(model: RatingModel, train: Interactions, test: Interactions) -> dict[str, float]:
    """Test metrics of a fitted model: rating errors, and top-10 ranking over items unseen in ``train``."""
    model.eval()
    histories = train.histories()
    predicted = model.rate(test.users, test.items, histories).numpy()
    metrics = rating_errors(predicted, test.ratings, test.rating_scale)
    metrics.update(ranking_metrics(lambda users: model.rank(users, histories), histories, test))
    return metrics
