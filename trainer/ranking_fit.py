"""The ranking head's loop: mini-batch AdamW on a ranking loss, early stopping on validation Recall@10.

Only ``model.ranking``'s parameters move, so the rating head (and its RMSE) is untouched. Each step asks
the model for its :class:`~trainer.losses.Towers` of one batch and applies the configured loss; negatives,
when the loss samples them, are drawn here (``trainer.sampling``), never inside a model.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from trainer.config import RankingConfig
from trainer.data.interactions import Interactions
from trainer.devices import TrainingCopy
from trainer.distributed import SINGLE, DistributedContext, ShardLog, only_training, shard, shard_batch_size
from trainer.evaluation import TOP_K, ranking_metrics
from trainer.fitting import adamw, log_fit
from trainer.losses import bpr_loss, sampled_softmax_loss, softmax_loss
from trainer.minibatches import RankingBatch
from trainer.models import RatingModel
from trainer.progress import EpochWatch, watch_fit, whole_epoch_mean
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
        val_recalls: (epoch, validation Recall@10) of each validation (rank 0 only).
        shard_batches: batches this rank stepped on in the first epoch.
        shard_examples: positives in those batches.
        shard_digest: hash of those batches' first inputs (ranks of one run differ).
        epoch_seconds: wall time of each epoch, its validation included.
        cut_short: the last epoch ended early at ``max_seconds`` (its time is not an epoch's cost).
    """

    best_epoch: int = 0
    best_val_recall: float = math.nan
    epochs_run: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    val_recalls: list[tuple[int, float]] = field(default_factory=list)
    shard_batches: int = 0
    shard_examples: int = 0
    shard_digest: str = ""
    epoch_seconds: list[float] = field(default_factory=list)
    cut_short: bool = False

    def seconds_per_epoch(self) -> float:
        """Mean wall time of the epochs that ran whole (NaN when none did)."""
        return whole_epoch_mean(self.epoch_seconds, self.cut_short)


class RankingStep(nn.Module):
    """One batch's ranking loss (plus ``l2`` times the towers' penalty): what DistributedDataParallel wraps.

    Args:
        model: the model whose ranking head is fitted.
        loss: ``softmax``, ``sampled_softmax`` or ``bpr``.
        l2: weight of the towers' penalty.
    """

    def __init__(self, model: RatingModel, loss: str, l2: float) -> None:
        super().__init__()
        self.model, self.loss, self.l2 = model, loss, l2

    def forward(self, batch: RankingBatch, negatives: torch.Tensor | None) -> torch.Tensor:
        """Scalar loss of ``batch``; ``negatives`` int64 [n, k] for the sampled losses, else None."""
        towers = self.model.ranking_towers(batch.inputs)
        if self.loss == "softmax":
            loss = softmax_loss(towers, batch.positives)
        else:
            loss_fn = sampled_softmax_loss if self.loss == "sampled_softmax" else bpr_loss
            loss = loss_fn(towers, batch.positives, negatives)
        if self.l2:
            loss = loss + self.l2 * towers.penalty
        return loss


def fit_ranking(
    model: RatingModel,
    train: Interactions,
    valid: Interactions | None,
    config: RankingConfig,
    *,
    context: DistributedContext = SINGLE,
    on_epoch: Callable[[], None] | None = None,
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
        context: the data-parallel run this process belongs to (see :func:`trainer.fitting.fit`); negatives
            are drawn from a stream of their own per rank, so every rank keeps drawing the same batch order.
        on_epoch: called before every epoch (the jobs runner rebalances threads there).

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
    # One process keeps its single stream; ranks share the order stream and sample negatives apart.
    sampler = np.random.default_rng([config.seed, context.rank]) if context.enabled else rng
    per_rank = config
    if context.enabled:
        per_rank = dataclasses.replace(config, batch_size=shard_batch_size(config.batch_size, context.world_size))
    batches = model.ranking_batches(train, per_rank)
    placed = TrainingCopy(model, config.device)
    worker = placed.worker
    trained = list(worker.ranking.parameters())
    optimizer = adamw(worker, trained, config.learning_rate, config.weight_decay)
    histories = train.histories()
    keys = positive_keys(train.users, train.items, train.num_items) if config.loss != "softmax" else np.empty(0)
    best_state, result = copy.deepcopy(model.ranking.state_dict()), RankingFitResult()
    best_recall, since_best = -math.inf, 0
    started = time.perf_counter()
    bar = tqdm(
        total=config.epochs,
        desc=f"{'rank' if valid is not None else 'rank refit'} {model.architecture}",
        unit="epoch",
        disable=not config.progress or not context.is_main,
        position=config.progress_position,
        leave=True,
    )
    try:
        with only_training(worker, trained):
            step = context.wrap(RankingStep(worker, config.loss, config.l2), trained)
            watch = watch_fit(bar, batches, config.max_seconds, started, context)
            for epoch in range(1, config.epochs + 1):
                epoch_started = time.perf_counter()
                if on_epoch is not None:
                    on_epoch()
                worker.train()
                log = ShardLog()
                epoch_batches = shard(_with_positives(batches.epoch(rng)), context.rank, context.world_size)
                loss = _epoch(
                    placed, step, epoch_batches, optimizer, config, keys, train.num_items, sampler, log, watch
                )
                if epoch == 1:
                    result.shard_batches, result.shard_examples, result.shard_digest = log.summary()
                result.losses.append(loss)
                result.epochs_run = epoch
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", best=f"{best_recall:.4f}@{result.best_epoch}")
                stop = False
                if valid is None:
                    result.best_epoch = epoch
                elif (epoch % config.eval_every == 0 or epoch == config.epochs) and context.is_main:
                    placed.publish("ranking")
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
                    stop = since_best >= config.patience
                result.epoch_seconds.append(time.perf_counter() - epoch_started)
                result.cut_short = watch.cut_short
                out_of_time = watch.out_of_time()
                stop, result.best_epoch, out_of_time = context.broadcast_object(
                    (stop or out_of_time, result.best_epoch, out_of_time)
                )
                if stop:
                    if out_of_time:
                        _LOGGER.info(
                            "%s ranking: stopping after %.0f s (max_seconds)", model.architecture, config.max_seconds
                        )
                    break
    finally:
        bar.close()
    if valid is not None and context.is_main:
        placed.restore(best_state, "ranking")
        result.best_val_recall = best_recall
    context.broadcast_module(worker.ranking)
    placed.publish("ranking")
    model.eval()
    result.seconds = time.perf_counter() - started
    label = f"{model.architecture} ranking"
    log_fit(label, "positives", _RECALL, result.best_val_recall, result, context, refit=valid is None)
    return result


def _with_positives(batches: Iterator[RankingBatch]) -> Iterator[RankingBatch]:
    """Batches with at least one positive (decided before sharding, so every rank steps equally often)."""
    return (batch for batch in batches if len(batch.positives.items))


def _epoch(
    placed: TrainingCopy,
    step: nn.Module,
    batches: Iterator[RankingBatch],
    optimizer: torch.optim.Optimizer,
    config: RankingConfig,
    keys: np.ndarray,
    num_items: int,
    rng: np.random.Generator,
    log: ShardLog,
    watch: EpochWatch,
) -> float:
    total, count = 0.0, 0
    for batch in batches:
        negatives = None
        if config.loss != "softmax":
            users = batch.row_users[batch.positives.rows.numpy()]
            count_per = config.negatives if config.loss == "sampled_softmax" else 1
            negatives = torch.from_numpy(sample_negatives(num_items, keys, users, count_per, rng))
        loss = step(placed.batch(batch), placed.batch(negatives))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"degenerate ranking loss {float(loss.detach())} training {placed.model.architecture}; "
                "lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
        log.add(batch.inputs[0], len(batch.positives.items))
        if watch.tick(count):
            break
    return total / max(count, 1)
