"""Embedding feed-forward rating model, NCF-style (He et al., "Neural Collaborative Filtering", WWW 2017)."""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models._base import PairRatingModel, check_index
from trainer.models.serving import DenseServing


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
    ) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1 or dim < 1 or hidden_dim < 1:
            raise ValueError("num_users, num_items, dim and hidden_dim must be positive")
        if num_layers < 1 or hidden_dim >> (num_layers - 1) < 1:
            raise ValueError(f"num_layers={num_layers} must be >= 1 and leave hidden_dim={hidden_dim} >= 1 wide")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
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
        )
        self.num_users, self.num_items, self.global_mean = num_users, num_items, float(global_mean)
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
        return self._tail(hidden) + self.global_mean + self.user_bias.weight[user, 0] + self.item_bias.weight[item, 0]

    @torch.no_grad()
    def recommend(self, user: torch.Tensor) -> torch.Tensor:
        """Unclipped scores of every item: int64 [B] -> float32 [B, num_items]."""
        check_index(user, self.num_users, "user")
        user_proj = self.user_in(self.user_embedding(user))
        item_proj = self.item_in(self.item_embedding.weight)
        hidden = torch.relu(user_proj.unsqueeze(1) + item_proj.unsqueeze(0))
        mlp = self._tail(hidden)
        return mlp + self.global_mean + self.user_bias.weight[user, 0].unsqueeze(1) + self.item_bias.weight[:, 0]

    @torch.no_grad()
    def serving_module(self) -> DenseServing:
        """A frozen copy for export with both halves of the first layer precomputed."""
        layers: list[nn.Module] = []
        for layer in self.hidden:
            layers += [copy.deepcopy(layer), nn.ReLU()]
        layers.append(copy.deepcopy(self.output))
        return DenseServing(
            self.user_in(self.user_embedding.weight),
            self.item_in(self.item_embedding.weight),
            nn.Sequential(*layers),
            self.user_bias.weight[:, 0],
            self.item_bias.weight[:, 0],
            self.global_mean,
            self.rating_min,
            self.rating_max,
        ).eval()
