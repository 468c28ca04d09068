"""The ranking head's loop: mini-batch AdamW on a ranking loss, early stopping on validation Recall@10.

Only ``model.ranking``'s parameters move, so the rating head (and its RMSE) is untouched. Each step asks
the model for its :class:`~trainer.losses.Towers` of one batch and applies the configured loss; negatives,
when the loss samples them, are drawn here (``trainer.sampling``), never inside a model.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from trainer.config import RankingConfig
from trainer.data.interactions import Interactions
from trainer.evaluation import TOP_K, ranking_metrics
from trainer.fitting import adamw
from trainer.losses import bpr_loss, sampled_softmax_loss, softmax_loss
from trainer.minibatches import RankingBatch
from trainer.models import RatingModel
from trainer.sampling import positive_keys, sample_negatives

_LOGGER = logging.getLogger(__name__)
_RECALL = f"recall@{TOP_K}"


@dataclass
class RankingFitResult:
    """What ranking training did.

    Attributes:
        best_epoch: 1-based epoch whose weights were kept.
        best_val_recall: validation Recall@10 of those weights (NaN without validation).
        epochs_run: epochs actually run.
        seconds: wall time of the fit.
        losses: mean training loss per epoch.
        val_recalls: (epoch, validation Recall@10) of each validation.
    """

    best_epoch: int = 0
    best_val_recall: float = math.nan
    epochs_run: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    val_recalls: list[tuple[int, float]] = field(default_factory=list)


def fit_ranking(
    model: RatingModel, train: Interactions, valid: Interactions | None, config: RankingConfig
) -> RankingFitResult:
    """Fit ``model.ranking`` on ``train``'s implicit signal, stopping early on ``valid`` Recall@10.

    Without ``valid`` it runs exactly ``config.epochs`` epochs and keeps the last weights (a refit).
    Validation ranks every item a user did not rate in ``train`` and counts the user's validation
    ratings >= 4 as relevant, as the test metrics do; the model must already read ``train``'s histories
    (the GCN's graph).

    Args:
        model: a model whose ranking head is to be trained.
        train: ratings whose rated items are the positives.
        valid: held-out training ratings for early stopping (never the test split), or None.
        config: optimisation settings.

    Returns:
        The fit's history; ``model`` is left in eval mode with the best epoch's ranking weights.

    Raises:
        FloatingPointError: the loss became NaN or infinite (lower the learning rate).
        ValueError: empty training data.
    """
    if not len(train):
        raise ValueError("need training ratings to fit a ranking head")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    batches = model.ranking_batches(train, config)
    optimizer = adamw(model, list(model.ranking.parameters()), config.learning_rate, config.weight_decay)
    histories = train.histories()
    keys = positive_keys(train.users, train.items, train.num_items) if config.loss != "softmax" else np.empty(0)
    best_state, result = copy.deepcopy(model.ranking.state_dict()), RankingFitResult()
    best_recall, since_best = -math.inf, 0
    started = time.perf_counter()
    bar = tqdm(
        total=config.epochs,
        desc=f"{'rank' if valid is not None else 'rank refit'} {model.architecture}",
        unit="epoch",
        disable=not config.progress,
        position=config.progress_position,
        leave=True,
    )
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            loss = _epoch(model, batches, optimizer, config, keys, train.num_items, rng)
            result.losses.append(loss)
            result.epochs_run = epoch
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", best=f"{best_recall:.4f}@{result.best_epoch}")
            if valid is None:
                result.best_epoch = epoch
            elif epoch % config.eval_every == 0 or epoch == config.epochs:
                model.eval()
                recall = ranking_metrics(lambda users: model.rank(users, histories), histories, valid)[_RECALL]
                result.val_recalls.append((epoch, recall))
                if recall > best_recall:
                    best_state, best_recall, result.best_epoch, since_best = (
                        copy.deepcopy(model.ranking.state_dict()),
                        recall,
                        epoch,
                        0,
                    )
                else:
                    since_best += 1
                if since_best >= config.patience:
                    break
            if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
                _LOGGER.info("%s ranking: stopping after %.0f s (max_seconds)", model.architecture, config.max_seconds)
                break
    finally:
        bar.close()
    if valid is not None:
        model.ranking.load_state_dict(best_state)
        result.best_val_recall = best_recall
    model.eval()
    result.seconds = time.perf_counter() - started
    if valid is None:
        _LOGGER.info("%s ranking: refit %d epochs (%.1f s)", model.architecture, result.epochs_run, result.seconds)
    else:
        _LOGGER.info(
            "%s ranking: best validation %s %.4f at epoch %d of %d (%.1f s)",
            model.architecture,
            _RECALL,
            best_recall,
            result.best_epoch,
            result.epochs_run,
            result.seconds,
        )
    return result


def _epoch(
    model: RatingModel,
    batches: object,
    optimizer: torch.optim.Optimizer,
    config: RankingConfig,
    keys: np.ndarray,
    num_items: int,
    rng: np.random.Generator,
) -> float:
    total, count = 0.0, 0
    batch: RankingBatch
    for batch in batches.epoch(rng):  # type: ignore[attr-defined]
        if not len(batch.positives.items):
            continue
        towers = model.ranking_towers(batch.inputs)
        if config.loss == "softmax":
            loss = softmax_loss(towers, batch.positives)
        else:
            users = batch.row_users[batch.positives.rows.numpy()]
            count_per = config.negatives if config.loss == "sampled_softmax" else 1
            negatives = torch.from_numpy(sample_negatives(num_items, keys, users, count_per, rng))
            loss_fn = sampled_softmax_loss if config.loss == "sampled_softmax" else bpr_loss
            loss = loss_fn(towers, batch.positives, negatives)
        if config.l2:
            loss = loss + config.l2 * towers.penalty
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"degenerate ranking loss {float(loss.detach())} training {model.architecture}; lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
    return total / max(count, 1)
