"""Biased matrix factorization with a softmax ranking head.

Koren, Bell & Volinsky, "Matrix Factorization Techniques for Recommender Systems", IEEE Computer 2009
(the rating head); the ranking head is a second pair of factor tables trained on the implicit signal
with the multinomial likelihood of Liang et al. (WWW 2018), see ``trainer/losses.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import Architecture, LargeData, register
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import UserHistories
from trainer.losses import Towers
from trainer.models._base import (
    PairRatingModel,
    as_index,
    bias_rows,
    check_index,
    independent_random_stream,
    table_rows,
)
from trainer.models.heads import BiasedDotRating, FrozenDotRanking, PairServing, biased_dot, dot_scores
from trainer.models.signatures import user_index_signatures


class FactorRanking(nn.Module):
    """Free user and item vectors with an item bias: ``score(u, i) = <z_u, w_i> + b_i``.

    Args:
        num_users: number of user indices.
        num_items: number of item indices.
        dim: vector size.
        init_std: standard deviation of the normal initialisation.
    """

    def __init__(self, num_users: int, num_items: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.users = nn.Embedding(num_users, dim)
        self.items = nn.Embedding(num_items, dim)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal vectors, zero biases."""
        nn.init.normal_(self.users.weight, std=self.init_std)
        nn.init.normal_(self.items.weight, std=self.init_std)
        nn.init.zeros_(self.item_bias)

    def towers(self, users: torch.Tensor) -> Towers:
        """Queries of ``users``; the penalty is their squared norms plus the item table's, per user of the epoch."""
        queries = self.users.weight[users]
        share = len(users) / self.users.num_embeddings
        penalty = queries.pow(2).sum(-1).mean() + self.items.weight.pow(2).sum(-1).mean() * share
        return Towers(queries, self.items.weight, self.item_bias, penalty)


class MatrixFactorization(PairRatingModel):
    """Predicts ``mean + b_u + b_i + <p_u, q_i>`` (Koren et al., 2009); ranks by ``<z_u, w_i> + b_i``.

    Args:
        num_users: number of user indices.
        num_items: number of item indices.
        dim: size of the rating head's user and item factor vectors.
        global_mean: mean training rating in stars; the rating head learns deviations from it.
        rating_min: lowest rating in stars (``predict`` clips to it).
        rating_max: highest rating in stars.
        init_std: standard deviation of the normal initialisation of the factors; small, so that
            training starts from the bias-only model.
        ranking_dim: size of the ranking head's vectors.
    """

    architecture = "mf"

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        global_mean: float = 3.5,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        init_std: float = 0.01,
        ranking_dim: int = 64,
    ) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1 or dim < 1 or ranking_dim < 1:
            raise ValueError(
                f"num_users, num_items, dim and ranking_dim must be positive, got {num_users}, {num_items}, "
                f"{dim}, {ranking_dim}"
            )
        self._remember(
            num_users=num_users,
            num_items=num_items,
            dim=dim,
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            init_std=float(init_std),
            ranking_dim=ranking_dim,
        )
        self.num_users, self.num_items, self.global_mean = num_users, num_items, float(global_mean)
        self.init_std = float(init_std)
        self.user_factors = nn.Embedding(num_users, dim)
        self.item_factors = nn.Embedding(num_items, dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        with independent_random_stream():
            self.ranking = FactorRanking(num_users, num_items, ranking_dim, 0.05)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small normal factors and zero biases."""
        nn.init.normal_(self.user_factors.weight, std=self.init_std)
        nn.init.normal_(self.item_factors.weight, std=self.init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        with independent_random_stream():
            self.ranking.reset_parameters()

    def _tables(self) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        return self.user_factors, self.item_factors, self.user_bias, self.item_bias

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Raw predicted rating in stars: int64 [B], int64 [B] -> float32 [B] (unclipped, for training)."""
        return biased_dot(
            self.global_mean,
            bias_rows(self.user_bias, user),
            bias_rows(self.item_bias, item),
            table_rows(self.user_factors, user),
            table_rows(self.item_factors, item),
        )

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        """Queries of the batch's users (``inputs[0]``)."""
        return self.ranking.towers(inputs[0])

    @torch.no_grad()
    def rank(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> torch.Tensor:
        """Ranking scores of every item: int64 [B] -> float32 [B, num_items]."""
        del histories
        user = as_index(users)
        check_index(user, self.num_users, "user")
        return dot_scores(self.ranking.users.weight[user], self.ranking.items.weight, self.ranking.item_bias)

    @torch.no_grad()
    def serving_module(self, histories: UserHistories) -> PairServing:
        """A frozen copy for export: ``forward`` equals :meth:`predict`, ``recommend`` equals :meth:`rank`."""
        del histories
        rating = BiasedDotRating(
            self.user_factors.weight,
            self.item_factors.weight,
            self.user_bias.weight[:, 0],
            self.item_bias.weight[:, 0],
            self.global_mean,
            self.rating_min,
            self.rating_max,
        )
        ranking = FrozenDotRanking(self.ranking.users.weight, self.ranking.items.weight, self.ranking.item_bias)
        return PairServing(rating, ranking).eval()


RANKING = RankingConfig(epochs=80, batch_size=128, learning_rate=5e-3, l2=0.3, low_rating_weight=0.2)
"""Ranking-head settings, tuned on MovieLens 100K (validated every epoch on large data)."""

ARCHITECTURE = register(
    Architecture(
        name="mf",
        model_class=MatrixFactorization,
        signatures=user_index_signatures(),
        defaults={"dim": 64, "ranking_dim": 64},
        training=TrainConfig(epochs=60, batch_size=1024, learning_rate=3e-3, l2=0.1, patience=4, refit=True),
        ranking=RANKING,
        tiny={"dim": 16, "ranking_dim": 16},
        contract_enum=mc.ARCHITECTURE_MF,
        large_data=LargeData(ranking=RANKING.for_long_epochs()),
        description="biased matrix factorization (Koren et al. 2009) with a softmax ranking head",
    )
)
