"""Id maps, histories, synthetic data, splits, and the proof that nothing from the test split leaks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainer.config import RankingConfig, TrainConfig
from trainer.data.interactions import Interactions
from trainer.data.splits import Split, random_split, temporal_split, validation_split
from trainer.data.synthetic import SyntheticConfig, synthetic_interactions
from trainer.experiment import train_and_evaluate


def test_ids_map_to_contiguous_indices_in_first_appearance_order() -> None:
    data = Interactions.from_raw(["b", "a", "b", "c"], ["x", "x", "y", "z"], np.array([1, 2, 3, 4]))
    assert data.user_ids == ("b", "a", "c") and data.item_ids == ("x", "y", "z")
    assert [data.user_ids[u] for u in data.users] == ["b", "a", "b", "c"]
    assert [data.item_ids[i] for i in data.items] == ["x", "x", "y", "z"]
    assert data.rating_scale == (1.0, 4.0)


def test_histories_are_time_ordered_with_ties_in_row_order() -> None:
    data = Interactions.from_raw(
        ["u", "u", "v", "u", "u"],
        ["i1", "i2", "i3", "i4", "i5"],
        np.array([1, 2, 3, 4, 5]),
        np.array([30, 10, 5, 10, 20]),
    )
    histories = data.histories()
    np.testing.assert_array_equal(histories.offsets, [0, 4, 5])
    assert [data.item_ids[i] for i in histories.items[:4]] == ["i2", "i4", "i5", "i1"]
    np.testing.assert_array_equal(histories.ratings[:4], [2, 4, 5, 1])
    items, ratings, lengths = histories.padded(np.array([1, 0]), max_length=3)
    np.testing.assert_array_equal(lengths, [1, 3])
    assert [data.item_ids[i] for i in items[1]] == ["i4", "i5", "i1"]  # the most recent three
    np.testing.assert_array_equal(items[0, 1:], [0, 0])
    np.testing.assert_array_equal(ratings[0], [3, 0, 0])


def test_synthetic_is_seeded_and_realistic() -> None:
    config = SyntheticConfig(num_users=100, num_items=80, mean_ratings_per_user=20, seed=3)
    first, again = synthetic_interactions(config), synthetic_interactions(config)
    np.testing.assert_array_equal(first.ratings, again.ratings)
    other = synthetic_interactions(dataclasses.replace(config, seed=4))
    assert not np.array_equal(first.ratings[:50], other.ratings[:50])
    assert set(np.unique(first.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(first.ratings)) == 5
    assert np.bincount(first.users).min() >= config.min_ratings_per_user
    counts = np.sort(np.bincount(first.items, minlength=80))[::-1]
    assert counts[:8].sum() > 2 * counts[-8:].sum(), "popularity should be skewed"
    pairs = first.users * 1000 + first.items
    assert len(np.unique(pairs)) == len(pairs), "one rating per (user, item)"


def _pairs(data: Interactions) -> set[tuple[int, int]]:
    return set(zip(data.users.tolist(), data.items.tolist(), strict=True))


def test_random_split_is_disjoint_complete_and_seeded(tiny_data: Interactions) -> None:
    split = random_split(tiny_data, 0.2, seed=5)
    assert len(split.train) + len(split.test) == len(tiny_data)
    assert not _pairs(split.train) & _pairs(split.test)
    assert len(split.test) == round(0.2 * len(tiny_data))
    np.testing.assert_array_equal(random_split(tiny_data, 0.2, seed=5).test.items, split.test.items)


def test_temporal_split_holds_out_each_users_latest(tiny_data: Interactions) -> None:
    split = temporal_split(tiny_data, test_per_user=3)
    for user in np.unique(tiny_data.users):
        train_times = split.train.timestamps[split.train.users == user]
        test_times = split.test.timestamps[split.test.users == user]
        assert len(train_times) >= 1
        assert len(test_times) == min(3, np.sum(tiny_data.users == user) - 1)
        if len(test_times):
            assert train_times.max() <= test_times.min()


def test_validation_is_carved_from_training_only(tiny_split: Split) -> None:
    fit, valid = validation_split(tiny_split.train, 0.1, seed=0)
    assert len(fit) + len(valid) == len(tiny_split.train)
    assert _pairs(valid) <= _pairs(tiny_split.train)
    assert not _pairs(valid) & _pairs(tiny_split.test)
    fit_t, valid_t = validation_split(tiny_split.train, 0.1, temporal=True)
    assert len(valid_t) > 0 and not _pairs(fit_t) & _pairs(valid_t)


@pytest.mark.parametrize("architecture", ["lstm", "gcn"])
def test_test_ratings_cannot_influence_training(architecture: str, tiny_split: Split) -> None:
    """Scramble the test ratings: the trained model must come out bit-identical.

    This proves the test split reaches neither the loss, nor the LSTM's histories, nor the GCN's graph.
    """
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(
        tiny_split.test, ratings=rng.integers(1, 6, len(tiny_split.test)).astype(np.float32)
    )
    other = Split(tiny_split.train, scrambled, tiny_split.name)
    config = TrainConfig(epochs=2, batch_size=16 if architecture == "lstm" else 512, progress=False)
    small = (
        {"dim": 8, "hidden_dim": 16, "max_history_length": 30}
        if architecture == "lstm"
        else {"hidden_dim": 20, "dim": 8}
    )
    rank = RankingConfig(epochs=2, eval_every=1, batch_size=64, progress=False)
    first = train_and_evaluate(
        architecture, tiny_split, overrides=small, config=config, ranking_config=rank, progress=False
    )
    second = train_and_evaluate(
        architecture, other, overrides=small, config=config, ranking_config=rank, progress=False
    )
    for key, value in first.model.state_dict().items():
        torch.testing.assert_close(value, second.model.state_dict()[key], rtol=0, atol=0)
    assert first.metrics["rmse"] != second.metrics["rmse"]  # the test ratings did change, and were evaluated
    if architecture == "gcn":
        edges = sum(int(adj._nnz()) for adj in first.model.adjacencies)
        assert edges == 2 * len(tiny_split.train)  # both directions of every training rating, nothing else
        assert int(first.model.ranking.adjacency._nnz()) == 2 * len(tiny_split.train)
