"""Resolve a ``--data`` argument and a ``--split`` name into a train/test :class:`Split`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from trainer.data.interactions import Interactions
from trainer.data.readers import (
    ML100K_SPLITS,
    DataFormatError,
    read_delimited,
    read_movielens_100k,
    read_movielens_100k_split,
    read_movielens_ratings_dat,
)
from trainer.data.splits import Split, random_split, temporal_split
from trainer.data.synthetic import SyntheticConfig, synthetic_interactions
from trainer.data.synthetic_scale import SPEC_PREFIX, generate_scale, parse_spec

_LOGGER = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("random", "temporal", *ML100K_SPLITS)


@dataclass(frozen=True)
class SplitOptions:
    """How to split data that has no predefined split.

    Attributes:
        test_fraction: share of ratings held out by the ``random`` split.
        test_per_user: ratings per user held out by the ``temporal`` split (the most recent ones).
        seed: seeds the random split and the synthetic data.
        delimiter: field separator of a generic delimited file.
    """

    test_fraction: float = 0.2
    test_per_user: int = 5
    seed: int = 0
    delimiter: str = ","


def load_interactions(data: str, options: SplitOptions | None = None) -> Interactions:
    """Read all ratings named by ``data``: ``synthetic``, a MovieLens folder, ``ratings.dat`` or a delimited file.

    ``synthetic`` is the small built-in data set; ``synthetic:users=U,items=I,ratings=N[,seed=S]`` generates
    a large one of exactly that size (see :mod:`trainer.data.synthetic_scale`), seeded by ``options.seed``
    unless the spec names a seed.

    Raises:
        ValueError: a malformed ``synthetic:`` spec.
        DataFormatError: the path exists but its format is not recognised, or the file is malformed.
        FileNotFoundError: no such path.
    """
    options = options or SplitOptions()
    if data == "synthetic":
        return synthetic_interactions(SyntheticConfig(seed=options.seed))
    if data.startswith(SPEC_PREFIX):
        return generate_scale(parse_spec(data, default_seed=options.seed))
    path = Path(data)
    if path.is_dir():
        if (path / "u.data").is_file():
            return read_movielens_100k(path)
        if (path / "ratings.dat").is_file():
            return read_movielens_ratings_dat(path / "ratings.dat")
        raise DataFormatError(
            f"{path}: unknown data folder format: expected MovieLens 100K (u.data) or 1M/10M (ratings.dat)"
        )
    if not path.exists():
        raise FileNotFoundError(f"--data {data}: no such file or folder (or use 'synthetic' or --download ml-100k)")
    if path.suffix == ".dat":
        return read_movielens_ratings_dat(path)
    if path.suffix in (".csv", ".tsv", ".txt", ".data"):
        delimiter = "\t" if path.suffix in (".tsv", ".data") and options.delimiter == "," else options.delimiter
        return read_delimited(path, delimiter=delimiter)
    raise DataFormatError(
        f"{path}: unknown file format {path.suffix or '(no suffix)'}; use .csv/.tsv/.txt (user,item,rating"
        "[,timestamp]), MovieLens ratings.dat, or a MovieLens 100K folder"
    )


def load_split(data: str, split: str, options: SplitOptions | None = None) -> Split:
    """Read ``data`` and split it.

    Args:
        data: ``synthetic`` or a path (see :func:`load_interactions`).
        split: ``random``, ``temporal``, or a predefined MovieLens 100K split (``u1``..``u5``, ``ua``, ``ub``).
        options: split settings.

    Returns:
        The split, sharing one pair of id maps.

    Raises:
        ValueError: unknown split, or a predefined split asked of data that has none.
    """
    options = options or SplitOptions()
    if split in ML100K_SPLITS:
        path = Path(data)
        if not (path / f"{split}.base").is_file():
            raise ValueError(f"split {split!r} needs a MovieLens 100K folder holding {split}.base/.test; got {data}")
        train, test = read_movielens_100k_split(path, split)
        result = Split(train, test, split)
    elif split == "random":
        result = random_split(load_interactions(data, options), options.test_fraction, options.seed)
    elif split == "temporal":
        result = temporal_split(load_interactions(data, options), options.test_per_user)
    else:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    _LOGGER.info("%s split of %s: train %s; test %s", split, data, result.train.describe(), result.test.describe())
    return result
