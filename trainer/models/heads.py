"""The scoring rules the models share, written once: the biased dot rating head and the dot ranking head.

Plain torch (TorchScript- and ONNX-exportable), used by the trainable models and their frozen serving
copies alike, so training, evaluation and serving compute the same thing.
"""

from __future__ import annotations

import torch
from torch import nn


def biased_dot(
    global_mean: float,
    user_bias: torch.Tensor,
    item_bias: torch.Tensor,
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
) -> torch.Tensor:
    """The rating head ``mean + b_u + b_i + <u, q_i>`` (Koren et al., 2009) of paired rows.

    Args:
        global_mean: mean training rating, in stars.
        user_bias: float32 [B].
        item_bias: float32 [B].
        user_vectors: float32 [B, d].
        item_vectors: float32 [B, d].

    Returns:
        float32 [B] raw (unclipped) ratings in stars.
    """
    return global_mean + user_bias + item_bias + (user_vectors * item_vectors).sum(dim=-1)


def dot_scores(queries: torch.Tensor, item_vectors: torch.Tensor, item_bias: torch.Tensor) -> torch.Tensor:
    """The ranking head ``<q, w_i> + b_i`` over the whole catalogue: [B, d], [I, d], [I] -> [B, I]."""
    return queries @ item_vectors.t() + item_bias.unsqueeze(0)


def freeze(module: nn.Module, **tensors: torch.Tensor) -> None:
    """Store detached float32 copies of ``tensors`` as buffers of ``module`` (exported with it, never trained)."""
    for name, tensor in tensors.items():
        module.register_buffer(name, tensor.detach().clone().float())


class FrozenDotRanking(nn.Module):
    """Ranking scores from frozen user and item vectors: ``recommend(user) = <z_u, w_i> + b_i`` for every item.

    Every ranking head of this project ends in such a table once frozen at export (MF's user factors, the
    GCN's propagated embeddings, the dense and LSTM heads' states of each stored history), which is what an
    approximate nearest-neighbour index can serve.

    Args:
        user_vectors: float32 [num_users, d].
        item_vectors: float32 [num_items, d].
        item_bias: float32 [num_items].
    """

    def __init__(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, item_bias: torch.Tensor) -> None:
        super().__init__()
        freeze(self, user_vectors=user_vectors, item_vectors=item_vectors, item_bias=item_bias)

    def forward(self, user: torch.Tensor) -> torch.Tensor:
        """Ranking scores: int64 [B] -> float32 [B, num_items]."""
        return dot_scores(self.user_vectors[user], self.item_vectors, self.item_bias)


class BiasedDotRating(nn.Module):
    """Frozen rating head ``mean + b_u + b_i + <p_u, q_i>``, clipped: MF's, and the LSTM's over stored states.

    Args:
        user_factors: float32 [num_users, dim].
        item_factors: float32 [num_items, dim].
        user_bias: float32 [num_users].
        item_bias: float32 [num_items].
        global_mean: mean training rating, in stars.
        rating_min: lowest rating, in stars.
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
        raw = biased_dot(
            self.global_mean,
            self.user_bias[user],
            self.item_bias[item],
            self.user_factors[user],
            self.item_factors[item],
        )
        return raw.clamp(self.rating_min, self.rating_max)


class PairServing(nn.Module):
    """A user-index model's exported module: ``forward`` (predict) from the rating head, ``recommend`` from the ranking.

    Args:
        rating: module with ``forward(user, item) -> float32 [B]`` stars, clipped.
        ranking: module with ``forward(user) -> float32 [B, num_items]`` ranking scores.
    """

    def __init__(self, rating: nn.Module, ranking: nn.Module) -> None:
        super().__init__()
        self.rating = rating.eval()
        self.ranking = ranking.eval()
        for param in self.parameters():
            param.requires_grad_(False)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars, clipped: int64 [B], int64 [B] -> float32 [B]."""
        return self.rating(user, item)

    @torch.jit.export
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Ranking scores of every item: int64 [B] -> float32 [B, num_items]."""
        return self.ranking(user)
