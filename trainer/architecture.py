"""One declaration per architecture, and the registry the trainer and the exporter read it from.

An :class:`Architecture` says everything the other stages need about a model family: its class, its
default hyper-parameters and training settings, and its signatures (the entry points an exported
version offers, each input and output with its ``TensorKind`` and the eager computation parity compares
against). The built-in four declare themselves in their own modules (``trainer/models/mf.py``, ...) and
are listed once in :data:`BUILT_IN`; any other is added with :func:`register`. Nothing else in the
project compares architecture names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from protos.recsys.v1 import model_config_pb2 as mc
from trainer import config
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import UserHistories

if TYPE_CHECKING:
    from trainer.models._base import RatingModel

HParam = int | float | str | bool

EagerFunction = Callable[["RatingModel", Mapping[str, torch.Tensor], UserHistories], torch.Tensor]
"""``(trained model, inputs by name, stored histories) -> output``: what a signature must reproduce."""


@dataclass(frozen=True)
class SignatureDeclaration:
    """One entry point of an exported model.

    Attributes:
        name: ``predict``, ``recommend``, ``predict_user``, ...; the serving module's method of that name
            implements it (``forward`` for ``predict``).
        inputs: ``TensorKind`` of each input, in argument order (names follow from kinds).
        output: ``TensorKind`` of the single output.
        eager: the trained model's computation the artifact must equal (parity).
        reads_stored_history: each row's user is represented by its stored training history, encoded at
            export: users without one must not be served by this signature.
    """

    name: str
    inputs: tuple[int, ...]
    output: int
    eager: EagerFunction
    reads_stored_history: bool = False


@dataclass(frozen=True)
class LargeData:
    """Declared settings that replace the MovieLens 100K-tuned ones from ``from_ratings`` training ratings on.

    Settings tuned on 100K ratings can be the wrong schedule at 10-250x the data (the GCN's full-graph
    epochs, validation every few epochs of a head that peaks in its first): a declaration names what
    changes with size here, and a run decides it once, from the size of its whole training side, for the
    early-stopped fits and the refits alike.

    Attributes:
        from_ratings: training ratings from which these settings apply.
        defaults: hyper-parameters merged over the architecture's ``defaults``.
        training: rating-head settings replacing the architecture's ``training`` (None keeps them).
        ranking: ranking-head settings replacing the architecture's ``ranking`` (None keeps them).
    """

    from_ratings: int = config.SCALED_SCHEDULE_RATINGS
    defaults: Mapping[str, HParam] = field(default_factory=dict)
    training: TrainConfig | None = None
    ranking: RankingConfig | None = None


@dataclass(frozen=True)
class Architecture:
    """A model family, declared once.

    Attributes:
        name: registry key and the default model name (``mf``).
        model_class: the ``RatingModel`` subclass.
        signatures: the entry points of an exported version.
        defaults: hyper-parameters tuned on MovieLens 100K (sizes come from the data).
        training: rating-head training settings.
        ranking: ranking-head training settings.
        tiny: hyper-parameters of the small models other stages' tests train in seconds.
        contract_enum: ``Architecture`` value written to the config (UNSPECIFIED outside the built-in four).
        description: one line for ``--help`` and reports.
        large_data: what changes from a number of training ratings on (None: nothing).
    """

    name: str
    model_class: type[RatingModel]
    signatures: tuple[SignatureDeclaration, ...]
    defaults: Mapping[str, HParam] = field(default_factory=dict)
    training: TrainConfig = field(default_factory=TrainConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    tiny: Mapping[str, HParam] = field(default_factory=dict)
    contract_enum: int = mc.ARCHITECTURE_UNSPECIFIED
    description: str = ""
    large_data: LargeData | None = None

    def _large_data_for(self, num_ratings: int) -> LargeData | None:
        """``large_data`` when a run with ``num_ratings`` training ratings takes it, else None."""
        if self.large_data is None or num_ratings < self.large_data.from_ratings:
            return None
        return self.large_data

    def defaults_for(self, num_ratings: int) -> dict[str, HParam]:
        """Default hyper-parameters of a run with ``num_ratings`` training ratings."""
        large = self._large_data_for(num_ratings)
        return {**self.defaults, **(large.defaults if large is not None else {})}

    def training_for(self, num_ratings: int) -> TrainConfig:
        """Rating-head settings of a run with ``num_ratings`` training ratings."""
        large = self._large_data_for(num_ratings)
        return large.training if large is not None and large.training is not None else self.training

    def ranking_for(self, num_ratings: int) -> RankingConfig:
        """Ranking-head settings of a run with ``num_ratings`` training ratings."""
        large = self._large_data_for(num_ratings)
        return large.ranking if large is not None and large.ranking is not None else self.ranking

    def signature(self, name: str) -> SignatureDeclaration:
        """The declaration of one signature.

        Raises:
            KeyError: the architecture has no signature of that name.
        """
        for declaration in self.signatures:
            if declaration.name == name:
                return declaration
        raise KeyError(f"architecture {self.name!r} has no signature {name!r}")

    @property
    def reads_histories(self) -> bool:
        """Whether some signature takes a history sent in the request (the LSTM)."""
        return any(kind == mc.TENSOR_KIND_HISTORY_ITEMS for s in self.signatures for kind in s.inputs)


BUILT_IN: dict[str, str] = {
    "mf": "trainer.models.mf",
    "dense": "trainer.models.dense",
    "lstm": "trainer.models.lstm",
    "gcn": "trainer.models.gcn",
}
"""The built-in architectures and the module declaring each (imported on first use: the GCN's pulls in
torch_geometric)."""

_REGISTERED: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Add an architecture to the registry (or replace one of the same name); returns it.

    Raises:
        TypeError: ``model_class`` is not a ``RatingModel`` or does not declare this name.
    """
    from trainer.models._base import RatingModel

    if not issubclass(architecture.model_class, RatingModel):
        raise TypeError(f"{architecture.model_class!r} must subclass trainer.models.RatingModel")
    if architecture.model_class.architecture != architecture.name:
        raise TypeError(
            f"{architecture.model_class.__name__}.architecture is {architecture.model_class.architecture!r}, "
            f"but the declaration is named {architecture.name!r}"
        )
    _REGISTERED[architecture.name] = architecture
    return architecture


def names() -> tuple[str, ...]:
    """Every architecture name: the built-in four, then registered ones, in registration order."""
    return tuple(dict.fromkeys([*BUILT_IN, *_REGISTERED]))


def get(name: str) -> Architecture:
    """The declaration of an architecture.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    if name not in _REGISTERED and name in BUILT_IN:
        importlib.import_module(BUILT_IN[name])  # the module registers its declaration
    if name not in _REGISTERED:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(names())}")
    return _REGISTERED[name]
