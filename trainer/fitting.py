"""The rating head's loop: AdamW on squared error, L2 on touched rows, early stopping on validation RMSE."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from trainer import config as config_module
from trainer.config import TrainConfig
from trainer.data.interactions import Interactions, UserHistories
from trainer.devices import TrainingCopy
from trainer.distributed import SINGLE, DistributedContext, ShardLog, only_training, shard, shard_batch_size
from trainer.evaluation import rating_errors
from trainer.models import RatingModel
from trainer.progress import EpochWatch, watch_fit, whole_epoch_mean

_LOGGER = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What training did.

    Attributes:
        best_epoch: 1-based epoch whose weights were kept.
        best_val_rmse: validation RMSE of those weights, in stars.
        epochs_run: epochs actually run.
        seconds: wall time of the fit.
        losses: mean training loss per epoch.
        val_rmses: validation RMSE per epoch (NaN on ranks other than 0, which do not validate).
        shard_batches: batches this rank stepped on in the first epoch.
        shard_examples: training ratings in those batches.
        shard_digest: hash of those batches' first inputs (ranks of one run differ).
        epoch_seconds: wall time of each epoch, its validation included.
        cut_short: the last epoch ended early at ``max_seconds`` (its time is not an epoch's cost).
    """

    best_epoch: int
    best_val_rmse: float
    epochs_run: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    val_rmses: list[float] = field(default_factory=list)
    shard_batches: int = 0
    shard_examples: int = 0
    shard_digest: str = ""
    epoch_seconds: list[float] = field(default_factory=list)
    cut_short: bool = False

    def seconds_per_epoch(self) -> float:
        """Mean wall time of the epochs that ran whole (NaN when none did)."""
        return whole_epoch_mean(self.epoch_seconds, self.cut_short)


class RatingStep(nn.Module):
    """One batch's rating loss (plus ``l2`` times the model's penalty): what DistributedDataParallel wraps.

    Args:
        model: the model being fitted.
        l2: weight of ``model.penalty``.
    """

    def __init__(self, model: RatingModel, l2: float) -> None:
        super().__init__()
        self.model, self.l2 = model, l2

    def forward(self, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, mean squared error in stars^2) of one batch."""
        loss, mse = self.model.rating_loss(inputs, target)
        if self.l2:
            loss = loss + self.l2 * self.model.penalty(*inputs)
        return loss, mse


def fit(
    model: RatingModel,
    train: Interactions,
    valid: Interactions | None,
    config: TrainConfig,
    *,
    context: DistributedContext = SINGLE,
    on_epoch: Callable[[], None] | None = None,
) -> FitResult:
    """Fit ``model`` on ``train``, stopping early on ``valid`` RMSE; leaves the best weights loaded.

    Without ``valid`` it runs exactly ``config.epochs`` epochs and keeps the last weights (a refit).

    The LSTM reads context histories built from ``train`` only and is validated on histories of
    ``train``; the GCN must already hold the graph of ``train``.

    Args:
        model: a freshly built model.
        train: ratings to fit.
        valid: held-out ratings from the training data, for early stopping (never the test split), or None.
        config: optimisation settings.
        context: the data-parallel run this process belongs to: each rank steps on its shard of every
            epoch's batches (``world_size`` times smaller ones), rank 0 validates and decides when to stop,
            and every rank ends with rank 0's best weights.
        on_epoch: called before every epoch (the jobs runner rebalances threads there).

    Returns:
        The fit's history; ``model`` is left in eval mode with the best epoch's weights.

    Raises:
        FloatingPointError: the loss became NaN or infinite (lower the learning rate).
        ValueError: empty training or validation data.
    """
    if not len(train) or (valid is not None and not len(valid)):
        raise ValueError(f"need training and validation ratings, got {len(train)} and {len(valid or ())}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    config = config.for_ratings(len(train))
    batches = model.rating_batches(train, _per_rank(config, context))
    placed = TrainingCopy(model, config.device)
    worker = placed.worker
    trained = worker.rating_parameters()
    # Large tables: sparse gradients and lazy Adam, so a step costs its batch's rows, not the table's.
    row_tables = worker.row_tables() if len(train) >= config_module.LARGE_DATA_RATINGS and not context.enabled else []
    optimizer = adamw(worker, trained, config.learning_rate, config.weight_decay, [t.weight for t in row_tables])
    histories = train.histories()
    best_state, best_rmse, best_epoch = copy.deepcopy(model.state_dict()), math.inf, 0
    result = FitResult(0, math.inf, 0, 0.0)
    started = time.perf_counter()
    validating = valid is not None and context.is_main
    bar = tqdm(
        total=config.epochs,
        desc=f"{'train' if valid is not None else 'refit'} {model.architecture}",
        unit="epoch",
        disable=not config.progress or not context.is_main,
        position=config.progress_position,
        leave=True,
    )
    try:
        with only_training(worker, trained), sparse_gradients(row_tables):
            step = context.wrap(RatingStep(worker, config.l2), trained)
            watch = watch_fit(bar, batches, config.max_seconds, started, context)
            for epoch in range(1, config.epochs + 1):
                epoch_started = time.perf_counter()
                if on_epoch is not None:
                    on_epoch()
                log = ShardLog()
                loss = _train_epoch(placed, step, batches, optimizer, context, rng, log, watch)
                if epoch == 1:
                    result.shard_batches, result.shard_examples, result.shard_digest = log.summary()
                val_rmse = _validate(placed, valid, histories) if validating else math.nan
                if val_rmse < best_rmse:
                    best_state, best_rmse, best_epoch = copy.deepcopy(model.state_dict()), val_rmse, epoch
                if valid is None:
                    best_epoch = epoch  # a refit keeps its last weights
                result.losses.append(loss)
                result.val_rmses.append(val_rmse)
                result.epochs_run = epoch
                bar.update(1)
                if valid is None:
                    bar.set_postfix(loss=f"{loss:.4f}")
                else:
                    bar.set_postfix(
                        loss=f"{loss:.4f}", val_rmse=f"{val_rmse:.4f}", best=f"{best_rmse:.4f}@{best_epoch}"
                    )
                _LOGGER.debug("%s epoch %d loss %.4f val_rmse %.4f", model.architecture, epoch, loss, val_rmse)
                result.epoch_seconds.append(time.perf_counter() - epoch_started)
                result.cut_short = watch.cut_short
                out_of_time = watch.out_of_time()
                stop = (valid is not None and epoch - best_epoch >= config.patience) or out_of_time
                stop, best_epoch, out_of_time = context.broadcast_object((stop, best_epoch, out_of_time))
                if stop:
                    if out_of_time:
                        _LOGGER.info("%s: stopping after %.0f s (max_seconds)", model.architecture, config.max_seconds)
                    break
                for group in optimizer.param_groups:
                    group["lr"] *= config.lr_decay
    finally:
        bar.close()
    if validating:
        placed.restore(best_state)
    context.broadcast_module(worker)
    placed.publish()
    model.eval()
    result.best_epoch, result.best_val_rmse = best_epoch, best_rmse if validating else math.nan
    result.seconds = time.perf_counter() - started
    log_fit(model.architecture, "ratings", "RMSE", result.best_val_rmse, result, context, refit=valid is None)
    return result


def log_fit(
    label: str, examples: str, metric: str, best: float, result: Any, context: DistributedContext, *, refit: bool
) -> None:
    """One log line for a finished fit of either head (and one per rank under torch.distributed).

    Args:
        label: what was fitted, e.g. ``mf`` or ``mf ranking``.
        examples: what a shard counts, e.g. ``ratings`` or ``positives``.
        metric: the validation metric's name.
        best: its best value.
        result: the fit's result (``FitResult`` or ``RankingFitResult``).
        context: the distributed context.
        refit: whether this fit ran without validation.
    """
    if context.enabled:
        _LOGGER.info(
            "%s: rank %d of %d stepped on %d %s in %d batches per epoch (shard %s)",
            label,
            context.rank,
            context.world_size,
            result.shard_examples,
            examples,
            result.shard_batches,
            result.shard_digest,
        )
    if refit:
        _LOGGER.info("%s: refit %d epochs (%.1f s)", label, result.epochs_run, result.seconds)
    elif context.is_main:
        _LOGGER.info(
            "%s: best validation %s %.4f at epoch %d of %d (%.1f s)",
            label,
            metric,
            best,
            result.best_epoch,
            result.epochs_run,
            result.seconds,
        )


def _per_rank(config: TrainConfig, context: DistributedContext) -> TrainConfig:
    """``config`` with the batch each rank steps on: all ranks' batches together make one configured batch."""
    if not context.enabled:
        return config
    return dataclasses.replace(config, batch_size=shard_batch_size(config.batch_size, context.world_size))


def _validate(placed: TrainingCopy, valid: Interactions, histories: UserHistories) -> float:
    """Validation RMSE of the worker's current weights, read on the CPU model."""
    placed.publish()
    placed.model.eval()
    predicted = placed.model.rate(valid.users, valid.items, histories).numpy()
    return rating_errors(predicted, valid.ratings, valid.rating_scale)["rmse"]


@contextlib.contextmanager
def sparse_gradients(tables: list[nn.Embedding]) -> Iterator[None]:
    """Give ``tables`` sparse gradients (``nn.Embedding.sparse``) for the duration, then restore them.

    Used from ``LARGE_DATA_RATINGS`` training ratings on: dense Adam updates every row of every table each
    step (MovieLens 25M's shape, 222K users and items x 64: ~130 ms per MF step on one core, over 45 minutes
    an epoch), lazy Adam (``torch.optim.SparseAdam``) only the rows a batch read. It is a different
    optimiser, so smaller data keeps dense Adam; under torch.distributed tables stay dense, as DDP buckets
    dense gradients.
    """
    before = [table.sparse for table in tables]
    for table in tables:
        table.sparse = True
    try:
        yield
    finally:
        for table, was in zip(tables, before, strict=True):
            table.sparse = was


class JointOptimizer:
    """AdamW over the dense parameters and lazy Adam over the sparse-gradient tables, stepped as one.

    Args:
        optimizers: the optimisers, each over its own parameters.
    """

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """Every optimiser's groups (the loop decays their learning rates in place)."""
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every optimiser's gradients."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Step every optimiser."""
        for optimizer in self.optimizers:
            optimizer.step()


def adamw(
    model: torch.nn.Module,
    parameters: list[torch.nn.Parameter],
    learning_rate: float,
    weight_decay: float,
    sparse: list[torch.nn.Parameter] | None = None,
) -> torch.optim.Optimizer | JointOptimizer:
    """AdamW over ``parameters`` with decay on matrices of dense layers only; embeddings and biases are left to L2.

    Parameters also in ``sparse`` (tables with sparse gradients) get ``torch.optim.SparseAdam`` instead.
    """
    lazy = {id(p) for p in sparse or ()}
    wanted = {id(p) for p in parameters} - lazy
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if id(param) not in wanted:
            continue
        is_table = isinstance(_owner(model, name), torch.nn.Embedding)
        (decay if param.dim() > 1 and not is_table else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizers: list[torch.optim.Optimizer] = []
    if decay or no_decay:
        optimizers.append(torch.optim.AdamW([g for g in groups if g["params"]], lr=learning_rate))
    tables = [p for p in parameters if id(p) in lazy]
    if tables:
        optimizers.append(torch.optim.SparseAdam(tables, lr=learning_rate))
    return optimizers[0] if len(optimizers) == 1 else JointOptimizer(*optimizers)


def _owner(model: torch.nn.Module, parameter_name: str) -> torch.nn.Module:
    return model.get_submodule(parameter_name.rpartition(".")[0])


def _train_epoch(
    placed: TrainingCopy,
    step: nn.Module,
    batches: Any,
    optimizer: torch.optim.Optimizer,
    context: DistributedContext,
    rng: np.random.Generator,
    log: ShardLog,
    watch: EpochWatch,
) -> float:
    placed.worker.train()
    total, count = 0.0, 0
    for done, batch in enumerate(shard(batches.epoch(rng), context.rank, context.world_size), 1):
        inputs, target = placed.batch(batch)
        loss, mse = step(inputs, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"degenerate loss {float(loss.detach())} training {placed.model.architecture}; lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(mse.detach()) * len(target)
        count += len(target)
        log.add(inputs[0], len(target))
        if watch.tick(done):
            break
    return total / max(count, 1)
