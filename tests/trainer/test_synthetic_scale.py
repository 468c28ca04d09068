"""The large synthetic generator: its --data spec, exact sizes, realistic skew and something to learn."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.sources import SplitOptions, load_interactions
from trainer.data.splits import random_split
from trainer.data.synthetic import SyntheticConfig, synthetic_interactions
from trainer.data.synthetic_scale import ScaleConfig, generate_scale, parse_spec, ratings_per_user


def test_spec_parses_sizes_suffixes_and_seed() -> None:
    config = parse_spec("synthetic:users=160000,items=60_000,ratings=25M,seed=7")
    assert (config.num_users, config.num_items, config.num_ratings, config.seed) == (160000, 60000, 25_000_000, 7)
    assert parse_spec("synthetic:users=2k,items=500,ratings=20000", default_seed=3).seed == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:users=10,items=10,ratings=50,colour=red", r"unknown or malformed part 'colour=red'"),
        ("synthetic:users=10,items=10", r"missing ratings"),
        ("synthetic:users=ten,items=10,ratings=50", r"users='ten' is not a non-negative integer"),
        ("synthetic:users=-5,items=10,ratings=50", r"users='-5' is not a non-negative integer"),
        ("synthetic:users=10,users=20,items=10,ratings=50", r"users is given twice"),
        ("synthetic:users=10,items=10,ratings=5000", r"cannot be spread over users=10"),
        ("synthetic:users=0,items=10,ratings=0", r"needs users >= 1"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_plain_synthetic_is_still_the_small_built_in_set() -> None:
    data = load_interactions("synthetic", SplitOptions(seed=2))
    reference = synthetic_interactions(SyntheticConfig(seed=2))
    np.testing.assert_array_equal(data.ratings, reference.ratings)
    np.testing.assert_array_equal(data.users, reference.users)
    assert data.item_ids == reference.item_ids


def test_spec_through_load_interactions_has_the_exact_size() -> None:
    data = load_interactions("synthetic:users=300,items=200,ratings=9000", SplitOptions(seed=1))
    assert len(data) == 9000 and data.num_users == 300 and data.num_items == 200
    assert data.users.dtype == np.int64 and data.ratings.dtype == np.float32


@pytest.mark.parametrize(
    ("users", "items", "ratings"),
    [(400, 300, 12_000), (60, 40, 1_000), (3, 1000, 1_400)],  # mostly light users; all heavy (Gumbel); few giants
)
def test_each_user_rates_distinct_items_in_time_order(users: int, items: int, ratings: int) -> None:
    config = ScaleConfig(users, items, ratings, seed=5)
    data = generate_scale(config, progress=False)
    assert len(data) == ratings
    pairs = data.users * items + data.items
    assert len(np.unique(pairs)) == ratings, "one rating per (user, item)"
    counts = np.bincount(data.users, minlength=users)
    floor, cap = config.user_bounds
    assert counts.min() >= floor and counts.max() <= cap
    assert np.all(np.diff(data.users) >= 0), "rows grouped by user"
    same_user = np.diff(data.users) == 0
    assert np.all(np.diff(data.timestamps)[same_user] > 0), "time increases within each history"
    assert set(np.unique(data.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_generation_is_seeded() -> None:
    first = generate_scale(ScaleConfig(200, 150, 5000, seed=1), progress=False)
    again = generate_scale(ScaleConfig(200, 150, 5000, seed=1), progress=False)
    other = generate_scale(ScaleConfig(200, 150, 5000, seed=2), progress=False)
    np.testing.assert_array_equal(first.items, again.items)
    np.testing.assert_array_equal(first.ratings, again.ratings)
    assert not np.array_equal(first.items, other.items)


def test_popularity_and_activity_are_long_tailed() -> None:
    data = generate_scale(ScaleConfig(2000, 1000, 60_000, seed=0), progress=False)
    per_item = np.sort(np.bincount(data.items, minlength=1000))[::-1]
    assert per_item[:10].sum() > 0.08 * len(data), "the top 1% of items should hold far more than 1% of ratings"
    per_user = np.bincount(data.users)
    assert per_user.max() > 8 * np.median(per_user), "a few users should be far more active than the median"


def test_user_counts_sum_exactly_within_bounds_when_the_cap_binds() -> None:
    config = ScaleConfig(500, 100, 20_000, max_user_fraction=0.5, seed=4)  # mean 40 of a cap of 50
    counts = ratings_per_user(config, np.random.default_rng(0))
    assert counts.sum() == 20_000 and counts.max() == 50 and counts.min() >= config.user_bounds[0]


def test_ratings_follow_latent_preferences_a_model_can_learn() -> None:
    data = generate_scale(ScaleConfig(600, 300, 30_000, seed=3), progress=False)
    split = random_split(data, 0.2, seed=0)
    train, test = split.train, split.test
    mean = train.global_mean()
    user_offset = np.bincount(train.users, train.ratings - mean, data.num_users) / np.maximum(
        np.bincount(train.users, minlength=data.num_users), 1
    )
    item_offset = np.bincount(train.items, train.ratings - mean, data.num_items) / np.maximum(
        np.bincount(train.items, minlength=data.num_items), 1
    )
    predicted = mean + user_offset[test.users] + item_offset[test.items]
    rmse_biases = np.sqrt(np.mean((np.clip(predicted, 1, 5) - test.ratings) ** 2))
    rmse_mean = np.sqrt(np.mean((mean - test.ratings) ** 2))
    assert rmse_biases < 0.9 * rmse_mean
