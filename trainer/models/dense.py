"""Embedding MLPs: an NCF-style rating head and a history-bag ranking head.

Rating: He et al., "Neural Collaborative Filtering", WWW 2017 (the MLP tower, regressing stars). Ranking:
the user's rated items as a bag of embeddings through a hidden layer, scored against output item
embeddings with the multinomial likelihood: Mult-DAE (Liang et al., "Variational Autoencoders for
Collaborative Filtering", WWW 2018), the same shape as YouTube's candidate generator (Covington et al.,
RecSys 2016) without its side features.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
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
)
from trainer.models.heads import FrozenDotRanking, PairServing, dot_scores, freeze
from trainer.models.signatures import user_index_signatures


class HistoryBagRanking(nn.Module):
    """A user's rated items, L2-normalised as a bag, through ``tanh(W x + c)``; scores ``<z_u, w_i> + b_i``.

    During training each input item is dropped with probability ``dropout`` (the denoising of Mult-DAE),
    so the head learns to predict a user's items from part of them.

    Args:
        num_items: number of item indices.
        hidden_dim: size of the user vector.
        dropout: input item dropout, in training.
    """

    def __init__(self, num_items: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.encoder = nn.Parameter(torch.empty(num_items, hidden_dim))
        self.encoder_bias = nn.Parameter(torch.empty(hidden_dim))
        self.items = nn.Parameter(torch.empty(num_items, hidden_dim))
        self.item_bias = nn.Parameter(torch.empty(num_items))
        self.dropout = float(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's ``nn.Linear`` initialisation of both layers (uniform in +-1/sqrt(fan_in))."""
        num_items, hidden = self.encoder.shape
        for tensor, fan_in in ((self.encoder, num_items), (self.encoder_bias, num_items)):
            nn.init.uniform_(tensor, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        for tensor in (self.items, self.item_bias):
            nn.init.uniform_(tensor, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden))

    def user_vectors(self, rows: torch.Tensor, items: torch.Tensor, num_rows: int) -> torch.Tensor:
        """User vectors of bags given as (row, item) pairs: float32 [num_rows, hidden_dim]."""
        counts = torch.bincount(rows, minlength=num_rows).clamp(min=1).to(self.encoder.dtype)
        weight = counts.rsqrt()[rows]
        if self.training and self.dropout:
            weight = F.dropout(weight, self.dropout, True)
        summed = torch.zeros(num_rows, self.encoder.size(1), dtype=self.encoder.dtype, device=self.encoder.device)
        summed = summed.index_add(0, rows, self.encoder[items] * weight.unsqueeze(1))
        return torch.tanh(summed + self.encoder_bias)

    def towers(self, users: torch.Tensor, rows: torch.Tensor, items: torch.Tensor, num_users: int) -> Towers:
        """Queries of a batch's bags; the penalty is both layers' squared norms per user of the epoch."""
        queries = self.user_vectors(rows, items, len(users))
        penalty = (self.encoder.pow(2).sum() + self.items.pow(2).sum()) / num_users
        return Towers(queries, self.items, self.item_bias, penalty)


class DenseRecommender(PairRatingModel):
    """User and item embeddings concatenated into an MLP, plus global mean and biases.

    The MLP tower of NCF (He et al., 2017) regressing explicit ratings. The first layer is stored as
    two halves, ``W [p_u; q_i] + b = (W_u p_u + b) + W_i q_i`` (mathematically the concatenation), so
    that scoring the whole catalogue shares the item half across users.

    Args:
        num_users: number of user indices.
        num_items: number of item indices.
        dim: size of the user and item embeddings.
        hidden_dim: width of the first hidden layer; each further layer halves it.
        num_layers: number of hidden layers (>= 1).
        dropout: dropout probability on the embeddings and after each hidden layer, during training.
        global_mean: mean training rating in stars.
        rating_min: lowest rating in stars (``predict`` clips to it).
        rating_max: highest rating in stars.
        init_std: standard deviation of the embedding initialisation.
        ranking_hidden_dim: size of the ranking head's user vector.
        ranking_dropout: the ranking head's input item dropout, in training.
    """

    architecture = "dense"

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        hidden_dim: int = 128,
        num_layers: int = 2,
        dropout: float = 0.2,
        global_mean: float = 3.5,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        init_std: float = 0.05,
        ranking_hidden_dim: int = 600,
        ranking_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1 or dim < 1 or hidden_dim < 1 or ranking_hidden_dim < 1:
            raise ValueError("num_users, num_items, dim, hidden_dim and ranking_hidden_dim must be positive")
        if num_layers < 1 or hidden_dim >> (num_layers - 1) < 1:
            raise ValueError(f"num_layers={num_layers} must be >= 1 and leave hidden_dim={hidden_dim} >= 1 wide")
        if not (0.0 <= dropout < 1.0 and 0.0 <= ranking_dropout < 1.0):
            raise ValueError(f"dropout and ranking_dropout must be in [0, 1), got {dropout}, {ranking_dropout}")
        self._remember(
            num_users=num_users,
            num_items=num_items,
            dim=dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            dropout=float(dropout),
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            init_std=float(init_std),
            ranking_hidden_dim=ranking_hidden_dim,
            ranking_dropout=float(ranking_dropout),
        )
        self.num_users, self.num_items, self.global_mean = num_users, num_items, float(global_mean)
        with independent_random_stream():
            self.ranking = HistoryBagRanking(num_items, ranking_hidden_dim, ranking_dropout)
        self.dropout, self.init_std = float(dropout), float(init_std)
        self.user_embedding = nn.Embedding(num_users, dim)
        self.item_embedding = nn.Embedding(num_items, dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        self.user_in = nn.Linear(dim, hidden_dim)
        self.item_in = nn.Linear(dim, hidden_dim, bias=False)
        widths = [hidden_dim >> k for k in range(num_layers)]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.output = nn.Linear(widths[-1], 1)
        self.reset_parameters()

    def _repr_keys(self) -> tuple[str, ...]:
        return ("dim", "hidden_dim", "num_layers")

    def reset_parameters(self) -> None:
        """Normal embeddings, zero biases, Kaiming-uniform layers (PyTorch's default) and a zero output layer."""
        nn.init.normal_(self.user_embedding.weight, std=self.init_std)
        nn.init.normal_(self.item_embedding.weight, std=self.init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        for layer in (self.user_in, self.item_in, *self.hidden):
            layer.reset_parameters()
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        with independent_random_stream():
            self.ranking.reset_parameters()

    def _tail(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = F.dropout(hidden, self.dropout, self.training)
        for layer in self.hidden:
            hidden = F.dropout(torch.relu(layer(hidden)), self.dropout, self.training)
        return self.output(hidden).squeeze(-1)

    def _tables(self) -> tuple[nn.Embedding, nn.Embedding, nn.Embedding, nn.Embedding]:
        return self.user_embedding, self.item_embedding, self.user_bias, self.item_bias

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Raw predicted rating in stars: int64 [B], int64 [B] -> float32 [B] (unclipped, for training)."""
        p = F.dropout(self.user_embedding(user), self.dropout, self.training)
        q = F.dropout(self.item_embedding(item), self.dropout, self.training)
        hidden = torch.relu(self.user_in(p) + self.item_in(q))
        return self._tail(hidden) + self.global_mean + bias_rows(self.user_bias, user) + bias_rows(self.item_bias, item)

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        """Queries of the batch users' bags: ``inputs`` are (users, bag rows, bag items)."""
        users, rows, items = inputs
        return self.ranking.towers(users, rows, items, self.num_users)

    @torch.no_grad()
    def rank(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> torch.Tensor:
        """Ranking scores of every item from each user's history bag: int64 [B] -> float32 [B, num_items]."""
        user = as_index(users)
        check_index(user, self.num_users, "user")
        return dot_scores(self._bag_vectors(user.numpy(), histories), self.ranking.items, self.ranking.item_bias)

    def _bag_vectors(self, users: np.ndarray, histories: UserHistories) -> torch.Tensor:
        starts, ends = histories.offsets[users], histories.offsets[users + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(users)), counts)
        source = (
            np.repeat(starts, counts) + np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        return self.ranking.user_vectors(torch.from_numpy(rows), torch.from_numpy(histories.items[source]), len(users))

    @torch.no_grad()
    def serving_module(self, histories: UserHistories) -> PairServing:
        """A frozen copy for export: the rating MLP with its first layer precomputed, and each stored user's bag vector.

        Rows of users without a stored history are not meaningful (``recommend`` reads stored histories).
        """
        was_training = self.training
        self.eval()
        layers: list[nn.Module] = []
        for layer in self.hidden:
            layers += [copy.deepcopy(layer), nn.ReLU()]
        layers.append(copy.deepcopy(self.output))
        rating = DenseRating(
            self.user_in(self.user_embedding.weight),
            self.item_in(self.item_embedding.weight),
            nn.Sequential(*layers),
            self.user_bias.weight[:, 0],
            self.item_bias.weight[:, 0],
            self.global_mean,
            self.rating_min,
            self.rating_max,
        )
        vectors = self._bag_vectors(np.arange(self.num_users), histories)
        self.train(was_training)
        return PairServing(rating, FrozenDotRanking(vectors, self.ranking.items, self.ranking.item_bias)).eval()


class DenseRating(nn.Module):
    """Frozen NCF-style MLP rating head with the first layer split into precomputed user and item halves.

    ``W [p_u; q_i] + b = (W_u p_u + b) + W_i q_i``, so both halves are tables computed once at export.

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
        self.global_mean = float(global_mean)
        self.rating_min = float(rating_min)
        self.rating_max = float(rating_max)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted rating in stars, clipped to the scale: int64 [B], int64 [B] -> float32 [B]."""
        hidden = torch.relu(self.user_proj[user] + self.item_proj[item])
        raw = self.tail(hidden).squeeze(-1) + self.global_mean + self.user_bias[user] + self.item_bias[item]
        return raw.clamp(self.rating_min, self.rating_max)


RANKING = RankingConfig(epochs=80, batch_size=128, learning_rate=1e-3, l2=1e-3, low_rating_weight=0.2)
"""Ranking-head settings, tuned on MovieLens 100K (validated every epoch on large data)."""

ARCHITECTURE = register(
    Architecture(
        name="dense",
        model_class=DenseRecommender,
        signatures=user_index_signatures(ranking_reads_stored_history=True),
        defaults={
            "dim": 64,
            "hidden_dim": 128,
            "num_layers": 2,
            "dropout": 0.2,
            "ranking_hidden_dim": 600,
            "ranking_dropout": 0.5,
        },
        training=TrainConfig(
            epochs=60, batch_size=1024, learning_rate=2e-3, l2=0.02, weight_decay=1e-4, patience=4, refit=True
        ),
        ranking=RANKING,
        tiny={"dim": 16, "hidden_dim": 32, "ranking_hidden_dim": 32},
        contract_enum=mc.ARCHITECTURE_DENSE,
        large_data=LargeData(ranking=RANKING.for_long_epochs()),
        description="embedding MLPs: NCF rating head (He et al. 2017), history-bag ranking head (Mult-DAE)",
    )
)
