"""Plain-torch serving modules: frozen tables and heads that TorchScript and ONNX can export.

This module must not import torch_geometric: the GCN's serving module lives here so that an exported
GCN carries only its propagated embeddings and its head, never the graph code.
"""

from __future__ import annotations

import torch
from torch import nn


def freeze(module: nn.Module, **tensors: torch.Tensor) -> None:
    """Store detached float32 copies of ``tensors`` as buffers of ``module`` (exported with it, never trained)."""
    for name, tensor in tensors.items():
        module.register_buffer(name, tensor.detach().clone().float())


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
        freeze(self, user_factors=user_factors, item_factors=item_factors, user_bias=user_bias, item_bias=item_bias)
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
        freeze(self, user_proj=user_proj, item_proj=item_proj, user_bias=user_bias, item_bias=item_bias)
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


class BilinearLevelServing(nn.Module):
    """Frozen GC-MC decoder: a softmax over rating levels from bilinear forms, read out as the expected rating.

    ``p(r | u, i) = softmax_r(sum_b a_rb u^T P_b v + c_r)`` and the rating is ``sum_r p(r) * value_r``
    (Berg et al., 2017): the level matrices ``Q_r = sum_b a_rb P_b`` share ``num_basis`` matrices.

    Args:
        user_embeddings: float32 [num_users, dim], the propagated user vectors.
        item_embeddings: float32 [num_items, dim], the propagated item vectors.
        basis: float32 [num_basis, dim, dim], ``P_b``.
        basis_weights: float32 [levels, num_basis], ``a_rb``.
        level_bias: float32 [levels], ``c_r``.
        level_values: float32 [levels], the rating each level stands for, in stars.
        rating_min: lowest rating in stars.
        rating_max: highest rating in stars.
    """

    def __init__(
        self,
        user_embeddings: torch.Tensor,
        item_embeddings: torch.Tensor,
        basis: torch.Tensor,
        basis_weights: torch.Tensor,
        level_bias: torch.Tensor,
        level_values: torch.Tensor,
        rating_min: float,
        rating_max: float,
    ) -> None:
        super().__init__()
        freeze(
            self,
            user_embeddings=user_embeddings,
            item_embeddings=item_embeddings,
            basis=basis,
            basis_weights=basis_weights,
            level_bias=level_bias,
            level_values=level_values,
        )
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars, clipped to the scale: int64 [B], int64 [B] -> float32 [B]."""
        projected = torch.einsum("bd,nde->bne", self.user_embeddings[user], self.basis)
        forms = (projected * self.item_embeddings[item].unsqueeze(1)).sum(dim=-1)
        logits = torch.matmul(forms, self.basis_weights.t()) + self.level_bias
        raw = (torch.softmax(logits, dim=-1) * self.level_values).sum(dim=-1)
        return raw.clamp(self.rating_min, self.rating_max)

    @torch.jit.export
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Expected rating of every item (unclipped): int64 [B] -> float32 [B, num_items]."""
        projected = torch.einsum("bd,nde->bne", self.user_embeddings[user], self.basis)
        forms = torch.matmul(projected, self.item_embeddings.t())
        logits = torch.einsum("bni,rn->bri", forms, self.basis_weights) + self.level_bias.view(1, -1, 1)
        return (torch.softmax(logits, dim=1) * self.level_values.view(1, -1, 1)).sum(dim=1)
