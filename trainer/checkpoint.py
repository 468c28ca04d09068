"""Checkpoint files: one ``torch.save`` of plain tensors, numbers and strings per trained model.

The layout is the contract of docs/interfaces.md section 1; ``torch.load(path, weights_only=True)``
reads it, so loading never unpickles code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer import architecture as architectures
from trainer.data.interactions import Interactions, UserHistories
from trainer.models import RatingModel, build_model
from trainer.models._base import HParam

FORMAT_VERSION = 2
"""2: models carry a ranking head (``ranking.*`` weights); 1 had rating heads only."""
_REQUIRED = (
    "format_version",
    "architecture",
    "hparams",
    "state_dict",
    "user_ids",
    "item_ids",
    "history_offsets",
    "history_items",
    "history_ratings",
    "item_popularity",
    "rating_scale",
)


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable, or not one this trainer wrote."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the stored fields plus the rebuilt model and the file's digest.

    Attributes:
        path: the file it was read from.
        format_version: layout version (2).
        architecture: a registered architecture name.
        hparams: constructor keyword arguments of the model.
        state_dict: the model weights.
        user_ids: raw id of each user index.
        item_ids: raw id of each item index.
        history_offsets: int64 [num_users + 1] CSR offsets of the training histories.
        history_items: int64 [n] item per training rating, oldest first per user.
        history_ratings: float32 [n] rating per training rating, in stars.
        item_popularity: float32 [num_items] training ratings per item.
        rating_scale: [min, max] in stars.
        metrics: test metrics (``rmse``, ``mae``, ``rmse_01``, ``recall@10``, ``ndcg@10``, ``train_seconds``).
        data: provenance (data source, split, seed).
        model: the rebuilt model in eval mode with the weights loaded.
        sha256: lower-case hex SHA-256 of the file.
    """

    path: Path
    format_version: int
    architecture: str
    hparams: dict[str, HParam]
    state_dict: dict[str, torch.Tensor]
    user_ids: list[str]
    item_ids: list[str]
    history_offsets: np.ndarray
    history_items: np.ndarray
    history_ratings: np.ndarray
    item_popularity: np.ndarray
    rating_scale: list[float]
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    model: RatingModel | None = None
    sha256: str = ""


def save_checkpoint(
    path: Path,
    model: RatingModel,
    train: Interactions,
    *,
    metrics: Mapping[str, float] | None = None,
    data: Mapping[str, str] | None = None,
) -> Path:
    """Write a model, its training histories and id maps as a weights-only checkpoint.

    The write is atomic (a temporary file renamed into place), so a reader never sees half a file.

    Args:
        path: destination file, conventionally ``RUN_DIR/<arch>/checkpoint.pt``; parents are created.
        model: the trained model.
        train: the full training interactions: its histories are the LSTM's inputs and the GCN's graph.
        metrics: test metrics to record.
        data: provenance strings (source, split, seed).

    Returns:
        The path written.

    Raises:
        ValueError: the model and the data disagree on the number of users or items.
    """
    hparams = model.hparams
    if (
        hparams.get("num_items", train.num_items) != train.num_items
        or hparams.get("num_users", train.num_users) != train.num_users
    ):
        raise ValueError(
            f"model sizes ({hparams.get('num_users')} users, {hparams.get('num_items')} items) do not match the "
            f"training data ({train.num_users} users, {train.num_items} items)"
        )
    histories = train.histories()
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "hparams": dict(hparams),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "user_ids": list(train.user_ids),
        "item_ids": list(train.item_ids),
        "history_offsets": torch.from_numpy(histories.offsets.astype(np.int64)),
        "history_items": torch.from_numpy(histories.items.astype(np.int64)),
        "history_ratings": torch.from_numpy(histories.ratings.astype(np.float32)),
        "item_popularity": torch.from_numpy(train.item_popularity()),
        "rating_scale": [float(train.rating_scale[0]), float(train.rating_scale[1])],
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "data": {k: str(v) for k, v in (data or {}).items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint and rebuild its model (eval mode, weights loaded).

    Args:
        path: a file written by :func:`save_checkpoint`.

    Returns:
        The checkpoint's fields, ``.model`` and ``.sha256``.

    Raises:
        CheckpointError: the file is missing, corrupt, of another format version or architecture, or its
            weights do not fit its hyper-parameters; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `recsys-train --out RUN_DIR`")
    raw = path.read_bytes()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a weights-only torch file: {error}") from error
    if not isinstance(payload, dict) or any(key not in payload for key in _REQUIRED):
        missing = [k for k in _REQUIRED if not isinstance(payload, dict) or k not in payload]
        raise CheckpointError(f"checkpoint {path} lacks the fields {missing}; was it written by recsys-train?")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {payload['format_version']}, this trainer reads {FORMAT_VERSION}"
            + (
                "; it predates ranking heads: train it again with recsys-train"
                if payload["format_version"] == 1
                else ""
            )
        )
    if payload["architecture"] not in architectures.names():
        raise CheckpointError(
            f"checkpoint {path} has unknown architecture {payload['architecture']!r}; "
            f"known: {', '.join(architectures.names())}"
        )
    checkpoint = Checkpoint(
        path=path,
        format_version=int(payload["format_version"]),
        architecture=str(payload["architecture"]),
        hparams=dict(payload["hparams"]),
        state_dict=dict(payload["state_dict"]),
        user_ids=[str(u) for u in payload["user_ids"]],
        item_ids=[str(i) for i in payload["item_ids"]],
        history_offsets=payload["history_offsets"].numpy().astype(np.int64),
        history_items=payload["history_items"].numpy().astype(np.int64),
        history_ratings=payload["history_ratings"].numpy().astype(np.float32),
        item_popularity=payload["item_popularity"].numpy().astype(np.float32),
        rating_scale=[float(v) for v in payload["rating_scale"]],
        metrics={k: float(v) for k, v in payload.get("metrics", {}).items()},
        data={k: str(v) for k, v in payload.get("data", {}).items()},
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    try:
        histories = UserHistories(checkpoint.history_offsets, checkpoint.history_items, checkpoint.history_ratings)
        model = build_model(checkpoint.architecture, checkpoint.hparams, histories)
        model.load_state_dict(checkpoint.state_dict)
    except (ValueError, RuntimeError, IndexError, TypeError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not rebuild its {checkpoint.architecture} model: {error}"
        ) from error
    checkpoint.model = model.eval()
    return checkpoint
