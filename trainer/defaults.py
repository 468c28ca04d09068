"""Default hyper-parameters and training settings per architecture.

Tuned on MovieLens 100K with validation carved from u1.base (never u1.test); see bench/quality.py.
"""

from __future__ import annotations

from trainer.models._base import HParam
from trainer.training import TrainConfig

MODEL_DEFAULTS: dict[str, dict[str, HParam]] = {
    "mf": {"dim": 64},
    "dense": {"dim": 64, "hidden_dim": 128, "num_layers": 2, "dropout": 0.2},
    "lstm": {"dim": 64, "hidden_dim": 128, "num_layers": 1, "dropout": 0.2, "max_history_length": 200},
    "gcn": {"hidden_dim": 500, "dim": 75, "num_basis": 2, "dropout": 0.7},
}

TRAIN_DEFAULTS: dict[str, TrainConfig] = {
    "mf": TrainConfig(epochs=60, batch_size=1024, learning_rate=3e-3, l2=0.05, patience=4),
    "dense": TrainConfig(epochs=60, batch_size=1024, learning_rate=2e-3, l2=0.02, weight_decay=1e-4, patience=4),
    "lstm": TrainConfig(epochs=60, batch_size=64, learning_rate=2e-3, l2=0.02, weight_decay=1e-4, patience=5),
    "gcn": TrainConfig(epochs=1000, batch_size=1 << 20, learning_rate=1e-2, patience=50),
}
