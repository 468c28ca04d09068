"""The surface every model shares: hyper-parameters, repr, clipping, and the hooks the trainer and exporter call.

Plain torch, no torch_geometric. A model has a rating head (``predict``: stars, trained on squared error)
and a ranking head in its ``ranking`` submodule (``rank``: scores over the catalogue, trained on the
implicit signal), each fitted by its own loop (``trainer.fitting``, ``trainer.ranking_fit``), which only
call the hooks below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions, UserHistories
from trainer.losses import Towers
from trainer.minibatches import PairBatches, RankingBatch, UserRankingBatches

HParam = int | float | str | bool


def table_rows(table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
    """``table.weight[index]``; with a sparse gradient while the table is in sparse mode (``table.sparse``)."""
    return F.embedding(index, table.weight, sparse=True) if table.sparse else table.weight[index]


def bias_rows(table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
    """``table.weight[index, 0]`` of a one-column table, sparse like :func:`table_rows`."""
    return F.embedding(index, table.weight, sparse=True)[:, 0] if table.sparse else table.weight[index, 0]


class RatingModel(nn.Module):
    """Base class holding the constructor keyword arguments, the rating scale and the training hooks.

    Subclasses call :meth:`_remember` with their constructor arguments so that
    ``type(model)(**model.hparams)`` rebuilds an equivalent, untrained model and the checkpoint can
    store the arguments as plain numbers and strings. They put their ranking head's parameters under
    ``self.ranking`` so that each loop optimises its own head only.
    """

    architecture: ClassVar[str] = ""
    ranking: nn.Module

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

    @classmethod
    def data_hparams(cls, train: Interactions) -> dict[str, HParam]:
        """The hyper-parameters the data decides: sizes, mean and rating scale."""
        return {
            "num_users": train.num_users,
            "num_items": train.num_items,
            "global_mean": train.global_mean(),
            "rating_min": train.rating_scale[0],
            "rating_max": train.rating_scale[1],
        }

    @classmethod
    def from_data(cls, hparams: dict[str, HParam], histories: UserHistories) -> RatingModel:
        """Build the model; ``histories`` are the training histories (the GCN's graph), unused by default."""
        del histories
        return cls(**hparams)

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

    def use_histories(self, histories: UserHistories) -> None:
        """Adopt the training histories inference reads (the GCN's graph); nothing by default."""
        del histories

    def graph_tensors(self) -> list[torch.Tensor]:
        """Tensors the steps read that are plain attributes, not parameters or buffers (the GCN's graphs).

        A copy of the model for another device shares them, moved, instead of deep-copying them
        (:class:`trainer.devices.TrainingCopy`): sparse CSR tensors cannot be deep-copied. None by default.
        """
        return []

    # Rating head -------------------------------------------------------------------------------

    def rating_parameters(self) -> list[nn.Parameter]:
        """Parameters the rating loop optimises: all but the ranking head's."""
        ranking = {id(p) for p in self.ranking.parameters()}
        return [p for p in self.parameters() if id(p) not in ranking]

    def row_tables(self) -> list[nn.Embedding]:
        """Rating-head tables a batch reads only some rows of, through :func:`table_rows` (none by default).

        On large data the rating loop switches them to sparse gradients and lazy Adam (``trainer.fitting``).
        """
        return []

    def rating_batches(self, train: Interactions, config: TrainConfig) -> Any:
        """Batches ``((inputs...), target ratings)`` for the rating loop; (user, item) pairs by default."""
        return PairBatches(train, config.batch_size)

    def rating_loss(self, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, squared error) of one batch; the squared error of ``forward`` by default."""
        mse = torch.nn.functional.mse_loss(self(*inputs), target)
        return mse, mse

    def penalty(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Squared norms of the rating parameters a batch touches, weighted by ``TrainConfig.l2``."""
        raise NotImplementedError

    def rate(self, users: np.ndarray, items: np.ndarray, histories: UserHistories) -> torch.Tensor:
        """Predicted ratings of (user, item) rows, clipped, float32 [n]; ``histories`` unused by default."""
        del histories
        user = torch.from_numpy(np.asarray(users, dtype=np.int64))
        item = torch.from_numpy(np.asarray(items, dtype=np.int64))
        return self.predict(user, item)

    # Ranking head ------------------------------------------------------------------------------

    def ranking_batches(self, train: Interactions, config: RankingConfig) -> Any:
        """Batches of :class:`RankingBatch` for the ranking loop; users with their rated items by default."""
        return UserRankingBatches(train, config.batch_size, config.relevant_rating, config.low_rating_weight)

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        """Queries, item table and penalty of one ranking batch's ``inputs``."""
        raise NotImplementedError

    def rank(self, users: np.ndarray, histories: UserHistories) -> torch.Tensor:
        """Ranking scores of every item for some users: int64 [B] -> float32 [B, num_items]."""
        raise NotImplementedError

    def serving_module(self, histories: UserHistories) -> nn.Module:
        """A frozen copy for export, with one method per signature; ``histories`` are the stored ones."""
        raise NotImplementedError


@contextlib.contextmanager
def independent_random_stream() -> Iterator[None]:
    """Draw from torch's global generator inside the block, then put its state back.

    Ranking heads are created and initialised inside it, so the rating head sees exactly the random
    numbers (initialisation, dropout) it saw before ranking heads existed: its RMSE, tuned against the
    bars, is the same figure for the same seed.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, ())))  # a stream of its own, not a copy of the rating head's
        yield


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


def as_index(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    """int64 tensor of indices from a NumPy array or tensor."""
    if isinstance(values, torch.Tensor):
        return values.long()
    return torch.from_numpy(np.asarray(values, dtype=np.int64))


__all__ = ["HParam", "RankingBatch", "RatingModel", "as_index", "check_index"]


class PairRatingModel(RatingModel):
    """A model whose rating head scores (user index, item index) with factor and bias tables: MF and dense.

    Subclasses set ``num_users`` and ``num_items`` and name their four rating tables in :meth:`_tables`;
    this class supplies the clipped ``predict`` and the rating penalty.
    """

    num_users: int
    num_items: int

    def _tables(self) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        """(user vectors, item vectors, user biases, item biases)."""
        raise NotImplementedError

    def row_tables(self) -> list[nn.Embedding]:
        """The four rating tables: user and item vectors and biases."""
        return list(self._tables())

    def penalty(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the vectors and biases a batch touches: frequency-weighted L2 (Koren, 2009)."""
        users, items, user_bias, item_bias = self._tables()
        return (
            table_rows(users, user).pow(2).sum(dim=-1)
            + table_rows(items, item).pow(2).sum(dim=-1)
            + bias_rows(user_bias, user).pow(2)
            + bias_rows(item_bias, item).pow(2)
        ).mean()

    @torch.no_grad()
    def predict(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating clipped to the rating scale: int64 [B], int64 [B] -> float32 [B]."""
        check_index(user, self.num_users, "user")
        check_index(item, self.num_items, "item")
        return self.clip(self(user, item))
