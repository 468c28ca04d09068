"""Train several architectures on one split, one process per model when ``jobs`` > 1, and write checkpoints.

Small models gain nothing from several BLAS threads on a shared CPU (thread oversubscription made a
MovieLens MF step 25x slower under load), so each worker uses one thread and models train side by side.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer import architecture
from trainer.checkpoint import save_checkpoint
from trainer.config import RankingConfig, TrainConfig
from trainer.data.splits import Split
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
    """

    seed: int = 0
    val_fraction: float = 0.05
    epochs: int | None = None
    max_seconds: float | None = None
    threads: int = 1
    progress: bool = True


def run_models(
    architectures: Sequence[str],
    split: Split,
    out_dir: Path | None,
    options: RunOptions | None = None,
    *,
    jobs: int = 1,
    overrides: Mapping[str, Mapping[str, HParam]] | None = None,
    data: Mapping[str, str] | None = None,
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

    Returns:
        Test metrics per architecture, in the order given.
    """
    options = options or RunOptions()
    overrides = overrides or {}
    tasks = [
        (arch, split, out_dir, options, dict(overrides.get(arch, {})), dict(data or {}), position)
        for position, arch in enumerate(architectures)
    ]
    if jobs <= 1 or len(tasks) == 1:
        results = [_train_one(*task) for task in tasks]
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=context) as pool:
            results = list(pool.map(_train_one, *zip(*tasks, strict=True)))
    return dict(zip(architectures, results, strict=True))


def configs_for(name: str, options: RunOptions, position: int = 0) -> tuple[TrainConfig, RankingConfig]:
    """The declared rating and ranking settings of ``name`` with the run's seed, budget and progress display."""
    declaration = architecture.get(name)
    shared = {
        "seed": options.seed,
        "progress": options.progress,
        "progress_position": position,
        "max_seconds": options.max_seconds,
    }
    rating = dataclasses.replace(declaration.training, **shared)
    ranking = dataclasses.replace(declaration.ranking, **shared)
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
) -> dict[str, float]:
    torch.set_num_threads(options.threads)
    config, ranking_config = configs_for(name, options, position)
    trained = train_and_evaluate(
        name,
        split,
        overrides=overrides,
        config=config,
        ranking_config=ranking_config,
        val_fraction=options.val_fraction,
        seed=options.seed,
        progress=options.progress,
    )
    if out_dir is not None:
        path = save_checkpoint(
            Path(out_dir) / name / "checkpoint.pt",
            trained.model,
            split.train,
            metrics=trained.metrics,
            data={**data, "split": split.name, "seed": str(options.seed)},
        )
        _LOGGER.info("wrote %s", path)
    return trained.metrics
