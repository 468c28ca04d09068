"""Small trained checkpoints in seconds, for other stages' tests (exporter, server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from trainer import architecture
from trainer.checkpoint import save_checkpoint
from trainer.data.splits import random_split
from trainer.data.synthetic import SyntheticConfig, synthetic_interactions
from trainer.experiment import train_and_evaluate

TINY_DATA = SyntheticConfig(num_users=200, num_items=150, mean_ratings_per_user=30, min_ratings_per_user=5)


def train_tiny_checkpoint(name: str, out_dir: Path, seed: int = 0) -> Path:
    """Train a small model on tiny synthetic data (~200 users, 150 items) and write its checkpoint.

    A few epochs, a few seconds on CPU: the model is real (it beats the global mean) but not tuned.

    Args:
        name: a registered architecture; its declaration's ``tiny`` hyper-parameters are used.
        out_dir: run folder; the checkpoint goes to ``out_dir/<architecture>/checkpoint.pt``.
        seed: seeds the data, the split and training.

    Returns:
        The checkpoint path.

    Raises:
        ValueError: unknown architecture.
    """
    declaration = architecture.get(name)
    data = synthetic_interactions(dataclasses.replace(TINY_DATA, seed=seed))
    split = random_split(data, 0.1, seed)
    config = dataclasses.replace(
        declaration.training,
        epochs=8,
        patience=8,
        batch_size=min(declaration.training.batch_size, 256),
        learning_rate=1e-2,
        seed=seed,
        progress=False,
    )
    ranking_config = dataclasses.replace(
        declaration.ranking, epochs=4, eval_every=2, batch_size=64, learning_rate=1e-2, seed=seed, progress=False
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: extra threads only add overhead, and test machines are shared
    try:
        trained = train_and_evaluate(
            name,
            split,
            overrides=dict(declaration.tiny),
            config=config,
            ranking_config=ranking_config,
            val_fraction=0.1,
            seed=seed,
        )
    finally:
        torch.set_num_threads(threads)
    return save_checkpoint(
        Path(out_dir) / name / "checkpoint.pt",
        trained.model,
        split.train,
        metrics=trained.metrics,
        data={"source": "synthetic-tiny", "split": split.name, "seed": str(seed)},
    )
