"""Small trained checkpoints in seconds, for other stages' tests (exporter, server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from trainer.checkpoint import save_checkpoint
from trainer.data.splits import random_split
from trainer.data.synthetic import SyntheticConfig, synthetic_interactions
from trainer.defaults import TRAIN_DEFAULTS
from trainer.models import ARCHITECTURES
from trainer.models._base import HParam
from trainer.pipeline import train_and_evaluate

TINY_DATA = SyntheticConfig(num_users=200, num_items=150, mean_ratings_per_user=30, min_ratings_per_user=5)
TINY_MODELS: dict[str, dict[str, HParam]] = {
    "mf": {"dim": 16},
    "dense": {"dim": 16, "hidden_dim": 32},
    "lstm": {"dim": 16, "hidden_dim": 32, "max_history_length": 50},
    "gcn": {"hidden_dim": 50, "dim": 16},
}


def train_tiny_checkpoint(architecture: str, out_dir: Path, seed: int = 0) -> Path:
    """Train a small model on tiny synthetic data (~200 users, 150 items) and write its checkpoint.

    A few epochs, a few seconds on CPU: the model is real (it beats the global mean) but not tuned.

    Args:
        architecture: ``mf``, ``dense``, ``lstm`` or ``gcn``.
        out_dir: run folder; the checkpoint goes to ``out_dir/<architecture>/checkpoint.pt``.
        seed: seeds the data, the split and training.

    Returns:
        The checkpoint path.

    Raises:
        ValueError: unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    data = synthetic_interactions(dataclasses.replace(TINY_DATA, seed=seed))
    split = random_split(data, 0.1, seed)
    config = dataclasses.replace(
        TRAIN_DEFAULTS[architecture],
        epochs=8,
        patience=8,
        batch_size=32 if architecture == "lstm" else 256,
        learning_rate=1e-2,
        seed=seed,
        progress=False,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: extra threads only add overhead, and test machines are shared
    try:
        trained = train_and_evaluate(
            architecture, split, overrides=TINY_MODELS[architecture], config=config, val_fraction=0.1, seed=seed
        )
    finally:
        torch.set_num_threads(threads)
    return save_checkpoint(
        Path(out_dir) / architecture / "checkpoint.pt",
        trained.model,
        split.train,
        metrics=trained.metrics,
        data={"source": "synthetic-tiny", "split": split.name, "seed": str(seed)},
    )
