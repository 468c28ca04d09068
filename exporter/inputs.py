"""Valid random inputs for a signature, built from its inputs' kinds: example inputs for tracing and parity rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from exporter.errors import ExportError
from protos.recsys.v1 import model_config_pb2 as mc
from protos.tensors import HISTORY_KINDS, INPUT_NAMES
from trainer.architecture import SignatureDeclaration
from trainer.data.interactions import UserHistories


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """The sizes that decide what a valid input is.

    Attributes:
        architecture: the registered architecture name.
        num_users: user indices are ``0 .. num_users - 1``.
        num_items: item indices are ``0 .. num_items - 1``.
        rating_min: lowest rating in stars (history ratings are drawn in the scale).
        rating_max: highest rating in stars.
        max_history_length: longest history a history signature reads; 0 when none does.
    """

    architecture: str
    num_users: int
    num_items: int
    rating_min: float
    rating_max: float
    max_history_length: int = 0


def reads_request_history(declaration: SignatureDeclaration) -> bool:
    """Whether the signature takes a history tensor (so parity checks several history lengths)."""
    return any(kind in HISTORY_KINDS for kind in declaration.inputs)


def random_inputs(
    shape: ModelShape,
    declaration: SignatureDeclaration,
    batch_size: int,
    history_length: int,
    generator: torch.Generator,
    users: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Random valid inputs of one signature, by name, in the signature's input order.

    Histories are right-padded with 0 (items and ratings) past each row's length; lengths are drawn
    in ``[1, history_length]`` with the first row always full, so the longest path is exercised.

    Args:
        shape: the model's sizes.
        declaration: the signature.
        batch_size: rows B.
        history_length: T for history inputs (1 <= T <= max_history_length); ignored otherwise.
        generator: seeded source of randomness, for reproducible parity figures.
        users: user indices to use for a user input instead of random ones (stored-history signatures).

    Returns:
        Input name -> tensor (int64 indices and lengths, float32 ratings).
    """
    drawn: dict[int, torch.Tensor] = {}
    if mc.TENSOR_KIND_HISTORY_ITEMS in declaration.inputs:
        items = torch.randint(0, shape.num_items, (batch_size, history_length), generator=generator)
        span = shape.rating_max - shape.rating_min
        ratings = shape.rating_min + span * torch.rand((batch_size, history_length), generator=generator)
        lengths = torch.randint(1, history_length + 1, (batch_size,), generator=generator)
        lengths[0] = history_length
        real = torch.arange(history_length).unsqueeze(0) < lengths.unsqueeze(1)
        drawn[mc.TENSOR_KIND_HISTORY_ITEMS] = torch.where(real, items, torch.zeros_like(items))
        drawn[mc.TENSOR_KIND_HISTORY_RATINGS] = torch.where(real, ratings, torch.zeros_like(ratings))
        drawn[mc.TENSOR_KIND_HISTORY_LENGTHS] = lengths
    if users is not None:
        drawn[mc.TENSOR_KIND_USER_INDEX] = torch.from_numpy(np.asarray(users, dtype=np.int64))
    else:
        drawn[mc.TENSOR_KIND_USER_INDEX] = torch.randint(0, shape.num_users, (batch_size,), generator=generator)
    drawn[mc.TENSOR_KIND_ITEM_INDEX] = torch.randint(0, shape.num_items, (batch_size,), generator=generator)
    return {INPUT_NAMES[kind]: drawn[kind] for kind in declaration.inputs}


def stored_history_users(
    histories: UserHistories, max_history_length: int, batch_size: int, generator: torch.Generator
) -> np.ndarray:
    """Users to check the stored-history signatures on: the hardest cases first, then random ones.

    The first rows are the user with the longest history, the one with the shortest history above
    ``max_history_length`` (its cut is the closest call) and the one with the shortest history; the
    rest are drawn with replacement among users that have a history. Users without one are never
    drawn: their rows of the state table mean nothing and must not be served.

    Args:
        histories: every user's stored history.
        max_history_length: the model's cut (0: no cut).
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
        raise ExportError("no user has a training history: the stored-history signatures have nothing to read")
    hardest = [users[np.argmax(counts[users])]]
    over = users[counts[users] > max_history_length] if max_history_length else users[:0]
    if len(over):
        hardest.append(over[np.argmin(counts[over])])
    hardest.append(users[np.argmin(counts[users])])
    drawn = users[torch.randint(0, len(users), (batch_size,), generator=generator).numpy()]
    return np.concatenate([list(dict.fromkeys(hardest)), drawn])[:batch_size].astype(np.int64)
