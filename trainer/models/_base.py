"""The surface every rating model shares: hyper-parameters, repr, clipping (plain torch, no torch_geometric)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

HParam = int | float | str | bool


class RatingModel(nn.Module):
    """Base class holding the constructor keyword arguments and the rating scale.

    Subclasses call :meth:`_remember` with their constructor arguments so that
    ``type(model)(**model.hparams)`` rebuilds an equivalent, untrained model and the checkpoint can
    store the arguments as plain numbers and strings.
    """

    architecture: ClassVar[str] = ""

    def _remember(self, **hparams: HParam) -> None:
        for key, value in hparams.items():
            if not isinstance(value, int | float | str | bool):
                raise TypeError(f"hyper-parameter {key}={value!r} must be an int, float, str or bool")
        self._hparams: dict[str, HParam] = dict(hparams)
        rating_min, rating_max = float(hparams["rating_min"]), float(hparams["rating_max"])
        if not rating_min < rating_max:
            raise ValueError(f"rating_min ({rating_min}) must be below rating_max ({rating_max})")
        self.rating_min = rating_min
        self.rating_max = rating_max

    @property
    def hparams(self) -> dict[str, HParam]:
        """Constructor keyword arguments: ``type(self)(**self.hparams)`` rebuilds the model."""
        return dict(self._hparams)

    def clip(self, rating: torch.Tensor) -> torch.Tensor:
        """Clamp raw predictions to the rating scale the model was trained on."""
        return rating.clamp(self.rating_min, self.rating_max)

    def __repr__(self) -> str:
        params = dict(self._hparams)
        positional = [str(params.pop("num_users", "")), str(params.pop("num_items", ""))]
        positional = [p for p in positional if p]
        shown = [f"{k}={v!r}" for k, v in params.items() if k in self._repr_keys()]
        return f"{type(self).__name__}({', '.join(positional + shown)})"

    def _repr_keys(self) -> tuple[str, ...]:
        """Hyper-parameters worth showing in ``repr`` (the shape-defining ones)."""
        return ("dim",)

    def extra_hparams(self) -> dict[str, Any]:
        """Non-scalar constructor inputs that are not hyper-parameters (the GCN's graph); none by default."""
        return {}


class PairRatingModel(RatingModel):
    """A model scored from (user index, item index) with factor and bias tables: MF and dense.

    Subclasses set ``num_users`` and ``num_items`` and name their four tables in :meth:`_tables`; this
    class supplies the clipped ``predict`` and the training penalty.
    """

    num_users: int
    num_items: int

    def _tables(self) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        """(user vectors, item vectors, user biases, item biases)."""
        raise NotImplementedError

    def penalty(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the vectors and biases a batch touches: frequency-weighted L2 (Koren, 2009)."""
        users, items, user_bias, item_bias = self._tables()
        return (
            users.weight[user].pow(2).sum(dim=-1)
            + items.weight[item].pow(2).sum(dim=-1)
            + user_bias.weight[user, 0].pow(2)
            + item_bias.weight[item, 0].pow(2)
        ).mean()

    @torch.no_grad()
    def predict(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating clipped to the rating scale: int64 [B], int64 [B] -> float32 [B]."""
        check_index(user, self.num_users, "user")
        check_index(item, self.num_items, "item")
        return self.clip(self(user, item))


def check_index(index: torch.Tensor, size: int, name: str) -> None:
    """Raise IndexError when an index tensor points outside an embedding table.

    Args:
        index: int64 indices of any shape.
        size: number of rows of the table.
        name: what the index counts ("user", "item"), for the message.

    Raises:
        IndexError: an index is negative or >= size.
    """
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
        raise IndexError(
            f"{name} index out of range: got [{int(index.min())}, {int(index.max())}], model has {size} {name}s"
        )
