"""Graph convolutional matrix completion over the user-item bipartite rating graph.

GC-MC (Berg, Kipf & Welling, "Graph Convolutional Matrix Completion", 2017): one graph convolution per
rating level with the symmetric normalisation of Kipf & Welling ("Semi-Supervised Classification with
Graph Convolutional Networks", ICLR 2017), node dropout, and a bilinear softmax decoder over rating levels.
Propagation runs through torch-geometric's weightless ``LGConv`` on precomputed sparse adjacencies.

The ranking head is LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network
for Recommendation", SIGIR 2020): free node embeddings propagated over the symmetric-normalised
user-item graph by the same ``LGConv``, the layers averaged, scored by dot products, trained with the
multinomial likelihood (``trainer/losses.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import LGConv

from protos.recsys.v1 import model_config_pb2 as mc
from trainer import config as config_module
from trainer.architecture import Architecture, LargeData, register
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions, UserHistories
from trainer.losses import Towers
from trainer.models._base import HParam, RatingModel, as_index, check_index, independent_random_stream
from trainer.models.graph import (
    history_edges,
    level_graph,
    normalized_adjacency,
    propagate_rows,
    row_entries,
    sparse_product,
)
from trainer.models.heads import FrozenDotRanking, PairServing, dot_scores, freeze
from trainer.models.signatures import user_index_signatures

SAMPLED_NEIGHBOURS = 32
"""Users each item reads per LightGCN training step from ``LARGE_DATA_RATINGS`` training ratings on. Below
that the exact propagation per step is cheap (MovieLens 1M's shape: ~0.3 s of one core); at MovieLens
25M's it would cost the 50M-entry graph on each of an epoch's 635 steps."""

RATING_NEIGHBOURS = 256
"""Rated neighbours (of any level) a node reads per mini-batch step of the rating head, from
``SCALED_SCHEDULE_RATINGS`` training ratings on. Below that the rating head trains on full-graph epochs,
one optimiser step each (GC-MC's settings, up to 1000 epochs: MovieLens 100K's figures); at MovieLens
1M's shape those took 1,582 s to their best epoch (test RMSE 0.6889), and at 25M's each epoch propagated
the 50M-entry graph once per 1M-rating batch. Sampling noise costs accuracy, so the budget is wide: at
1M's shape (large-data schedule, no refit) every neighbour gave test RMSE 0.6889, 512 gave 0.6893, 256
0.6894; 128 gave 0.6932 on a shorter schedule where every neighbour gave 0.6907. Every neighbour is not
the default even at 1M's shape: in ``recsys-train --model all`` there its rating head alone took 743 s to
its best epoch, which with the refit breaks the 15-minute bar for all four models on 2 cores, and after
the refit it reached 0.6892, not the full graph's 0.6889."""


class LightGCNRanking(nn.Module):
    """LightGCN: node embeddings averaged over ``layers`` propagations, ``score(u, i) = <z_u, z_i> + b_i``.

    Args:
        num_users: number of user nodes (``0 .. num_users - 1``; items follow).
        num_items: number of item nodes.
        dim: embedding size.
        layers: propagation steps K; the output is the mean of layers 0..K (He et al., 2020).
        conv: the weightless ``LGConv`` shared with the rating encoder.
        neighbours: in training, each item reads an unbiased sample of this many of its users instead of
            all of them (0: every neighbour, the exact propagation). A batch's users always read all their
            items. Scoring and export always propagate exactly. Only one-layer propagation samples.
    """

    def __init__(
        self, num_users: int, num_items: int, dim: int, layers: int, conv: nn.Module, neighbours: int = 0
    ) -> None:
        super().__init__()
        self.num_users, self.layers, self.neighbours = num_users, layers, neighbours
        self.embeddings = nn.Parameter(torch.empty(num_users + num_items, dim))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.conv = conv
        self.adjacency: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal embeddings (std 0.1), zero biases."""
        nn.init.normal_(self.embeddings, std=0.1)
        nn.init.zeros_(self.item_bias)

    def propagate(self) -> torch.Tensor:
        """float32 [num_users + num_items, dim], the mean of the K + 1 layers."""
        if self.adjacency is None:
            raise RuntimeError("LightGCNRanking has no graph: call set_graph first")
        layer, total = self.embeddings, self.embeddings
        for _ in range(self.layers):
            layer = self.conv(layer, self.adjacency)
            total = total + layer
        return total / (self.layers + 1)

    def towers(self, users: torch.Tensor) -> Towers:
        """Queries of ``users``; the penalty: layer-0 norms of the users, plus the items' per user of the epoch."""
        share = len(users) / self.num_users
        items = self.embeddings[self.num_users :]
        penalty = self.embeddings[users].pow(2).sum(-1).mean() + items.pow(2).sum(-1).mean() * share
        if self.neighbours > 0 and self.layers == 1:
            queries, item_vectors = self._sampled_layer(users)
            return Towers(queries, item_vectors, self.item_bias, penalty)
        nodes = self.propagate()
        return Towers(nodes[users], nodes[self.num_users :], self.item_bias, penalty)

    def _sampled_layer(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One propagation for a batch: its users read all their items, every item ``neighbours`` of its users.

        The full propagation costs the whole graph per step (MovieLens 25M's shape: 50M entries, 635 steps
        an epoch); this costs the batch's edges plus ``num_items x neighbours``.
        """
        if self.adjacency is None:
            raise RuntimeError("LightGCNRanking has no graph: call set_graph first")
        item_rows = torch.arange(self.num_users, self.embeddings.size(0), device=users.device)
        user_layer = propagate_rows(self.adjacency, self.embeddings, users)
        item_layer = propagate_rows(self.adjacency, self.embeddings, item_rows, self.neighbours)
        queries = (self.embeddings[users] + user_layer) / 2
        return queries, (self.embeddings[self.num_users :] + item_layer) / 2


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
        ranking_dim: size of the ranking head's (LightGCN's) embeddings.
        ranking_layers: LightGCN propagation steps.
        ranking_neighbours: users each item reads per training step of the ranking head (0: all of them);
            :meth:`data_hparams` picks 0 below ``LARGE_DATA_RATINGS`` training ratings, else
            ``SAMPLED_NEIGHBOURS``.
        rating_neighbours: 0 (full-graph training: every step propagates the whole graph, the declared
            full-batch settings) or, for mini-batch training of the rating head, the rated neighbours
            (of any level) a batch's node reads per step (the declaration's ``large_data`` sets
            ``RATING_NEIGHBOURS`` from ``SCALED_SCHEDULE_RATINGS`` training ratings on). Validation,
            scoring and export always propagate over the whole graph.
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
        ranking_dim: int = 64,
        ranking_layers: int = 1,
        ranking_neighbours: int = 0,
        rating_neighbours: int = 0,
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
            ranking_dim=ranking_dim,
            ranking_layers=ranking_layers,
            ranking_neighbours=ranking_neighbours,
            rating_neighbours=rating_neighbours,
        )
        self.num_users, self.num_items, self.levels = num_users, num_items, levels
        self.rating_neighbours = rating_neighbours
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
        with independent_random_stream():
            self.ranking = LightGCNRanking(
                num_users, num_items, ranking_dim, ranking_layers, self.conv, ranking_neighbours
            )
        self.reset_parameters()
        if history_offsets is None or history_items is None or history_ratings is None:
            raise ValueError("the GCN needs its training graph: pass history_offsets, history_items, history_ratings")
        self.set_graph(history_offsets, history_items, history_ratings)

    @classmethod
    def data_hparams(cls, train: Interactions) -> dict[str, HParam]:
        """Sizes, mean and scale, and whether the ranking head samples its items' neighbours (large graphs)."""
        hparams = super().data_hparams(train)
        hparams["ranking_neighbours"] = SAMPLED_NEIGHBOURS if len(train) >= config_module.LARGE_DATA_RATINGS else 0
        return hparams

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
        with independent_random_stream():
            self.ranking.reset_parameters()

    @classmethod
    def from_data(cls, hparams: dict[str, HParam], histories: UserHistories) -> GraphRecommender:
        """Build the model over the graph of ``histories``."""
        return cls(
            **hparams,
            history_offsets=histories.offsets,
            history_items=histories.items,
            history_ratings=histories.ratings,
        )

    def use_histories(self, histories: UserHistories) -> None:
        """Propagate over the graph of ``histories`` from now on."""
        self.set_graph(histories.offsets, histories.items, histories.ratings)

    def set_graph(
        self,
        history_offsets: np.ndarray | torch.Tensor,
        history_items: np.ndarray | torch.Tensor,
        history_ratings: np.ndarray | torch.Tensor,
    ) -> None:
        """Rebuild the per-level normalised adjacencies and the ranking head's graph from CSR training histories.

        Degrees count a node's ratings of every level, as in GC-MC; LightGCN's graph is symmetric-normalised.

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
        self.ranking.adjacency = normalized_adjacency(self.num_users, self.num_items, user, item, None, "symmetric")
        self.rating_graph = (
            level_graph(self.num_users, self.num_items, user, item, level, self.normalization)
            if self.rating_neighbours > 0
            else None
        )

    def graph_tensors(self) -> list[torch.Tensor]:
        """The per-level adjacencies, LightGCN's graph and the mini-batch graph of every level (when built)."""
        tensors = [*self.adjacencies, *([self.ranking.adjacency] if self.ranking.adjacency is not None else [])]
        return tensors + list(self.rating_graph or ())

    def rating_levels(self, ratings: torch.Tensor) -> torch.Tensor:
        """Level index of ratings in stars (rounded to the nearest level): float [n] -> int64 [n]."""
        return (ratings - self.rating_min).round().clamp(0, self.levels - 1).long()

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item vectors: (float32 [num_users, dim], float32 [num_items, dim])."""
        hidden = F.dropout(torch.relu(self.first_layer()), self.dropout, self.training)
        return self.user_dense(hidden[: self.num_users]), self.item_dense(hidden[self.num_users :])

    def first_layer(self) -> torch.Tensor:
        """Every node's per-level convolutions, concatenated, before the ReLU: [nodes, levels * per_level]."""
        tables = self._node_dropout(torch.cumsum(self.level_tables, dim=0))
        return torch.cat([self.conv(tables[r], adj) for r, adj in enumerate(self.adjacencies)], dim=-1)

    def sampled_first_layer(self, rows: torch.Tensor) -> torch.Tensor:
        """:meth:`first_layer`'s rows ``rows`` (node indices), read from ``rating_neighbours`` sampled neighbours.

        Each node draws its budget across all its ratings (whatever their level), so a node reads at most
        ``rating_neighbours`` messages: an unbiased estimate of the exact rows. Only the level tables' rows
        the samples name are gathered.
        """
        if self.rating_graph is None:
            raise RuntimeError("sampled_first_layer needs rating_neighbours > 0 (the graph of every level)")
        graph, entry_levels = self.rating_graph
        owner, position, scale = row_entries(graph, rows, self.rating_neighbours)
        level = entry_levels[position]
        # Each message reads the level-r table of its neighbour: gather only the (node, level) pairs named.
        pairs, pair_of_entry = torch.unique(graph.col_indices()[position] * self.levels + level, return_inverse=True)
        nodes, node_of_pair = torch.unique(pairs // self.levels, return_inverse=True)
        tables = self._node_dropout(torch.cumsum(self.level_tables[:, nodes], dim=0))
        messages = tables[pairs % self.levels, node_of_pair]
        value = graph.values()[position] * scale
        hidden = sparse_product(owner * self.levels + level, pair_of_entry, value, len(rows) * self.levels, messages)
        return hidden.view(len(rows), -1)

    def _node_dropout(self, tables: torch.Tensor) -> torch.Tensor:
        """Zero whole nodes' messages ([levels, nodes, per_level]) in training, GC-MC's node dropout."""
        if not (self.training and self.dropout):
            return tables
        keep = torch.rand(tables.size(1), 1, device=tables.device) >= self.dropout
        return tables * keep.to(tables.dtype) / (1.0 - self.dropout)

    def level_logits(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities of each rating level: int64 [B], int64 [B] -> float32 [B, levels].

        In mini-batch training (``rating_neighbours`` > 0) only the batch's users and items are encoded,
        from sampled neighbourhoods; otherwise the whole graph is. The bilinear forms are taken with the
        ``num_basis`` shared matrices and mixed per level afterwards, one basis at a time: on CPU this is
        about 2x faster than one [B, num_basis, dim] product.
        """
        if self.training and self.rating_neighbours > 0:
            batch_users, user = torch.unique(user, return_inverse=True)
            batch_items, item = torch.unique(item, return_inverse=True)
            users, items = self.propagate_batch(batch_users, batch_items)
        else:
            users, items = self.propagate()
        item_vectors = items[item]
        forms = torch.stack([((users @ matrix)[user] * item_vectors).sum(dim=-1) for matrix in self.basis], dim=-1)
        return torch.matmul(forms, self.basis_weights.t()) + self.level_bias

    def propagate_batch(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final vectors of some users and items from ``rating_neighbours`` sampled neighbours each.

        Each node reads an unbiased sample of its rated neighbours (:meth:`sampled_first_layer`), and only
        the level tables' rows those samples name are gathered: a step costs its batch's neighbourhoods,
        not the graph (GC-MC's mini-batch training
        of MovieLens 10M, Berg et al. 2017, with GraphSAGE's neighbour sampling).

        Args:
            users: int64 [U] distinct user indices.
            items: int64 [I] distinct item indices.

        Returns:
            (float32 [U, dim], float32 [I, dim]).
        """
        rows = torch.cat([users, items + self.num_users])
        hidden = torch.relu(self.sampled_first_layer(rows))
        if self.training and self.dropout:
            # F.dropout's mask, drawn with torch.rand: ~3x faster on CPU than its Bernoulli draws (a tenth
            # of a step at MovieLens 1M's shape). The full-graph path keeps F.dropout, and with it the
            # random stream its MovieLens 100K figures were measured with.
            keep = torch.rand_like(hidden) >= self.dropout
            hidden = hidden * keep.to(hidden.dtype) / (1.0 - self.dropout)
        return self.user_dense(hidden[: len(users)]), self.item_dense(hidden[len(users) :])

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Expected rating in stars: int64 [B], int64 [B] -> float32 [B] (unclipped, for training)."""
        return (torch.softmax(self.level_logits(user, item), dim=-1) * self.level_values).sum(dim=-1)

    def rating_loss(self, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
        return self._rating_head()(user, item)

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        """Queries of the batch's users (``inputs[0]``) after LightGCN propagation."""
        return self.ranking.towers(inputs[0])

    @torch.no_grad()
    def rank(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> torch.Tensor:
        """Ranking scores of every item over the model's graph: int64 [B] -> float32 [B, num_items]."""
        del histories
        user = as_index(users)
        check_index(user, self.num_users, "user")
        nodes = self.ranking.propagate()
        return dot_scores(nodes[user], nodes[self.num_users :], self.ranking.item_bias)

    @torch.no_grad()
    def serving_module(self, histories: UserHistories) -> PairServing:
        """Frozen propagated vectors of both heads: pure torch, no adjacency, no torch_geometric."""
        del histories
        nodes = self.ranking.propagate()
        ranking = FrozenDotRanking(nodes[: self.num_users], nodes[self.num_users :], self.ranking.item_bias)
        return PairServing(self._rating_head(), ranking).eval()

    @torch.no_grad()
    def _rating_head(self) -> BilinearLevelRating:
        """The GC-MC decoder over propagated vectors (propagated in eval mode: no node dropout)."""
        was_training = self.training
        self.eval()
        users, items = self.propagate()
        self.train(was_training)
        return BilinearLevelRating(
            users,
            items,
            self.basis,
            self.basis_weights,
            self.level_bias,
            self.level_values,
            self.rating_min,
            self.rating_max,
        ).eval()


class BilinearLevelRating(nn.Module):
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


RANKING = RankingConfig(epochs=80, batch_size=256, learning_rate=1e-2, l2=0.05, low_rating_weight=0.2)
"""Ranking-head settings, tuned on MovieLens 100K (validated every epoch on large data)."""

ARCHITECTURE = register(
    Architecture(
        name="gcn",
        model_class=GraphRecommender,
        signatures=user_index_signatures(),
        defaults={
            "hidden_dim": 500,
            "dim": 75,
            "num_basis": 2,
            "dropout": 0.7,
            "normalization": "left",
            "mse_weight": 10.0,
            "ranking_dim": 64,
            "ranking_layers": 1,
        },
        training=TrainConfig(epochs=1000, batch_size=1 << 20, learning_rate=2e-2, patience=100, refit=True),
        ranking=RANKING,
        tiny={"hidden_dim": 50, "dim": 16, "ranking_dim": 16},
        contract_enum=mc.ARCHITECTURE_GCN,
        description="GC-MC rating head (Berg et al. 2017) and LightGCN ranking head (He et al. 2020), torch-geometric",
        large_data=LargeData(
            ranking=RANKING.for_long_epochs(),
            defaults={"rating_neighbours": RATING_NEIGHBOURS},
            # At MovieLens 1M's shape, reading every neighbour: test RMSE 0.6889 after 36 epochs of ~6 s, the
            # full-graph settings' figure after 1,582 s (0.6907 at epoch 10 with lr_decay 0.85, patience 4).
            training=TrainConfig(
                epochs=60,
                batch_size=1 << 16,
                learning_rate=1e-2,
                lr_decay=0.92,
                patience=6,
                refit=True,
                max_steps_per_epoch=16,
            ),
        ),
    )
)
