"""Helpers of the OIP tests: the tiny models' ids and OIP request pieces (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protos.inference import open_inference_grpc_pb2 as oip

ARCHITECTURES = ("mf", "dense", "lstm", "gcn")


def side_file(repository: Path, model: str, name: str) -> np.ndarray:
    """A side file of version 1 of a tiny model, e.g. ``user_ids``."""
    return np.load(repository / model / "1" / f"{name}.npy", allow_pickle=False)


def users_with_history(repository: Path, model: str) -> list[str]:
    """Users with at least one training rating (the only ones an LSTM answers by id)."""
    offsets = side_file(repository, model, "history_offsets")
    return [u for u, n in zip(side_file(repository, model, "user_ids").tolist(), np.diff(offsets), strict=True) if n]


def sample_pairs(repository: Path, model: str, rows: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``rows`` random (user, item) pairs of known ids, repeats included."""
    rng = np.random.default_rng(seed)
    users = users_with_history(repository, model)
    items = side_file(repository, model, "item_ids").tolist()
    return [users[i] for i in rng.integers(0, len(users), rows)], [items[i] for i in rng.integers(0, len(items), rows)]


def bytes_input(name: str, values: list[str]) -> oip.ModelInferRequest.InferInputTensor:
    """A BYTES input with typed contents."""
    return oip.ModelInferRequest.InferInputTensor(
        name=name,
        datatype="BYTES",
        shape=[len(values)],
        contents=oip.InferTensorContents(bytes_contents=[v.encode() for v in values]),
    )
