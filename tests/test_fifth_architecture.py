"""A fifth architecture, declared in this file alone, trains, exports and serves end to end.

It proves the design's claim: an architecture is one module and one registration. Nothing outside this
test names it; the trainer and exporter read its declaration, the server reads only tensor kinds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from protos.recsys.v1 import model_config_pb2 as mc
from trainer import architecture as registry
from trainer.checkpoint import save_checkpoint
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import UserHistories
from trainer.data.splits import random_split
from trainer.data.synthetic import synthetic_interactions
from trainer.experiment import train_and_evaluate
from trainer.losses import Towers
from trainer.models._base import RatingModel, as_index, check_index
from trainer.models.heads import FrozenDotRanking, PairServing, dot_scores, freeze
from trainer.models.signatures import user_index_signatures
from trainer.tiny import TINY_DATA

NAME = "biases"


class BiasRating(nn.Module):
    """Frozen ``mean + b_u + b_i``, clipped."""

    def __init__(self, user_bias: torch.Tensor, item_bias: torch.Tensor, mean: float, low: float, high: float) -> None:
        super().__init__()
        freeze(self, user_bias=user_bias, item_bias=item_bias)
        self.mean, self.low, self.high = mean, low, high

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (self.mean + self.user_bias[user] + self.item_bias[item]).clamp(self.low, self.high)


class TinyRanking(nn.Module):
    def __init__(self, num_users: int, num_items: int, dim: int) -> None:
        super().__init__()
        self.users = nn.Parameter(torch.empty(num_users, dim))
        self.items = nn.Parameter(torch.empty(num_items, dim))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.users, std=0.1)
        nn.init.normal_(self.items, std=0.1)
        nn.init.zeros_(self.item_bias)


class BiasModel(RatingModel):
    """Rates by global mean and biases; ranks by a small dot-product head."""

    architecture = NAME

    def __init__(
        self,
        num_users: int,
        num_items: int,
        global_mean: float = 3.5,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        dim: int = 4,
    ) -> None:
        super().__init__()
        self._remember(
            num_users=num_users,
            num_items=num_items,
            global_mean=float(global_mean),
            rating_min=float(rating_min),
            rating_max=float(rating_max),
            dim=dim,
        )
        self.num_users, self.num_items, self.global_mean = num_users, num_items, float(global_mean)
        self.user_bias = nn.Parameter(torch.zeros(num_users))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.ranking = TinyRanking(num_users, num_items, dim)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.global_mean + self.user_bias[user] + self.item_bias[item]

    def penalty(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (self.user_bias[user].pow(2) + self.item_bias[item].pow(2)).mean()

    @torch.no_grad()
    def predict(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        check_index(user, self.num_users, "user")
        return self.clip(self(user, item))

    def ranking_towers(self, inputs: tuple[torch.Tensor, ...]) -> Towers:
        queries = self.ranking.users[inputs[0]]
        return Towers(queries, self.ranking.items, self.ranking.item_bias, queries.pow(2).sum(-1).mean())

    @torch.no_grad()
    def rank(self, users: np.ndarray | torch.Tensor, histories: UserHistories) -> torch.Tensor:
        return dot_scores(self.ranking.users[as_index(users)], self.ranking.items, self.ranking.item_bias)

    @torch.no_grad()
    def serving_module(self, histories: UserHistories) -> PairServing:
        rating = BiasRating(self.user_bias, self.item_bias, self.global_mean, self.rating_min, self.rating_max)
        ranking = FrozenDotRanking(self.ranking.users, self.ranking.items, self.ranking.item_bias)
        return PairServing(rating, ranking).eval()


@pytest.fixture
def fifth_architecture(monkeypatch: pytest.MonkeyPatch) -> Iterator[registry.Architecture]:
    """The declaration, registered for this test only (the registry is restored afterwards)."""
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    yield registry.register(
        registry.Architecture(
            name=NAME,
            model_class=BiasModel,
            signatures=user_index_signatures(),
            defaults={"dim": 4},
            training=TrainConfig(epochs=6, batch_size=256, learning_rate=5e-2, patience=6, progress=False),
            ranking=RankingConfig(epochs=6, eval_every=3, batch_size=64, learning_rate=5e-2, progress=False),
        )
    )


def test_a_fifth_architecture_trains_exports_and_serves_without_changes_elsewhere(
    fifth_architecture: registry.Architecture,
    tmp_path: Path,
    start_server: Callable[..., Any],
) -> None:
    from client import RecsysClient
    from exporter import export_checkpoint

    assert NAME in registry.names()
    split = random_split(synthetic_interactions(dataclasses.replace(TINY_DATA, seed=3)), 0.1, seed=3)
    trained = train_and_evaluate(NAME, split, progress=False)
    assert trained.metrics["rmse"] < 1.2 and trained.fit.epochs_run == 6
    checkpoint = save_checkpoint(tmp_path / "run" / NAME / "checkpoint.pt", trained.model, split.train)

    exported = export_checkpoint(checkpoint, tmp_path / "repository")
    config = exported.config
    assert config.architecture_name == NAME and config.architecture == mc.ARCHITECTURE_UNSPECIFIED
    assert [s.name for s in config.signatures] == ["predict", "recommend"]
    assert config.signatures[1].outputs[0].kind == mc.TENSOR_KIND_RANKING_SCORES
    assert exported.parity.max_abs_diff <= exported.parity.tolerance

    users = [split.train.user_ids[u] for u in range(4)]
    items = [split.train.item_ids[i] for i in (0, 5, 9, 2)]
    histories = split.train.histories()
    server = start_server(tmp_path / "repository")
    with RecsysClient(server.target) as client:
        ratings = client.predict(NAME, users, items).ratings
        results = client.recommend(NAME, users, k=5).results
    expected = trained.model.rate(np.arange(4), np.array([0, 5, 9, 2]), histories).numpy()
    np.testing.assert_allclose(ratings, expected, atol=1e-5)
    scores = trained.model.rank(np.arange(4), histories)
    for row, result in enumerate(results):
        seen = histories.items[histories.offsets[row] : histories.offsets[row + 1]]
        scores[row, torch.from_numpy(seen)] = -torch.inf
        top = torch.topk(scores[row], 5).indices.tolist()
        assert list(result.item_ids) == [split.train.item_ids[i] for i in top]
