"""Valid random inputs for a signature: example inputs for tracing and the rows parity compares on."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from exporter.errors import ExportError
from exporter.signatures import STORED_HISTORY_SIGNATURES, eager_method
from trainer.data.interactions import Histories


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """The sizes that decide what a valid input is.

    Attributes:
        architecture: ``mf``, ``dense``, ``lstm`` or ``gcn``.
        num_users: user indices are ``0 .. num_users - 1``.
        num_items: item indices are ``0 .. num_items - 1``.
        rating_min: lowest rating in stars (history ratings are drawn in the scale).
        rating_max: highest rating in stars.
        max_history_length: longest LSTM history; 0 for the other architectures.
    """

    architecture: str
    num_users: int
    num_items: int
    rating_min: float
    rating_max: float
    max_history_length: int = 0

    @property
    def takes_history(self) -> bool:
        """Whether the model reads a history ([B, T] inputs) instead of a user index."""
        return self.architecture == "lstm"


def random_inputs(
    shape: ModelShape, signature: str, batch_size: int, history_length: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random valid inputs of one signature, in the signature's input order.

    Histories are right-padded with 0 (items and ratings) past each row's length; lengths are drawn
    in ``[1, history_length]`` with the first row always full, so the longest path is exercised.

    Args:
        shape: the model's sizes.
        signature: a name from :data:`exporter.signatures.SIGNATURE_NAMES`.
        batch_size: rows B.
        history_length: T for the LSTM's history signatures (1 <= T <= max_history_length); ignored otherwise.
        generator: seeded source of randomness, for reproducible parity figures.

    Returns:
        Input name -> tensor (int64 indices and lengths, float32 ratings).
    """
    inputs: dict[str, torch.Tensor] = {}
    if shape.takes_history and signature not in STORED_HISTORY_SIGNATURES:
        items = torch.randint(0, shape.num_items, (batch_size, history_length), generator=generator)
        span = shape.rating_max - shape.rating_min
        ratings = shape.rating_min + span * torch.rand((batch_size, history_length), generator=generator)
        lengths = torch.randint(1, history_length + 1, (batch_size,), generator=generator)
        lengths[0] = history_length
        real = torch.arange(history_length).unsqueeze(0) < lengths.unsqueeze(1)
        inputs["history_items"] = torch.where(real, items, torch.zeros_like(items))
        inputs["history_ratings"] = torch.where(real, ratings, torch.zeros_like(ratings))
        inputs["lengths"] = lengths
    else:
        inputs["user"] = torch.randint(0, shape.num_users, (batch_size,), generator=generator)
    if eager_method(signature) == "predict":
        inputs["item"] = torch.randint(0, shape.num_items, (batch_size,), generator=generator)
    return inputs


def stored_history_users(
    histories: Histories, max_history_length: int, batch_size: int, generator: torch.Generator
) -> np.ndarray:
    """Users to check the stored-history signatures on: the hardest cases first, then random ones.

    The first rows are the user with the longest history, the one with the shortest history above
    ``max_history_length`` (its cut is the closest call) and the one with the shortest history; the
    rest are drawn with replacement among users that have a history. Users without one are never
    drawn: their rows of the state table are zero and must not be served.

    Args:
        histories: every user's stored history.
        max_history_length: the LSTM's cut.
        batch_size: rows B.
        generator: seeded source of randomness.

    Returns:
        int64 [B] user indices.

    Raises:
        ExportError: no user has a history.
    """
    counts = histories.lengths()
    users = np.flatnonzero(counts > 0)
    if not len(users):
        raise ExportError("no user has a training history: the LSTM's predict_user/recommend_user have nothing to read")
    hardest = [users[np.argmax(counts[users])]]
    over = users[counts[users] > max_history_length]
    if len(over):
        hardest.append(over[np.argmin(counts[over])])
    hardest.append(users[np.argmin(counts[users])])
    drawn = users[torch.randint(0, len(users), (batch_size,), generator=generator).numpy()]
    return np.concatenate([list(dict.fromkeys(hardest)), drawn])[:batch_size].astype(np.int64)
