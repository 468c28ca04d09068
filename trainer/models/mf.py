"""Biased matrix factorization.

Koren, Bell & Volinsky, "Matrix Factorization Techniques for Recommender Systems", IEEE Computer 2009.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models._base import PairRatingModel, check_index
from trainer.models.serving import BiasedDotServing


class MatrixFactorization(PairRatingModel):
    """Predicts ``mean + b_u + b_i + <p_u, q_i>``, the biased MF of Koren et al. (2009).

    Args:
        num_users: number of user indices.
        num_items: number of item indices.
        dim: size of the user and item factor vectors.
        global_mean: mean training rating in stars; the model learns deviations from it.
        rating_min: lowest rating in stars (``predict`` clips to it).
        rating_max: highest rating in stars.
        init_std: standard deviation of the normal initialisation of the factors; small, so that
            training starts from the bias-only model.
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
    ) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1 or dim < 1:
            raise ValueError(f"num_users, num_items and dim must be positive, got {num_users}, {num_items}, {dim}")
        self._remember(
            num_users=num_users,
            num_items=num_items,
            dim=dim,
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            init_std=float(init_std),
        )
        self.num_users, self.num_items, self.global_mean = num_users, num_items, float(global_mean)
        self.init_std = float(init_std)
        self.user_factors = nn.Embedding(num_users, dim)
        self.item_factors = nn.Embedding(num_items, dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small normal factors and zero biases."""
        nn.init.normal_(self.user_factors.weight, std=self.init_std)
        nn.init.normal_(self.item_factors.weight, std=self.init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def _tables(self) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        return self.user_factors, self.item_factors, self.user_bias, self.item_bias

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Raw predicted rating in stars: int64 [B], int64 [B] -> float32 [B] (unclipped, for training)."""
        dot = (self.user_factors.weight[user] * self.item_factors.weight[item]).sum(dim=-1)
        return self.global_mean + self.user_bias.weight[user, 0] + self.item_bias.weight[item, 0] + dot

    @torch.no_grad()
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Unclipped scores of every item: int64 [B] -> float32 [B, num_items]."""
        check_index(user, self.num_users, "user")
        dot = self.user_factors.weight[user] @ self.item_factors.weight.t()
        return (
            self.global_mean + self.user_bias.weight[user, 0].unsqueeze(1) + self.item_bias.weight[:, 0].unsqueeze(0)
        ) + dot

    def serving_module(self) -> BiasedDotServing:
        """A frozen copy for export: ``forward`` equals :meth:`predict`, ``recommend`` equals :meth:`recommend`."""
        return BiasedDotServing(
            self.user_factors.weight,
            self.item_factors.weight,
            self.user_bias.weight[:, 0],
            self.item_bias.weight[:, 0],
            self.global_mean,
            self.rating_min,
            self.rating_max,
        ).eval()
