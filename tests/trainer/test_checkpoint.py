"""Checkpoint round trip, weights-only loading, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import CheckpointError, load_checkpoint, train_tiny_checkpoint
from trainer.architecture import BUILT_IN as ARCHITECTURES
from trainer.checkpoint import save_checkpoint
from trainer.data.splits import Split
from trainer.experiment import build_for


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    for architecture in ARCHITECTURES:
        train_tiny_checkpoint(architecture, out)
    return out


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_tiny_checkpoint_round_trip(architecture: str, run_dir: Path) -> None:
    path = run_dir / architecture / "checkpoint.pt"
    raw = torch.load(path, weights_only=True)  # no pickled objects
    assert raw["format_version"] == 2 and raw["architecture"] == architecture
    checkpoint = load_checkpoint(path)
    assert len(checkpoint.sha256) == 64 and checkpoint.model is not None and not checkpoint.model.training
    assert len(checkpoint.user_ids) == 200 and len(checkpoint.item_ids) == 150
    assert checkpoint.history_offsets[-1] == len(checkpoint.history_items) == len(checkpoint.history_ratings)
    assert checkpoint.item_popularity.sum() == len(checkpoint.history_items)
    assert checkpoint.rating_scale == [1.0, 5.0]
    assert set(checkpoint.metrics) == {"rmse", "mae", "rmse_01", "recall@10", "ndcg@10", "coverage@10", "train_seconds"}
    assert checkpoint.metrics["rmse"] < 1.0  # tiny data has std ~1.03: the model learned something
    assert checkpoint.data["source"] == "synthetic-tiny"
    for key, value in checkpoint.model.state_dict().items():
        torch.testing.assert_close(value, raw["state_dict"][key])


def test_loaded_model_predicts_like_the_trained_one(tiny_split: Split, tmp_path: Path) -> None:
    for architecture in ("lstm", "gcn"):
        torch.manual_seed(0)
        model = build_for(architecture, tiny_split.train, {"dim": 8, "hidden_dim": 20}).eval()
        path = save_checkpoint(
            tmp_path / architecture / "checkpoint.pt", model, tiny_split.train, metrics={"rmse": 1.5}
        )
        loaded = load_checkpoint(path)
        histories = tiny_split.train.histories()
        users, items = tiny_split.test.users, tiny_split.test.items
        np.testing.assert_array_equal(loaded.model.rate(users, items, histories), model.rate(users, items, histories))
        torch.testing.assert_close(loaded.model.rank(users[:5], histories), model.rank(users[:5], histories))
        assert list(tmp_path.glob(f"{architecture}/.*")) == []  # the atomic write left no temporary file


def test_missing_corrupt_and_foreign_files(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"missing\.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"corrupt\.pt is corrupt"):
        load_checkpoint(corrupt)
    payload = torch.load(run_dir / "mf" / "checkpoint.pt", weights_only=True)
    for change, message in [
        ({"architecture": "svd"}, "unknown architecture 'svd'"),
        ({"format_version": 1}, "predates ranking heads: train it again"),
        ({"format_version": 3}, "format_version 3"),
        ({"hparams": {**payload["hparams"], "dim": 3}}, "does not rebuild its mf model"),
    ]:
        bad = tmp_path / "bad.pt"
        torch.save({**payload, **change}, bad)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(bad)
    torch.save({"state_dict": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks the fields"):
        load_checkpoint(tmp_path / "partial.pt")
