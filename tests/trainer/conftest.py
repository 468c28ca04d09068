"""Fixtures for the trainer tests: tiny seeded synthetic data and splits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from trainer.data.interactions import Interactions
from trainer.data.splits import Split, random_split
from trainer.data.synthetic import synthetic_interactions
from trainer.tiny import TINY_DATA


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small models run fastest on one thread, and the CI machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_data() -> Interactions:
    return synthetic_interactions(TINY_DATA)


@pytest.fixture(scope="session")
def tiny_split(tiny_data: Interactions) -> Split:
    return random_split(tiny_data, 0.1, seed=0)


@pytest.fixture(scope="session")
def small_split() -> Split:
    """A little larger than tiny: enough signal for every model to beat the global mean clearly."""
    config = dataclasses.replace(TINY_DATA, num_users=300, num_items=200, mean_ratings_per_user=40, seed=1)
    return random_split(synthetic_interactions(config), 0.15, seed=1)


@pytest.fixture(scope="session")
def graph_arrays(tiny_split: Split) -> dict[str, object]:
    histories = tiny_split.train.histories()
    return {
        "history_offsets": histories.offsets,
        "history_items": histories.items,
        "history_ratings": histories.ratings,
    }
