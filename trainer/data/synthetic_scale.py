"""Synthetic rating data of any size, generated in chunks of users so memory stays near the result's size.

The shape follows real rating logs such as MovieLens 25M: a Zipf-like long tail of item popularity, a
heavy-tailed number of ratings per user (log-normal, with a floor and a cap), per-user timestamps that
increase over each history, and integer 1-5 star ratings driven by latent user and item factors, biases
and a drift of each user's taste over time, so that every model has something real to learn.

Items are drawn for each user by successive sampling without replacement proportional to popularity:
iid draws de-duplicated in draw order (exact successive sampling) for most users, and Gumbel top-k over
the not-yet-chosen items for heavy users and the few that the draws leave short (also exact). Only the
final arrays are allocated for the whole data set; everything else lives per chunk of users.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from trainer.data.interactions import Interactions

_LOGGER = logging.getLogger(__name__)

_CHUNK_RATINGS = 1 << 19  # ratings per chunk of users: temporaries stay near 100 MB whatever the total
_RATE_ROWS = 1 << 16  # rows whose factors are gathered at once (16 dims: 4 MB per array)
_GUMBEL_CELLS = 1 << 22  # users x items scored at once by the exact Gumbel top-k sampler (16 MB float32)
_DRAW_ROUNDS = 3


@dataclass(frozen=True)
class ScaleConfig:
    """Size and shape of a large synthetic data set.

    Attributes:
        num_users: users to generate (each gets at least ``min_ratings_per_user`` ratings).
        num_items: items in the catalogue.
        num_ratings: exact number of ratings to generate.
        seed: random seed; the same config gives the same data.
        dim: size of the true latent factors.
        popularity_skew: Zipf exponent of item popularity (MovieLens 25M's head is close to 1).
        activity_sigma: log-normal sigma of ratings per user (1.0 gives MovieLens-like heavy users).
        min_ratings_per_user: floor on each user's ratings (MovieLens keeps users with 20 or more).
        max_user_fraction: cap on one user's ratings as a share of the catalogue.
        noise: standard deviation of the rating noise, in stars.
        drift: how far each user's taste moves over their history (something the time order reveals).
    """

    num_users: int
    num_items: int
    num_ratings: int
    seed: int = 0
    dim: int = 16
    popularity_skew: float = 1.0
    activity_sigma: float = 1.0
    min_ratings_per_user: int = 5
    max_user_fraction: float = 0.5
    noise: float = 0.6
    drift: float = 0.5

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.num_items < 2 or self.dim < 1:
            raise ValueError(
                f"synthetic data needs users >= 1, items >= 2 and dim >= 1, got users={self.num_users}, "
                f"items={self.num_items}, dim={self.dim}"
            )
        if not 0.0 < self.max_user_fraction <= 1.0:
            raise ValueError(f"max_user_fraction must be in (0, 1], got {self.max_user_fraction}")
        floor, cap = self.user_bounds
        if not self.num_users * floor <= self.num_ratings <= self.num_users * cap:
            raise ValueError(
                f"ratings={self.num_ratings} cannot be spread over users={self.num_users} with {floor} to {cap} "
                f"ratings each (items={self.num_items}); ask for between {self.num_users * floor} and "
                f"{self.num_users * cap} ratings, or change users or items"
            )
        if self.num_ratings >= 2**31:
            raise ValueError(f"ratings={self.num_ratings} is beyond this generator's int32 chunks; ask for < 2**31")

    @property
    def user_bounds(self) -> tuple[int, int]:
        """(floor, cap) on ratings per user, the floor lowered where the catalogue or the total is small."""
        cap = max(1, min(self.num_items, math.floor(self.max_user_fraction * self.num_items)))
        floor = max(1, min(self.min_ratings_per_user, cap, self.num_ratings // self.num_users))
        return floor, cap


def ratings_per_user(config: ScaleConfig, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed counts, int64 [num_users], within the config's bounds and summing to ``num_ratings``.

    Log-normal weights share out what the floor leaves; users over the cap give their excess to the
    others in proportion to their weights until nobody is over it.
    """
    floor, cap = config.user_bounds
    weights = rng.lognormal(0.0, config.activity_sigma, config.num_users)
    counts = np.full(config.num_users, floor, dtype=np.int64)
    remaining = config.num_ratings - counts.sum()
    open_users = np.ones(config.num_users, dtype=bool)
    while remaining > 0:
        share = weights * open_users
        share = share / share.sum() * remaining
        extra = np.floor(share).astype(np.int64)
        leftover = int(remaining - extra.sum())
        if leftover:  # largest fractional parts get the last units, so the total is exact
            extra[np.argpartition(-(share - extra), leftover - 1)[:leftover]] += 1
        counts += extra
        over = counts > cap
        remaining = int((counts[over] - cap).sum())
        counts[over] = cap
        open_users &= counts < cap
    return counts


def _item_popularity(config: ScaleConfig, rng: np.random.Generator) -> np.ndarray:
    """float64 [num_items] Zipf popularity over a random permutation of item indices, summing to 1."""
    popularity = 1.0 / np.arange(1, config.num_items + 1, dtype=np.float64) ** config.popularity_skew
    popularity = popularity[rng.permutation(config.num_items)]
    return popularity / popularity.sum()


def _dedupe_first(users: np.ndarray, items: np.ndarray, counts: np.ndarray, num_items: int) -> np.ndarray:
    """Row positions of each (user, item) pair's first draw, keeping at most ``counts[user]`` per user, in order."""
    keys = users.astype(np.int64) * num_items + items
    _, first = np.unique(keys, return_index=True)
    first.sort()  # draw order again: keeping the first distinct draws is successive sampling
    kept_users = users[first]
    starts = np.searchsorted(kept_users, np.arange(len(counts)))
    rank = np.arange(len(first)) - starts[kept_users]
    return first[rank < counts[kept_users]]


def _gumbel_fill(
    users: np.ndarray, missing: np.ndarray, chosen: list[np.ndarray], log_popularity: np.ndarray, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Exact successive sampling of ``missing[j]`` more items for ``users[j]``, excluding ``chosen[j]``."""
    num_items = len(log_popularity)
    out_users, out_items = [], []
    step = max(1, _GUMBEL_CELLS // num_items)
    for start in range(0, len(users), step):
        block = slice(start, start + step)
        # Gumbel noise as -log(Exp(1)), generated and transformed in place in float32
        keys = rng.standard_exponential((len(users[block]), num_items), dtype=np.float32)
        np.maximum(keys, np.float32(1e-30), out=keys)
        np.log(keys, out=keys)
        np.subtract(log_popularity[None, :], keys, out=keys)
        for row, (user, need, taken) in enumerate(zip(users[block], missing[block], chosen[block], strict=True)):
            keys[row, taken] = -np.inf
            best = np.argpartition(-keys[row], need - 1)[:need]
            best = best[np.argsort(-keys[row, best], kind="stable")]
            out_users.append(np.full(need, user, dtype=np.int32))
            out_items.append(best.astype(np.int32))
    if not out_users:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    return np.concatenate(out_users), np.concatenate(out_items)


def _sample_items(
    counts: np.ndarray, cdf: np.ndarray, log_popularity: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(local user int32 [n], item int32 [n]) for one chunk: ``counts[u]`` distinct items per user, grouped by user.

    Heavy users (over 1/16 of the catalogue), whom iid draws would need many rounds to fill, and users
    the draw rounds leave short go to the exact Gumbel sampler.
    """
    num_items = len(cdf)
    heavy = counts > num_items // 16
    need = np.where(heavy, 0, counts)
    users = np.empty(0, np.int32)
    items = np.empty(0, np.int32)
    for _ in range(_DRAW_ROUNDS):
        have = np.bincount(users, minlength=len(counts))
        short = need - have
        if not short.any():
            break
        draws = np.ceil(short * 1.25 + 2).astype(np.int64) * (short > 0)
        new_users = np.repeat(np.arange(len(counts), dtype=np.int32), draws)
        new_items = np.searchsorted(cdf, rng.random(len(new_users)), side="right").astype(np.int32)
        new_items = np.minimum(new_items, num_items - 1)
        # accepted pairs first, then the new draws, all grouped by user so the order within a user is draw order
        order = np.argsort(np.concatenate([users, new_users]), kind="stable")
        users = np.concatenate([users, new_users])[order]
        items = np.concatenate([items, new_items])[order]
        keep = _dedupe_first(users, items, need, num_items)
        users, items = users[keep], items[keep]
    have = np.bincount(users, minlength=len(counts))
    short_users = np.flatnonzero(counts > have)
    if len(short_users):
        starts = np.concatenate([[0], np.cumsum(have)])
        taken = [items[starts[u] : starts[u + 1]] for u in short_users]
        extra_users, extra_items = _gumbel_fill(
            short_users, counts[short_users] - have[short_users], taken, log_popularity, rng
        )
        order = np.argsort(np.concatenate([users, extra_users]), kind="stable")
        users = np.concatenate([users, extra_users])[order]
        items = np.concatenate([items, extra_items])[order]
    return users, items


def _chunks(counts: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) user ranges holding about ``_CHUNK_RATINGS`` ratings each."""
    bounds = np.searchsorted(np.cumsum(counts), np.arange(_CHUNK_RATINGS, int(counts.sum()), _CHUNK_RATINGS))
    edges = np.unique(np.concatenate([[0], bounds + 1, [len(counts)]]))
    edges = edges[edges <= len(counts)]
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def generate_scale(config: ScaleConfig, *, progress: bool = True) -> Interactions:
    """Generate ``config.num_ratings`` ratings, chunk by chunk of users.

    The true rating of user u on item i at history position t in [0, 1] is
    ``3.5 + b_u + b_i + 1.5 <p_u + (2t - 1) d_u, q_i>`` plus Gaussian noise, rounded and clipped to 1-5
    stars; popular items get a higher bias, as in real data.

    Args:
        config: sizes and shape.
        progress: show a tqdm bar over the chunks.

    Returns:
        Interactions with ids ``u0..`` and ``i0..``, rows grouped by user (user 0 first, like MovieLens'
        ``ratings.csv``) and in time order within each user; every user index and every id exists, an
        item nobody drew included.
    """
    rng = np.random.default_rng(config.seed)
    scale = np.float32(1.0 / np.sqrt(config.dim))
    user_factors = (rng.standard_normal((config.num_users, config.dim), np.float32) * scale).astype(np.float32)
    user_drift = rng.standard_normal((config.num_users, config.dim), np.float32) * (scale * config.drift)
    item_factors = rng.standard_normal((config.num_items, config.dim), np.float32) * scale
    user_bias = rng.normal(0.0, 0.4, config.num_users).astype(np.float32)
    popularity = _item_popularity(config, rng)
    log_popularity = np.log(popularity)
    item_bias = rng.normal(0.0, 0.5, config.num_items).astype(np.float32)
    item_bias += (0.3 * (log_popularity - log_popularity.mean()) / max(log_popularity.std(), 1e-9)).astype(np.float32)
    cdf = np.cumsum(popularity)
    counts = ratings_per_user(config, rng)
    starts = rng.integers(9 * 10**8, 14 * 10**8, config.num_users)  # 1998-2014 in Unix seconds, MovieLens' span

    n = config.num_ratings
    users = np.empty(n, np.int64)
    items = np.empty(n, np.int64)
    ratings = np.empty(n, np.float32)
    stamps = np.empty(n, np.int64)
    position = 0
    chunks = _chunks(counts)
    for first, stop in tqdm(chunks, desc="synthetic ratings", unit="chunk", disable=not progress):
        chunk_counts = counts[first:stop]
        local, chunk_items = _sample_items(chunk_counts, cdf, log_popularity.astype(np.float32), rng)
        size = len(local)
        user = local.astype(np.int64) + first
        begin = np.cumsum(chunk_counts) - chunk_counts
        rank = np.arange(size, dtype=np.int64) - np.repeat(begin, chunk_counts)
        t = (rank / np.maximum(np.repeat(chunk_counts, chunk_counts) - 1, 1)).astype(np.float32)
        true = 3.5 + user_bias[user] + item_bias[chunk_items]
        for lo in range(0, size, _RATE_ROWS):
            part = slice(lo, lo + _RATE_ROWS)
            rows, cols = user[part], chunk_items[part]
            taste = user_factors[rows] + (2.0 * t[part] - 1.0)[:, None] * user_drift[rows]
            true[part] += 1.5 * np.einsum("nd,nd->n", taste, item_factors[cols])
        true += rng.standard_normal(size, np.float32) * np.float32(config.noise)
        gaps = rng.exponential(3600.0, size).astype(np.int64) + 1
        clock = np.cumsum(gaps)
        clock -= np.repeat(clock[begin] - gaps[begin], chunk_counts)
        block = slice(position, position + size)
        users[block] = user
        items[block] = chunk_items
        ratings[block] = np.clip(np.rint(true), 1, 5)
        stamps[block] = np.repeat(starts[first:stop], chunk_counts) + clock
        position += size
    if position != n:
        raise RuntimeError(f"generated {position} ratings instead of {n}: a bug in the sampler, please report it")
    _LOGGER.info("generated %d synthetic ratings by %d users on %d items", n, config.num_users, config.num_items)
    return Interactions(
        users,
        items,
        ratings,
        stamps,
        tuple(f"u{k}" for k in range(config.num_users)),
        tuple(f"i{k}" for k in range(config.num_items)),
        (1.0, 5.0),
    )


SPEC_PREFIX = "synthetic:"
_SPEC_KEYS = {"users": "num_users", "items": "num_items", "ratings": "num_ratings", "seed": "seed"}


def parse_spec(spec: str, default_seed: int = 0) -> ScaleConfig:
    """Parse ``synthetic:users=160000,items=60000,ratings=25000000[,seed=0]`` (``--data``'s large form).

    Values are decimal integers; ``_`` separators and ``k``/``M`` suffixes are allowed (``ratings=25M``).

    Args:
        spec: the ``--data`` argument.
        default_seed: the seed when the spec names none (the training run's ``--seed``).

    Returns:
        The config.

    Raises:
        ValueError: not the ``synthetic:`` form, an unknown or repeated key, a missing size, or a value
            that is not a non-negative integer; the message says what a valid spec looks like.
    """
    example = "synthetic:users=160000,items=60000,ratings=25000000[,seed=0]"
    if not spec.startswith(SPEC_PREFIX):
        raise ValueError(f"--data {spec!r}: a synthetic spec starts with {SPEC_PREFIX!r}, e.g. {example}")
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec[len(SPEC_PREFIX) :].split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in _SPEC_KEYS:
            raise ValueError(
                f"--data {spec!r}: unknown or malformed part {part!r}; keys are {', '.join(_SPEC_KEYS)}, e.g. {example}"
            )
        if key in values:
            raise ValueError(f"--data {spec!r}: {key} is given twice")
        values[key] = _parse_count(spec, key, raw.strip())
    missing = [key for key in ("users", "items", "ratings") if key not in values]
    if missing:
        raise ValueError(f"--data {spec!r}: missing {', '.join(missing)}; e.g. {example}")
    values.setdefault("seed", default_seed)
    return ScaleConfig(**{_SPEC_KEYS[key]: value for key, value in values.items()})


def _parse_count(spec: str, key: str, raw: str) -> int:
    multiplier = {"k": 10**3, "K": 10**3, "m": 10**6, "M": 10**6}.get(raw[-1:], 1)
    digits = raw[:-1] if multiplier > 1 else raw
    if not digits.replace("_", "").isdigit():
        raise ValueError(f"--data {spec!r}: {key}={raw!r} is not a non-negative integer (like 25000000 or 25M)")
    return int(digits.replace("_", "")) * multiplier
