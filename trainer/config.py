"""Training settings: how to fit a model's rating head and its ranking head (typed, one default per field)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

RANKING_LOSSES: tuple[str, ...] = ("softmax", "sampled_softmax", "bpr")


LARGE_DATA_RATINGS = 2_000_000
"""Training ratings from which the heads take their large-data paths: sparse-gradient rating tables with
lazy Adam (``trainer.fitting``) and sampled LightGCN neighbourhoods (``trainer.models.gcn``). Below it the
exact, dense paths are cheap and keep their measured benchmark figures."""

SCALED_SCHEDULE_RATINGS = 500_000
"""Training ratings from which architectures take the schedules they declare for large data
(``trainer.architecture.LargeData``): there an epoch holds 10x MovieLens 100K's steps or more, so the
100K-tuned schedules (the GCN's full-graph epochs, ranking validation every few epochs) spend most of
their time past the best epoch. MovieLens 1M's shape is above it, MovieLens 100K's far below."""


@dataclass(frozen=True)
class TrainConfig:
    """How to fit one model's rating head.

    Attributes:
        epochs: most passes over the training ratings.
        batch_size: ratings per step (for the LSTM: users per step).
        learning_rate: AdamW step size.
        weight_decay: AdamW decoupled decay on dense layer weights (not on embeddings, which ``l2`` covers).
        l2: weight of the model's ``penalty`` (mean squared norm of the rows a batch touches).
        patience: epochs without a better validation RMSE before stopping; the best epoch's weights are kept.
        lr_decay: multiply the learning rate by this after every epoch (1 = constant).
        target_fraction: LSTM only: share of each history held out as targets per epoch.
        refit: after early stopping, train a fresh model on all training ratings (validation included) for
            the best epoch count and keep that one: the final model sees every training rating.
        max_seconds: stop after this much wall time, checked after every batch (None = no limit); the epoch
            it cuts short is validated and the best weights so far are kept.
        seed: seeds the initialisation, the shuffling and dropout.
        progress: show a tqdm bar with loss and validation RMSE.
        progress_position: line of the bar, when several models train side by side.
        device: where the steps run, ``cpu`` or ``cuda[:N]`` (:func:`trainer.devices.resolve`); the fitted
            model comes back on the CPU either way.
        max_steps_per_epoch: on data with more than ``batch_size x max_steps_per_epoch`` training ratings,
            batches grow so that an epoch keeps this many steps (:meth:`for_ratings`); None keeps
            ``batch_size`` at any size. For schedules tuned in epochs (learning-rate decay, patience).
    """

    epochs: int = 40
    batch_size: int = 1024
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    l2: float = 0.0
    patience: int = 3
    lr_decay: float = 1.0
    target_fraction: float = 0.2
    refit: bool = False
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = True
    progress_position: int = 0
    device: str = "cpu"
    max_steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch_size and patience must be positive")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch must be positive or None, got {self.max_steps_per_epoch}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.l2 < 0 or not 0 < self.lr_decay <= 1:
            raise ValueError("need learning_rate > 0, weight_decay >= 0, l2 >= 0 and 0 < lr_decay <= 1")

    def for_ratings(self, num_ratings: int) -> TrainConfig:
        """These settings with the batch an epoch of ``num_ratings`` rating pairs steps on.

        ``batch_size``, or, past ``max_steps_per_epoch`` steps, ``ceil(num_ratings / max_steps_per_epoch)``:
        the GCN's mini-batch schedule was tuned at MovieLens 1M's shape, 12-13 steps an epoch. At 25M's,
        64K batches made 327 steps of 9.7 s (53 minutes an epoch) and changed what its per-epoch decay and
        patience mean; fewer, larger batches share the neighbourhoods their nodes read.
        """
        if self.max_steps_per_epoch is None:
            return self
        grown = max(self.batch_size, -(-num_ratings // self.max_steps_per_epoch))
        return self if grown == self.batch_size else dataclasses.replace(self, batch_size=grown)


@dataclass(frozen=True)
class RankingConfig:
    """How to fit one model's ranking head on the implicit signal (which items each user rated).

    Every rated item is a positive, weighted 1 when its rating is at least ``relevant_rating`` and
    ``low_rating_weight`` below it: "the user chose it" counts, "and liked it" counts more.

    Attributes:
        epochs: most passes over the training users (or histories).
        batch_size: users (or history windows) per step.
        learning_rate: Adam(W) step size.
        weight_decay: AdamW decoupled decay on the ranking head's dense layer weights.
        l2: weight of the ranking head's penalty (squared norms of the rows a batch touches).
        loss: ``softmax`` (cross-entropy over the whole catalogue: every unrated item is a negative),
            ``sampled_softmax`` (``negatives`` uniform negatives per positive) or ``bpr`` (one negative per
            positive, Rendle et al. 2009). Sampled negatives never include the user's own training items.
        negatives: negatives drawn per positive for ``sampled_softmax`` (``bpr`` always draws one).
        relevant_rating: ratings at or above this, in stars, get weight 1.
        low_rating_weight: weight of positives rated below ``relevant_rating`` (0 ignores them).
        patience: epochs without a better validation Recall@10 before stopping.
        eval_every: validate every this many epochs (validation costs a full ranking of the users).
        refit: after early stopping, retrain the head on all training data for the best epoch count.
        max_seconds: stop after this much wall time, checked after every batch (None = no limit).
        seed: seeds initialisation, shuffling, dropout and negative sampling.
        progress: show a tqdm bar.
        progress_position: line of the bar, when several models train side by side.
        device: where the steps run (see ``TrainConfig.device``).
    """

    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 5e-3
    weight_decay: float = 0.0
    l2: float = 0.0
    loss: str = "softmax"
    negatives: int = 100
    relevant_rating: float = 4.0
    low_rating_weight: float = 0.3
    patience: int = 3
    eval_every: int = 5
    refit: bool = True
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = True
    progress_position: int = 0
    device: str = "cpu"

    def for_long_epochs(self) -> RankingConfig:
        """These settings validated after every epoch, stopping two validations past the best.

        For data whose epochs hold 10x MovieLens 100K's steps or more (``SCALED_SCHEDULE_RATINGS``): at
        MovieLens 1M's shape every ranking head peaks within its first five epochs, where validating
        every 3-5 epochs with patience 3-5 ran 15 epochs past the best.
        """
        return dataclasses.replace(self, eval_every=1, patience=min(self.patience, 2))

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.eval_every < 1:
            raise ValueError("epochs, batch_size, patience and eval_every must be positive")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.l2 < 0:
            raise ValueError("need learning_rate > 0, weight_decay >= 0 and l2 >= 0")
        if self.loss not in RANKING_LOSSES:
            raise ValueError(f"unknown ranking loss {self.loss!r}; choose one of {', '.join(RANKING_LOSSES)}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be positive, got {self.negatives}")
        if not 0.0 <= self.low_rating_weight <= 1.0:
            raise ValueError(f"low_rating_weight must be in [0, 1], got {self.low_rating_weight}")
