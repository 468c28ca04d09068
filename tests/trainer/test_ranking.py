"""Ranking heads: each architecture's objective beats popularity on planted preferences; sampling and losses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainer import architecture as registry
from trainer.baselines import baseline_metrics
from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions
from trainer.data.splits import Split, random_split
from trainer.experiment import train_and_evaluate
from trainer.losses import Positives, Towers, bpr_loss, sampled_softmax_loss, softmax_loss
from trainer.sampling import positive_keys, sample_negatives


def planted(seed: int = 0, users: int = 240, items: int = 120, groups: int = 6) -> Split:
    """Users in groups, each group liking its own items; a few globally popular items everyone rates low.

    Popularity ranks the popular items first, which nobody likes: a personalised ranking must find the group.
    """
    rng = np.random.default_rng(seed)
    per_group = items // groups
    rows_u, rows_i, ratings, stamps = [], [], [], []
    popular = np.arange(6)
    for user in range(users):
        group = user % groups
        liked = rng.choice(np.arange(group * per_group, (group + 1) * per_group), 12, replace=False)
        chosen = np.concatenate([liked, popular])
        rng.shuffle(chosen)
        for step, item in enumerate(chosen):
            rows_u.append(f"u{user}")
            rows_i.append(f"i{item}")
            ratings.append(2.0 if item in popular else 5.0)
            stamps.append(step)
    data = Interactions.from_raw(rows_u, rows_i, np.array(ratings), np.array(stamps), rating_scale=(1.0, 5.0))
    return random_split(data, 0.25, seed)


@pytest.fixture(scope="module")
def planted_split() -> Split:
    return planted()


@pytest.mark.parametrize("name", registry.BUILT_IN)
def test_each_ranking_objective_beats_popularity_on_planted_preferences(name: str, planted_split: Split) -> None:
    declared = registry.get(name)
    rating = dataclasses.replace(declared.training, epochs=2, patience=2, refit=False, progress=False)
    ranking = dataclasses.replace(
        declared.ranking, epochs=12, eval_every=4, patience=3, batch_size=32, learning_rate=1e-2, progress=False
    )
    overrides = dict(declared.tiny) | ({"max_history_length": 30} if name == "lstm" else {})
    trained = train_and_evaluate(
        name, planted_split, overrides=overrides, config=rating, ranking_config=ranking, progress=False
    )
    popularity = baseline_metrics(planted_split)["popularity"]["recall@10"]
    assert trained.metrics["recall@10"] > popularity + 0.2, (trained.metrics["recall@10"], popularity)
    assert trained.metrics["coverage@10"] > 0.5  # lists differ by group, not the same ten items for all


def test_negatives_are_never_the_users_own_items() -> None:
    rng = np.random.default_rng(0)
    num_items = 50
    users = np.repeat(np.arange(20), 30)
    items = np.concatenate([rng.choice(num_items, 30, replace=False) for _ in range(20)])  # 60% of the catalogue
    keys = positive_keys(users, items, num_items)
    rows = rng.integers(0, 20, 500)
    negatives = sample_negatives(num_items, keys, rows, 40, rng)
    assert negatives.shape == (500, 40) and negatives.min() >= 0 and negatives.max() < num_items
    own = {(u, i) for u, i in zip(users.tolist(), items.tolist(), strict=True)}
    collisions = sum((int(r), int(n)) in own for r, row in zip(rows, negatives, strict=True) for n in row)
    assert collisions == 0
    # a user who rated 48 of 50 items still gets only the two others, however many draws it needs
    dense = positive_keys(np.zeros(48, np.int64), np.arange(2, 50), num_items)
    assert set(sample_negatives(num_items, dense, np.zeros(200, np.int64), 5, rng).ravel().tolist()) == {0, 1}
    with pytest.raises(ValueError, match="rated every item"):
        everything = positive_keys(np.zeros(num_items, np.int64), np.arange(num_items), num_items)
        sample_negatives(num_items, everything, np.zeros(3, np.int64), 2, rng)


def test_losses_prefer_the_positive() -> None:
    items = torch.eye(4)
    positives = Positives(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1.0, 1.0]))
    negatives = torch.tensor([[2, 3], [2, 3]])
    good = Towers(torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]]), items, torch.zeros(4), torch.tensor(0.0))
    bad = Towers(torch.tensor([[0, 0, 5.0, 0], [0, 0, 0, 5.0]]), items, torch.zeros(4), torch.tensor(0.0))
    for loss in (
        softmax_loss,
        lambda t, p: sampled_softmax_loss(t, p, negatives),
        lambda t, p: bpr_loss(t, p, negatives),
    ):
        assert loss(good, positives) < loss(bad, positives)
        assert loss(good, positives).dim() == 0 and loss(good, positives) > 0


@pytest.mark.parametrize("loss", ["sampled_softmax", "bpr"])
def test_sampled_losses_train_mf(loss: str, planted_split: Split) -> None:
    declared = registry.get("mf")
    trained = train_and_evaluate(
        "mf",
        planted_split,
        overrides=dict(declared.tiny),
        config=TrainConfig(epochs=1, refit=False, progress=False),
        ranking_config=RankingConfig(
            epochs=12, eval_every=4, batch_size=32, learning_rate=2e-2, loss=loss, negatives=20, progress=False
        ),
        progress=False,
    )
    popularity = baseline_metrics(planted_split)["popularity"]["recall@10"]
    assert trained.metrics["recall@10"] > popularity + 0.2


def test_lightgcn_sampling_keeps_queries_exact_and_still_beats_popularity(planted_split: Split) -> None:
    from trainer import config
    from trainer.experiment import build_for
    from trainer.models import gcn

    train = planted_split.train
    exact = build_for("gcn", train, dict(registry.get("gcn").tiny))
    assert exact.ranking.neighbours == 0  # a small graph propagates exactly
    longest = int(train.histories().lengths().max()) + int(np.bincount(train.items).max())
    for neighbours, items_exact in ((longest, True), (3, False)):
        sampled = build_for("gcn", train, dict(registry.get("gcn").tiny, ranking_neighbours=neighbours))
        sampled.load_state_dict(exact.state_dict())
        users = torch.tensor([0, 5, 17])
        want, got = exact.ranking.towers(users), sampled.ranking.towers(users)
        torch.testing.assert_close(got.queries, want.queries)
        assert torch.allclose(got.item_vectors, want.item_vectors) == items_exact
    original = config.LARGE_DATA_RATINGS
    try:
        config.LARGE_DATA_RATINGS = len(train)
        assert build_for("gcn", train).ranking.neighbours == gcn.SAMPLED_NEIGHBOURS
    finally:
        config.LARGE_DATA_RATINGS = original
    declared = registry.get("gcn")
    rating = dataclasses.replace(declared.training, epochs=2, patience=2, refit=False, progress=False)
    ranking = dataclasses.replace(
        declared.ranking, epochs=12, eval_every=4, patience=3, batch_size=32, learning_rate=1e-2, progress=False
    )
    trained = train_and_evaluate(
        "gcn",
        planted_split,
        overrides=dict(declared.tiny, ranking_neighbours=3),
        config=rating,
        ranking_config=ranking,
        progress=False,
    )
    popularity = baseline_metrics(planted_split)["popularity"]["recall@10"]
    assert trained.metrics["recall@10"] > popularity + 0.2, (trained.metrics["recall@10"], popularity)
