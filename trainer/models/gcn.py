"""Graph convolutional matrix completion over the user-item bipartite rating graph.

GC-MC (Berg, Kipf & Welling, "Graph Convolutional Matrix Completion", 2017): one graph convolution per
rating level with the symmetric normalisation of Kipf & Welling ("Semi-Supervised Classification with
Graph Convolutional Networks", ICLR 2017), node dropout, and a bilinear softmax decoder over rating levels.
Propagation runs through torch-geometric's weightless ``LGConv`` (as in LightGCN, He et al., SIGIR 2020)
on precomputed sparse adjacencies.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import LGConv

from trainer.models._base import RatingModel, check_index
from trainer.models.graph import history_edges, normalized_adjacency
from trainer.models.serving import BilinearLevelServing


class GraphRecommender(RatingModel):
    """GC-MC: learnable node embeddings per rating level, propagated over that level's edges, then decoded.

    Encoder: for each rating level r a table ``W_r`` (ordinal weight sharing, ``W_r = T_1 + ... + T_r``) is
    propagated over the normalised adjacency of the ratings of level r, so a user's hidden vector sums the
    level-r embeddings of the items they rated r; levels are concatenated, passed through a ReLU and a dense
    layer (separate for users and items). Node dropout zeroes whole nodes' messages during training.
    Decoder: ``p(r | u, i) = softmax_r(u^T Q_r v + c_r)`` with ``Q_r`` a mix of ``num_basis`` shared
    matrices; the predicted rating is the expectation over levels. :meth:`propagate` returns the final user
    and item vectors, which with the decoder is all that serving needs.

    Args:
        num_users: number of user indices.
        num_items: number of item indices.
        hidden_dim: total width of the concatenated per-level convolutions (split evenly across levels).
        dim: size of the final user and item vectors.
        num_basis: shared decoder matrices.
        dropout: node dropout on the convolution inputs and dropout before the dense layer, in training.
        global_mean: mean training rating in stars (recorded; the level softmax needs no offset).
        rating_min: lowest rating in stars; levels are ``rating_min, rating_min + 1, ..., rating_max``.
        rating_max: highest rating in stars.
        init_scale: multiplies the Glorot initialisation of the level tables.
        normalization: ``symmetric`` (``D^-1/2 A D^-1/2``) or ``left`` (``D^-1 A``, neighbour means).
        mse_weight: weight of a squared-error term on the expected rating added to the cross-entropy.
        history_offsets: int64 [num_users + 1] CSR offsets of the training graph (not a hyper-parameter).
        history_items: int64 [n] item of each training rating.
        history_ratings: float32 [n] rating of each training rating, in stars (picks the edge's level).

    Raises:
        ValueError: the graph is missing or does not fit the sizes.
    """

    architecture = "gcn"

    def __init__(
        self,
        num_users: int,
        num_items: int,
        hidden_dim: int = 500,
        dim: int = 75,
        num_basis: int = 2,
        dropout: float = 0.7,
        global_mean: float = 3.5,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        init_scale: float = 1.0,
        normalization: str = "left",
        mse_weight: float = 10.0,
        *,
        history_offsets: np.ndarray | torch.Tensor | None = None,
        history_items: np.ndarray | torch.Tensor | None = None,
        history_ratings: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        levels = round(rating_max - rating_min) + 1
        if num_users < 1 or num_items < 1 or dim < 1 or num_basis < 1 or hidden_dim < levels:
            raise ValueError(f"need positive sizes and hidden_dim >= {levels} (one unit per rating level)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self._remember(
            num_users=num_users,
            num_items=num_items,
            hidden_dim=hidden_dim,
            dim=dim,
            num_basis=num_basis,
            dropout=float(dropout),
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            init_scale=float(init_scale),
            normalization=normalization,
            mse_weight=float(mse_weight),
        )
        self.num_users, self.num_items, self.levels = num_users, num_items, levels
        self.dropout, self.init_scale, self.normalization = float(dropout), float(init_scale), normalization
        self.mse_weight = float(mse_weight)
        per_level = hidden_dim // levels
        self.level_tables = nn.Parameter(torch.empty(levels, num_users + num_items, per_level))
        self.conv = LGConv(normalize=False)
        self.user_dense = nn.Linear(per_level * levels, dim, bias=False)
        self.item_dense = nn.Linear(per_level * levels, dim, bias=False)
        self.basis = nn.Parameter(torch.empty(num_basis, dim, dim))
        self.basis_weights = nn.Parameter(torch.empty(levels, num_basis))
        self.level_bias = nn.Parameter(torch.empty(levels))
        self.register_buffer("level_values", rating_min + torch.arange(levels, dtype=torch.float32))
        self.reset_parameters()
        if history_offsets is None or history_items is None or history_ratings is None:
            raise ValueError("the GCN needs its training graph: pass history_offsets, history_items, history_ratings")
        self.set_graph(history_offsets, history_items, history_ratings)

    def _repr_keys(self) -> tuple[str, ...]:
        return ("hidden_dim", "dim", "num_basis")

    def reset_parameters(self) -> None:
        """Glorot-uniform tables, dense layers and decoder matrices; zero level biases."""
        nodes, per_level = self.level_tables.shape[1:]
        bound = self.init_scale * math.sqrt(6.0 / (nodes + per_level))
        nn.init.uniform_(self.level_tables, -bound, bound)
        nn.init.xavier_uniform_(self.user_dense.weight)
        nn.init.xavier_uniform_(self.item_dense.weight)
        for matrix in self.basis:
            nn.init.orthogonal_(matrix)
        nn.init.xavier_uniform_(self.basis_weights)
        nn.init.zeros_(self.level_bias)

    def set_graph(
        self,
        history_offsets: np.ndarray | torch.Tensor,
        history_items: np.ndarray | torch.Tensor,
        history_ratings: np.ndarray | torch.Tensor,
    ) -> None:
        """Rebuild the per-level normalised adjacencies from CSR training histories.

        Degrees count a node's ratings of every level, as in GC-MC.

        Args:
            history_offsets: int64 [num_users + 1].
            history_items: int64 [n].
            history_ratings: float32 [n] in stars.

        Raises:
            ValueError: the arrays do not fit the model's sizes.
        """
        if len(np.asarray(history_offsets)) != self.num_users + 1:
            raise ValueError(
                f"history_offsets must have num_users + 1 = {self.num_users + 1} entries, "
                f"got {len(np.asarray(history_offsets))}"
            )
        user, item = history_edges(history_offsets, history_items)
        check_index(item, self.num_items, "item")
        ratings = torch.as_tensor(np.asarray(history_ratings), dtype=torch.float32)
        if ratings.numel() != item.numel():
            raise ValueError(f"history_ratings has {ratings.numel()} entries for {item.numel()} history items")
        level = self.rating_levels(ratings)
        self.adjacencies = [
            normalized_adjacency(self.num_users, self.num_items, user, item, (level == r).float(), self.normalization)
            for r in range(self.levels)
        ]

    def rating_levels(self, ratings: torch.Tensor) -> torch.Tensor:
        """Level index of ratings in stars (rounded to the nearest level): float [n] -> int64 [n]."""
        return (ratings - self.rating_min).round().clamp(0, self.levels - 1).long()

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item vectors: (float32 [num_users, dim], float32 [num_items, dim])."""
        tables = torch.cumsum(self.level_tables, dim=0)
        if self.training and self.dropout:
            keep = torch.rand(tables.size(1), 1, device=tables.device) >= self.dropout
            tables = tables * keep.to(tables.dtype) / (1.0 - self.dropout)
        hidden = torch.cat([self.conv(tables[r], adj) for r, adj in enumerate(self.adjacencies)], dim=-1)
        hidden = F.dropout(torch.relu(hidden), self.dropout, self.training)
        return self.user_dense(hidden[: self.num_users]), self.item_dense(hidden[self.num_users :])

    def level_logits(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities of each rating level: int64 [B], int64 [B] -> float32 [B, levels].

        The bilinear forms are taken with the ``num_basis`` shared matrices and mixed per level afterwards,
        one basis at a time: on CPU this is about 2x faster than one [B, num_basis, dim] product.
        """
        users, items = self.propagate()
        item_vectors = items[item]
        forms = torch.stack([((users @ matrix)[user] * item_vectors).sum(dim=-1) for matrix in self.basis], dim=-1)
        return torch.matmul(forms, self.basis_weights.t()) + self.level_bias

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Expected rating in stars: int64 [B], int64 [B] -> float32 [B] (unclipped, for training)."""
        return (torch.softmax(self.level_logits(user, item), dim=-1) * self.level_values).sum(dim=-1)

    def training_loss(
        self, inputs: tuple[torch.Tensor, ...], target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GC-MC's cross-entropy over rating levels (plus ``mse_weight`` x MSE); returns (loss, MSE)."""
        logits = self.level_logits(*inputs)
        expected = (torch.softmax(logits, dim=-1) * self.level_values).sum(dim=-1)
        mse = F.mse_loss(expected, target)
        return F.cross_entropy(logits, self.rating_levels(target)) + self.mse_weight * mse, mse

    @torch.no_grad()
    def predict(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating clipped to the rating scale: int64 [B], int64 [B] -> float32 [B]."""
        check_index(user, self.num_users, "user")
        check_index(item, self.num_items, "item")
        return self.serving_module()(user, item)

    @torch.no_grad()
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Expected rating of every item (unclipped): int64 [B] -> float32 [B, num_items]."""
        check_index(user, self.num_users, "user")
        return self.serving_module().recommend(user)

    @torch.no_grad()
    def serving_module(self) -> BilinearLevelServing:
        """Frozen propagated vectors and the decoder: pure torch, no adjacency, no torch_geometric."""
        was_training = self.training
        self.eval()
        users, items = self.propagate()
        self.train(was_training)
        return BilinearLevelServing(
            users,
            items,
            self.basis,
            self.basis_weights,
            self.level_bias,
            self.level_values,
            self.rating_min,
            self.rating_max,
        ).eval()
