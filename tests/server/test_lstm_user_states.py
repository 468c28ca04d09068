"""LSTM calls naming users run predict_user/recommend_user (states encoded at export) when a version has them.

The repository here holds three LSTM models of the same weights: ``lstm`` as exported now, ``lstm-old``
the same version with the user signatures stripped from its config (as exported before they existed),
and ``lstm-gap`` exported from a checkpoint where one user has no training history.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from client import RecsysClient
from server.errors import ModelLoadError
from server.repository import VersionFolder, artifact_files, read_config

BACKENDS = ("onnx", "torchscript")
USER_SIGNATURES = ("predict_user", "recommend_user")
GAP_USER = 5
TOLERANCE = 1e-4


def _strip_user_signatures(source: Path, destination: Path, name: str) -> None:
    """Copy a version folder as if exported before the user signatures: none in config.json, no files."""
    shutil.copytree(source, destination)
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["name"] = name
    config["signatures"] = [s for s in config["signatures"] if s["name"] not in USER_SIGNATURES]
    kept = []
    for artifact in config["artifacts"]:
        artifact["signatures"] = [s for s in artifact["signatures"] if s not in USER_SIGNATURES]
        if artifact["signatures"]:
            kept.append(artifact)
        else:
            (destination / artifact["path"]).unlink()
    config["artifacts"] = kept
    config_path.write_text(json.dumps(config, indent=2))


def _without_history(checkpoint: Path, user: int, destination: Path) -> Path:
    """A copy of a trainer checkpoint in which ``user`` has no training history."""
    payload = torch.load(checkpoint, weights_only=True)
    offsets = payload["history_offsets"].clone()
    start, end = int(offsets[user]), int(offsets[user + 1])
    for key in ("history_items", "history_ratings"):
        payload[key] = torch.cat([payload[key][:start], payload[key][end:]])
    offsets[user + 1 :] -= end - start
    payload["history_offsets"] = offsets
    torch.save(payload, destination)
    return destination


@pytest.fixture(scope="module")
def lstm_repository(tiny_repository: Path, tiny_checkpoints: dict[str, Path], tmp_path_factory) -> Path:
    from exporter import export_checkpoint

    repository = tmp_path_factory.mktemp("lstm-user-states")
    shutil.copytree(tiny_repository / "lstm", repository / "lstm")
    _strip_user_signatures(tiny_repository / "lstm" / "1", repository / "lstm-old" / "1", "lstm-old")
    gap = _without_history(tiny_checkpoints["lstm"], GAP_USER, tmp_path_factory.mktemp("gap") / "checkpoint.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_checkpoint(gap, repository, name="lstm-gap")
    return repository


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoints: dict[str, Path]):
    from trainer import load_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_checkpoint(tiny_checkpoints["lstm"])


@pytest.fixture
def runtime_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, str, int]]:
    """(runtime, signature, rows) of every runtime call a server makes from now on, on either backend."""
    from server.runtime.onnx import OnnxRuntime
    from server.runtime.torchscript import TorchScriptRuntime

    calls: list[tuple[object, str, int]] = []
    for runtime_class in (OnnxRuntime, TorchScriptRuntime):

        def recording(self, signature, inputs, _run=runtime_class.run):
            calls.append((self, signature, len(inputs[0])))
            return _run(self, signature, inputs)

        monkeypatch.setattr(runtime_class, "run", recording)
    return calls


def _test_users(checkpoint) -> list[int]:
    """The longest history, the shortest above the cut, the shortest, and a few others."""
    counts = np.diff(checkpoint.history_offsets)
    limit = int(checkpoint.hparams["max_history_length"])
    over = np.flatnonzero(counts > limit)
    chosen = [int(np.argmax(counts)), int(over[np.argmin(counts[over])]), int(np.argmin(counts)), 0, 17, 123]
    assert counts[chosen[0]] > limit, "the tiny data must exercise the cut to the latest events"
    return list(dict.fromkeys(chosen))


def _stored_history(checkpoint, user: int) -> tuple[list[str], list[float]]:
    end = int(checkpoint.history_offsets[user + 1])
    start = max(int(checkpoint.history_offsets[user]), end - int(checkpoint.hparams["max_history_length"]))
    items = [checkpoint.item_ids[i] for i in checkpoint.history_items[start:end]]
    return items, checkpoint.history_ratings[start:end].tolist()


def _scores_by_item(result) -> dict[str, float]:
    return dict(zip(result.item_ids, result.scores, strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_ids_run_the_stored_states_and_agree_with_the_history_path(
    backend, lstm_repository, start_server, runtime_calls, checkpoint
):
    served = start_server(lstm_repository, backend=backend)
    new, old = (served.server.registry.record(name).model for name in ("lstm", "lstm-old"))
    assert set(new.engine.signatures) == {"predict", "recommend", *USER_SIGNATURES}
    assert set(old.engine.signatures) == {"predict", "recommend"}
    warmed = {signature for runtime, signature, _ in runtime_calls if runtime is new.engine.runtime}
    assert warmed == set(new.engine.signatures), "warm-up runs every signature"
    runtime_calls.clear()

    users = _test_users(checkpoint)
    ids = [checkpoint.user_ids[u] for u in users]
    num_items = len(checkpoint.item_ids)
    rng = np.random.default_rng(5)
    pair_users = [checkpoint.user_ids[u] for u in rng.choice(users, 40)]
    pair_items = [checkpoint.item_ids[i] for i in rng.integers(0, num_items, 40)]
    with RecsysClient(served.target, timeout=30) as client:
        assert [s.name for s in client.metadata("lstm").config.signatures] == ["predict", "recommend", *USER_SIGNATURES]
        ratings = client.predict("lstm", pair_users, pair_items).ratings
        full = {"k": num_items, "exclude_seen": False}
        by_user = client.recommend("lstm", ids, **full).results
        by_history = client.recommend("lstm", histories=[_stored_history(checkpoint, u) for u in users], **full).results
        old_ratings = client.predict("lstm-old", pair_users, pair_items).ratings
        by_old = client.recommend("lstm-old", ids, **full).results
        top, old_top = (client.recommend(name, ids, k=10).results for name in ("lstm", "lstm-old"))

    ran = [(signature, rows) for runtime, signature, rows in runtime_calls if runtime is new.engine.runtime]
    rows = len(users)
    assert ran == [("predict_user", 40), ("recommend_user", rows), ("recommend", rows), ("recommend_user", rows)]
    assert [s for runtime, s, _ in runtime_calls if runtime is old.engine.runtime] == [
        "predict",
        "recommend",
        "recommend",
    ]
    np.testing.assert_allclose(ratings, old_ratings, atol=TOLERANCE, rtol=0)
    for user_result, history_result, old_result in zip(by_user, by_history, by_old, strict=True):
        scores = _scores_by_item(user_result)
        assert len(scores) == num_items and not user_result.fallback
        for other in (history_result, old_result):
            other_scores = _scores_by_item(other)
            assert other_scores.keys() == scores.keys()
            np.testing.assert_allclose(
                [scores[i] for i in scores], [other_scores[i] for i in scores], atol=TOLERANCE, rtol=0
            )
    for result, old_result in zip(top, old_top, strict=True):
        assert result.item_ids == old_result.item_ids
        np.testing.assert_allclose(result.scores, old_result.scores, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_without_a_stored_history_are_still_refused_or_given_popular_items(
    backend, lstm_repository, start_server, checkpoint
):
    served = start_server(lstm_repository, backend=backend)
    assert set(served.server.registry.record("lstm-gap").model.engine.signatures) >= set(USER_SIGNATURES)
    gap, known = checkpoint.user_ids[GAP_USER], checkpoint.user_ids[0]
    items = checkpoint.item_ids[:2]
    with RecsysClient(served.target, timeout=30) as client:
        with pytest.raises(grpc.RpcError) as refused:
            client.predict("lstm-gap", [known, gap], items)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"users ['{gap}'] have no training history" in refused.value.details()
        with pytest.raises(grpc.RpcError) as refused:
            client.recommend("lstm-gap", [gap])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no training history" in refused.value.details()
        fallback, answered = client.recommend("lstm-gap", [gap, known], k=5, allow_popularity_fallback=True).results
        reference = client.recommend("lstm", [known], k=5).results[0]
        same_user = client.predict("lstm-gap", [known, known], items).ratings
        expected = client.predict("lstm", [known, known], items).ratings
    assert fallback.fallback and fallback.user_id == gap
    top = np.argsort(-checkpoint.item_popularity, kind="stable")[:5]
    assert fallback.item_ids == [checkpoint.item_ids[i] for i in top]
    assert not answered.fallback and answered.item_ids == reference.item_ids
    np.testing.assert_allclose(answered.scores, reference.scores, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(same_user, expected, atol=TOLERANCE, rtol=0)


def test_a_declared_user_signature_needs_an_artifact_of_the_backend(tiny_repository):
    folder = VersionFolder("lstm", 1, tiny_repository / "lstm" / "1", (0, 0))
    config = read_config(folder)
    assert set(artifact_files(config, folder.path, "torchscript")) == {"predict", "recommend", *USER_SIGNATURES}
    kept = [a for a in config.artifacts if a.path != "predict_user.onnx"]
    del config.artifacts[:]
    config.artifacts.extend(kept)
    with pytest.raises(ModelLoadError, match=r"no onnx artifact serves \['predict_user'\]"):
        artifact_files(config, folder.path, "onnx")
