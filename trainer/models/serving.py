"""Plain-torch serving modules: frozen tables and heads that TorchScript and ONNX can export.

This module must not import torch_geometric: the GCN's serving module lives here so that an exported
GCN carries only its propagated embeddings and its head, never the graph code.
"""

from __future__ import annotations

import torch
from torch import nn


class BiasedDotServing(nn.Module):
    """Frozen ``mean + b_u + b_i + <p_u, q_i>`` scorer, shared by MF and the GCN's frozen embeddings.

    Args:
        user_factors: float32 [num_users, dim].
        item_factors: float32 [num_items, dim].
        user_bias: float32 [num_users].
        item_bias: float32 [num_items].
        global_mean: mean training rating, in stars.
        rating_min: lowest rating, in stars; ``forward`` clips to it.
        rating_max: highest rating, in stars.
    """

    def __init__(
        self,
        user_factors: torch.Tensor,
        item_factors: torch.Tensor,
        user_bias: torch.Tensor,
        item_bias: torch.Tensor,
        global_mean: float,
        rating_min: float,
        rating_max: float,
    ) -> None:
        super().__init__()
        self.register_buffer("user_factors", user_factors.detach().clone().float())
        self.register_buffer("item_factors", item_factors.detach().clone().float())
        self.register_buffer("user_bias", user_bias.detach().clone().float().reshape(-1))
        self.register_buffer("item_bias", item_bias.detach().clone().float().reshape(-1))
        self.global_mean = float(global_mean)
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars, clipped to the scale: int64 [B], int64 [B] -> float32 [B]."""
        dot = (self.user_factors[user] * self.item_factors[item]).sum(dim=-1)
        raw = self.global_mean + self.user_bias[user] + self.item_bias[item] + dot
        return raw.clamp(self.rating_min, self.rating_max)

    @torch.jit.export
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Unclipped scores over the catalogue: int64 [B] -> float32 [B, num_items]."""
        dot = self.user_factors[user] @ self.item_factors.t()
        return self.global_mean + self.user_bias[user].unsqueeze(1) + self.item_bias.unsqueeze(0) + dot


class DenseServing(nn.Module):
    """Frozen NCF-style MLP scorer with the first layer split into precomputed user and item halves.

    ``W [p_u; q_i] + b = (W_u p_u + b) + W_i q_i``, so both halves are tables computed once at export;
    scoring the whole catalogue then costs one add, one ReLU and the remaining layers per (user, item).

    Args:
        user_proj: float32 [num_users, hidden], ``W_u p_u + b`` per user.
        item_proj: float32 [num_items, hidden], ``W_i q_i`` per item.
        tail: the layers after the first ReLU, ending in a single output.
        user_bias: float32 [num_users].
        item_bias: float32 [num_items].
        global_mean: mean training rating in stars.
        rating_min: lowest rating in stars.
        rating_max: highest rating in stars.
    """

    def __init__(
        self,
        user_proj: torch.Tensor,
        item_proj: torch.Tensor,
        tail: nn.Sequential,
        user_bias: torch.Tensor,
        item_bias: torch.Tensor,
        global_mean: float,
        rating_min: float,
        rating_max: float,
    ) -> None:
        super().__init__()
        self.register_buffer("user_proj", user_proj.detach().clone().float())
        self.register_buffer("item_proj", item_proj.detach().clone().float())
        self.register_buffer("user_bias", user_bias.detach().clone().float().reshape(-1))
        self.register_buffer("item_bias", item_bias.detach().clone().float().reshape(-1))
        self.tail = tail
        for param in self.tail.parameters():
            param.requires_grad_(False)
        self.global_mean = float(global_mean)
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars, clipped to the scale: int64 [B], int64 [B] -> float32 [B]."""
        hidden = torch.relu(self.user_proj[user] + self.item_proj[item])
        raw = self.tail(hidden).squeeze(-1) + self.global_mean + self.user_bias[user] + self.item_bias[item]
        return raw.clamp(self.rating_min, self.rating_max)

    @torch.jit.export
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Unclipped scores over the catalogue: int64 [B] -> float32 [B, num_items]."""
        hidden = torch.relu(self.user_proj[user].unsqueeze(1) + self.item_proj.unsqueeze(0))
        mlp = self.tail(hidden).squeeze(-1)
        return mlp + self.global_mean + self.user_bias[user].unsqueeze(1) + self.item_bias.unsqueeze(0)
