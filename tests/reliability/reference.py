"""Expected answers computed straight from an exported version's ONNX files, without the server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .oracle import ModelFacts


def _session(version_dir: Path, signature: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(version_dir / f"{signature}.onnx"), providers=["CPUExecutionProvider"])


def predict(version_dir: Path, facts: ModelFacts, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
    """Ratings of (user, item) pairs of a non-sequential model, float32 [B]."""
    user_index = {u: i for i, u in enumerate(facts.user_ids)}
    item_index = {item: i for i, item in enumerate(facts.item_ids)}
    feeds = {
        "user": np.array([user_index[u] for u in users], np.int64),
        "item": np.array([item_index[i] for i in items], np.int64),
    }
    return _session(version_dir, "predict").run(None, feeds)[0]


def recommend(version_dir: Path, facts: ModelFacts, user: str, k: int) -> tuple[list[str], np.ndarray]:
    """Top-k unseen items of a known user of a non-sequential model, and their scores."""
    user_index = {u: i for i, u in enumerate(facts.user_ids)}
    (scores,) = _session(version_dir, "recommend").run(None, {"user": np.array([user_index[user]], np.int64)})
    scores = scores[0].astype(np.float64)
    seen = facts.seen[user]
    order = [i for i in np.argsort(-scores, kind="stable").tolist() if facts.item_ids[i] not in seen][:k]
    return [facts.item_ids[i] for i in order], scores[order]
