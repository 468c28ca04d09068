"""The models behind one surface (see docs/interfaces.md, section 2), rebuilt from their declarations.

``build_model`` rebuilds any registered architecture from a checkpoint's name, hyper-parameters and
training histories. Architecture modules are imported on first use (``trainer.architecture.get``), so
code that only exports plain-torch models does not import torch_geometric.
"""

from __future__ import annotations

from collections.abc import Mapping

from trainer import architecture
from trainer.data.interactions import UserHistories
from trainer.models._base import HParam, RatingModel


def model_class(name: str) -> type[RatingModel]:
    """The model class of a registered architecture.

    Raises:
        ValueError: unknown architecture; the message lists the known ones.
    """
    return architecture.get(name).model_class


def build_model(name: str, hparams: Mapping[str, HParam], histories: UserHistories) -> RatingModel:
    """Construct an untrained model of architecture ``name`` from its hyper-parameters.

    Args:
        name: a registered architecture name.
        hparams: constructor keyword arguments (a model's ``hparams``).
        histories: the training histories (the GCN builds its graph from them).

    Returns:
        The model, in training mode.

    Raises:
        ValueError: unknown architecture or bad hyper-parameters.
    """
    cls = model_class(name)
    try:
        return cls.from_data(dict(hparams), histories)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for {name!r}: {error}") from error


__all__ = ["HParam", "RatingModel", "build_model", "model_class"]
