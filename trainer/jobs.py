"""Train several architectures on one split, one process per model when ``jobs`` > 1, and write checkpoints.

Small models gain nothing from several BLAS threads on a shared CPU (thread oversubscription made a
MovieLens MF step 25x slower under load), so each worker starts on ``threads`` threads and models train
side by side. The run owns ``jobs x threads`` cores: when fewer models are left than workers (the GCN
alone at the end), the running ones take the idle cores, re-reading a shared count of running workers
before every epoch (:class:`ThreadShare`).

Under ``torchrun`` every rank trains every model in turn, in its own process, with the run's
:class:`~trainer.distributed.DistributedContext`; rank 0 alone writes the checkpoints.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import multiprocessing
import multiprocessing.sharedctypes
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer import architecture
from trainer.checkpoint import save_checkpoint
from trainer.config import RankingConfig, TrainConfig
from trainer.data.splits import Split
from trainer.distributed import SINGLE, DistributedContext, state_digest
from trainer.experiment import train_and_evaluate
from trainer.models._base import HParam

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every model of a run.

    Attributes:
        seed: seeds validation carving, initialisation and shuffling.
        val_fraction: share of training ratings held out for early stopping.
        epochs: override every model's epoch budget (None = the tuned defaults).
        max_seconds: wall-time cap per model (None = none).
        threads: torch intra-op threads per model process.
        progress: show tqdm bars.
        device: where every fit steps (:func:`trainer.devices.resolve`'s answer).
    """

    seed: int = 0
    val_fraction: float = 0.05
    epochs: int | None = None
    max_seconds: float | None = None
    threads: int = 1
    progress: bool = True
    device: str = "cpu"


def threads_per_worker(cores: int, running: int) -> int:
    """Torch threads for each of ``running`` workers sharing ``cores`` cores (at least one each)."""
    return max(1, cores // max(1, running))


class ThreadShare:
    """Hands a run's cores out among the workers still training, through a counter in shared memory.

    A worker enters the share while it trains one model (the count goes up), calls :meth:`rebalance`
    before every epoch, and leaves when the model is done (the count goes down), so the last models
    running speed up as others finish.

    Args:
        cores: cores the whole run may use (``jobs x threads``).
        running: shared count of workers training now.
    """

    def __init__(self, cores: int, running: multiprocessing.sharedctypes.Synchronized) -> None:
        self.cores, self.running = cores, running

    def __enter__(self) -> ThreadShare:
        with self.running.get_lock():
            self.running.value += 1
        self.rebalance()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.running.get_lock():
            self.running.value -= 1

    def rebalance(self) -> None:
        """Set this process's torch threads to its share of the cores now."""
        threads = threads_per_worker(self.cores, self.running.value)
        if threads != torch.get_num_threads():
            _LOGGER.debug("%d workers running: %d threads", self.running.value, threads)
            torch.set_num_threads(threads)


_SHARE: ThreadShare | None = None


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The trainer's log lines, in the parent and in every worker process."""


PARENT_POLL_SECONDS = 1.0
"""How often a worker checks that the run's process is still there."""


def _exit_with_parent(parent: int) -> None:
    """End this worker once the process that started it is gone (its parent id changes).

    A ``kill`` of ``recsys-train`` (SIGTERM, or the OOM killer) ends the parent without a word to its
    pool: the workers went on training, at a full core each, until they finished (a GCN half an hour
    later) and wrote checkpoints nobody waits for. Ctrl-C reaches the whole process group and needs none
    of this.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    _LOGGER.error("the training run's process %d is gone: this worker stops too", parent)
    os._exit(1)


def _init_worker(cores: int, running: multiprocessing.sharedctypes.Synchronized, log_level: int) -> None:
    global _SHARE
    _SHARE = ThreadShare(cores, running)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="exit-with-parent", daemon=True).start()
    # A spawned worker starts with bare logging: without this its fits' summaries (best epoch, refit
    # length, test metrics) never reach the user.
    logging.basicConfig(level=log_level, format=LOG_FORMAT)


def run_models(
    architectures: Sequence[str],
    split: Split,
    out_dir: Path | None,
    options: RunOptions | None = None,
    *,
    jobs: int = 1,
    overrides: Mapping[str, Mapping[str, HParam]] | None = None,
    data: Mapping[str, str] | None = None,
    context: DistributedContext = SINGLE,
) -> dict[str, dict[str, float]]:
    """Train and evaluate each architecture; write ``out_dir/<arch>/checkpoint.pt`` when ``out_dir`` is set.

    Args:
        architectures: names to train, in table order.
        split: the data.
        out_dir: run folder, or None to skip checkpoints.
        options: shared settings.
        jobs: models trained at once, each in its own process (1 = in this process).
        overrides: per-architecture hyper-parameter overrides.
        data: provenance strings stored in each checkpoint.
        context: the data-parallel run this process is a rank of (models then train one after another in
            this process, ``jobs`` is ignored); rank 0 writes the checkpoints, other ranks return empty metrics.

    Returns:
        Test metrics per architecture, in the order given.
    """
    options = options or RunOptions()
    overrides = overrides or {}
    tasks = [
        (arch, split, out_dir, options, dict(overrides.get(arch, {})), dict(data or {}), position, context)
        for position, arch in enumerate(architectures)
    ]
    if jobs <= 1 or len(tasks) == 1 or context.enabled:
        results = [_train_one(*task) for task in tasks]
    else:
        workers = min(jobs, len(tasks))
        spawn = multiprocessing.get_context("spawn")
        running = spawn.Value("i", 0)
        with concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=spawn,
            initializer=_init_worker,
            initargs=(workers * options.threads, running, logging.getLogger().getEffectiveLevel()),
        ) as pool:
            results = list(pool.map(_train_one, *zip(*tasks, strict=True)))
    return dict(zip(architectures, results, strict=True))


def configs_for(
    name: str, options: RunOptions, position: int = 0, num_ratings: int = 0
) -> tuple[TrainConfig, RankingConfig]:
    """The declared settings of ``name`` for ``num_ratings`` training ratings, with the run's seed and budget."""
    declaration = architecture.get(name)
    shared = {
        "seed": options.seed,
        "progress": options.progress,
        "progress_position": position,
        "max_seconds": options.max_seconds,
        "device": options.device,
    }
    rating = dataclasses.replace(declaration.training_for(num_ratings), **shared)
    ranking = dataclasses.replace(declaration.ranking_for(num_ratings), **shared)
    if options.epochs is not None:
        rating = dataclasses.replace(rating, epochs=options.epochs, patience=min(rating.patience, options.epochs))
        ranking = dataclasses.replace(
            ranking, epochs=options.epochs, eval_every=min(ranking.eval_every, options.epochs)
        )
    return rating, ranking


def _train_one(
    name: str,
    split: Split,
    out_dir: Path | None,
    options: RunOptions,
    overrides: dict[str, HParam],
    data: dict[str, str],
    position: int,
    context: DistributedContext = SINGLE,
) -> dict[str, float]:
    torch.set_num_threads(options.threads)
    config, ranking_config = configs_for(name, options, position, len(split.train))
    share = _SHARE
    train = functools.partial(
        train_and_evaluate,
        name,
        split,
        overrides=overrides,
        config=config,
        ranking_config=ranking_config,
        val_fraction=options.val_fraction,
        seed=options.seed,
        progress=options.progress,
        context=context,
    )
    if share is None:
        trained = train()
    else:
        with share:
            trained = train(on_epoch=share.rebalance)
    if context.enabled:
        _LOGGER.info(
            "%s: rank %d of %d final weights %s", name, context.rank, context.world_size, state_digest(trained.model)
        )
    if out_dir is not None and context.is_main:
        path = save_checkpoint(
            Path(out_dir) / name / "checkpoint.pt",
            trained.model,
            split.train,
            metrics=trained.metrics,
            data={**data, "split": split.name, "seed": str(options.seed)},
        )
        _LOGGER.info("wrote %s", path)
    return trained.metrics
