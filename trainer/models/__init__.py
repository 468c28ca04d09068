"""The four rating models behind one surface (see docs/interfaces.md, section 2).

``build_model`` rebuilds any of them from a checkpoint's architecture, hyper-parameters and training
history. The GCN class is imported lazily, so code that only serves or exports plain-torch models does
not import torch_geometric.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import numpy as np
import torch

from trainer.models._base import HParam, RatingModel
from trainer.models.dense import DenseRecommender
from trainer.models.lstm import LSTMRecommender
from trainer.models.mf import MatrixFactorization

ARCHITECTURES: tuple[str, ...] = ("mf", "dense", "lstm", "gcn")

_CLASSES: dict[str, tuple[str, str]] = {
    "mf": ("trainer.models.mf", "MatrixFactorization"),
    "dense": ("trainer.models.dense", "DenseRecommender"),
    "lstm": ("trainer.models.lstm", "LSTMRecommender"),
    "gcn": ("trainer.models.gcn", "GraphRecommender"),
}


def model_class(architecture: str) -> type[RatingModel]:
    """The model class for an architecture name.

    Raises:
        ValueError: unknown architecture; the message lists the known ones.
    """
    if architecture not in _CLASSES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    module, name = _CLASSES[architecture]
    return getattr(importlib.import_module(module), name)


def build_model(
    architecture: str,
    hparams: Mapping[str, HParam],
    *,
    history_offsets: np.ndarray | torch.Tensor | None = None,
    history_items: np.ndarray | torch.Tensor | None = None,
    history_ratings: np.ndarray | torch.Tensor | None = None,
) -> RatingModel:
    """Construct an untrained model of ``architecture`` from its hyper-parameters.

    Args:
        architecture: ``mf``, ``dense``, ``lstm`` or ``gcn``.
        hparams: constructor keyword arguments (a model's ``hparams``).
        history_offsets: CSR training histories; only the GCN uses them (its graph).
        history_items: item index of each training rating.
        history_ratings: rating of each training rating, in stars.

    Returns:
        The model, in training mode.

    Raises:
        ValueError: unknown architecture or bad hyper-parameters.
    """
    cls = model_class(architecture)
    kwargs = dict(hparams)
    if architecture == "gcn":
        kwargs.update(history_offsets=history_offsets, history_items=history_items, history_ratings=history_ratings)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for {architecture!r}: {error}") from error


__all__ = [
    "ARCHITECTURES",
    "DenseRecommender",
    "LSTMRecommender",
    "MatrixFactorization",
    "RatingModel",
    "build_model",
    "model_class",
]
