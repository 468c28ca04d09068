"""A seeded synthetic rating data set: the offline default and the test fixture generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.data.interactions import Interactions


@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of the synthetic data set.

    Attributes:
        num_users: users to generate.
        num_items: items to generate.
        mean_ratings_per_user: average ratings per user (each user has at least ``min_ratings_per_user``).
        min_ratings_per_user: floor on ratings per user, so every user has a history.
        dim: size of the true latent factors.
        popularity_skew: Zipf exponent of item popularity (0 = uniform); real catalogues are long-tailed.
        noise: standard deviation of the rating noise, in stars.
        drift: how far each user's taste moves along a second factor over their history (gives the
            sequence model something the order reveals).
        seed: random seed; the same seed gives the same data.
    """

    num_users: int = 600
    num_items: int = 800
    mean_ratings_per_user: int = 60
    min_ratings_per_user: int = 10
    dim: int = 8
    popularity_skew: float = 0.8
    noise: float = 0.6
    drift: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.num_items < 2 or self.dim < 1:
            raise ValueError("synthetic data needs num_users >= 1, num_items >= 2 and dim >= 1")
        if not 1 <= self.min_ratings_per_user <= self.mean_ratings_per_user <= self.num_items:
            raise ValueError("need 1 <= min_ratings_per_user <= mean_ratings_per_user <= num_items")


def synthetic_interactions(config: SyntheticConfig | None = None) -> Interactions:
    """Generate integer 1-5 star ratings from latent factors, biases, popularity skew and time.

    The true rating is ``3.5 + b_u + b_i + <p_u(t), q_i>`` plus noise, rounded and clipped to 1-5, where
    ``p_u(t)`` drifts linearly over the user's history. Items are drawn without replacement with Zipf
    popularity; timestamps increase per user from a random start.

    Args:
        config: the shape; defaults to :class:`SyntheticConfig`.

    Returns:
        Interactions with ids ``u0..`` and ``i0..``.
    """
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    scale = 1.0 / np.sqrt(config.dim)
    user_factors = rng.normal(0.0, scale, (config.num_users, config.dim))
    user_drift = rng.normal(0.0, scale * config.drift, (config.num_users, config.dim))
    item_factors = rng.normal(0.0, scale, (config.num_items, config.dim))
    user_bias = rng.normal(0.0, 0.4, config.num_users)
    item_bias = rng.normal(0.0, 0.5, config.num_items)
    popularity = 1.0 / np.arange(1, config.num_items + 1) ** config.popularity_skew
    popularity = popularity[rng.permutation(config.num_items)]
    popularity /= popularity.sum()
    item_bias += 0.3 * (np.log(popularity) - np.log(popularity).mean()) / np.log(popularity).std()

    counts = (
        config.min_ratings_per_user
        + rng.geometric(1.0 / max(config.mean_ratings_per_user - config.min_ratings_per_user + 1, 1), config.num_users)
        - 1
    )
    counts = np.minimum(counts, config.num_items)
    users, items, stamps, progress = [], [], [], []
    for user, count in enumerate(counts):
        chosen = rng.choice(config.num_items, size=count, replace=False, p=popularity)
        start = rng.integers(0, 10**7)
        times = start + np.cumsum(rng.integers(1, 10**5, size=count))
        users.append(np.full(count, user))
        items.append(chosen)
        stamps.append(times)
        progress.append(np.linspace(0.0, 1.0, count))
    user = np.concatenate(users)
    item = np.concatenate(items)
    t = np.concatenate(progress)
    factors = user_factors[user] + (t - 0.5)[:, None] * user_drift[user] * 2.0
    true = 3.5 + user_bias[user] + item_bias[item] + (factors * item_factors[item]).sum(axis=1) * 1.5
    ratings = np.clip(np.rint(true + rng.normal(0.0, config.noise, len(true))), 1, 5).astype(np.float32)
    order = rng.permutation(len(user))
    return Interactions(
        user[order].astype(np.int64),
        item[order].astype(np.int64),
        ratings[order],
        np.concatenate(stamps)[order].astype(np.int64),
        tuple(f"u{k}" for k in range(config.num_users)),
        tuple(f"i{k}" for k in range(config.num_items)),
        (1.0, 5.0),
    )
