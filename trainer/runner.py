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

from trainer.checkpoint import save_checkpoint
from trainer.data.splits import Split
from trainer.defaults import TRAIN_DEFAULTS
from trainer.models._base import HParam
from trainer.pipeline import train_and_evaluate
from trainer.training import TrainConfig

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


def config_for(architecture: str, options: RunOptions, position: int = 0) -> TrainConfig:
    """The tuned training settings of ``architecture`` with the run's seed, budget and progress display."""
    config = dataclasses.replace(
        TRAIN_DEFAULTS[architecture],
        seed=options.seed,
        progress=options.progress,
        progress_position=position,
        max_seconds=options.max_seconds,
    )
    if options.epochs is not None:
        config = dataclasses.replace(config, epochs=options.epochs, patience=min(config.patience, options.epochs))
    return config


def _train_one(
    architecture: str,
    split: Split,
    out_dir: Path | None,
    options: RunOptions,
    overrides: dict[str, HParam],
    data: dict[str, str],
    position: int,
) -> dict[str, float]:
    torch.set_num_threads(options.threads)
    trained = train_and_evaluate(
        architecture,
        split,
        overrides=overrides,
        config=config_for(architecture, options, position),
        val_fraction=options.val_fraction,
        seed=options.seed,
        progress=options.progress,
    )
    if out_dir is not None:
        path = save_checkpoint(
            Path(out_dir) / architecture / "checkpoint.pt",
            trained.model,
            split.train,
            metrics=trained.metrics,
            data={**data, "split": split.name, "seed": str(options.seed)},
        )
        _LOGGER.info("wrote %s", path)
    return trained.metrics
