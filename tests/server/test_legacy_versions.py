"""Versions exported before tensor kinds still serve, read by their tensors' names; new ones say what scores mean.

The repository here holds each tiny version twice: ``<arch>`` as exported now and ``<arch>-legacy``, the same
files with config.json rewritten to the form written before kinds (no ``kind``, no ``reads_stored_history``,
no ``architecture_name``; names kept). Both are served from the same artifacts, so they must answer alike.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from client import RecsysClient
from protos.recsys.v1 import model_config_pb2 as mc
from server.repository import VersionFolder, read_config

ARCHITECTURES = ("mf", "dense", "lstm", "gcn")
BACKENDS = ("onnx", "torchscript")
TOLERANCE = 1e-5


def _rewrite_config(version: Path, change) -> None:
    path = version / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config, indent=2))


def _to_legacy(config: dict, name: str) -> None:
    """config.json as the exporter wrote it before kinds: the same tensors, known by their names only."""
    config["name"] = name
    config.pop("architecture_name", None)
    for signature in config["signatures"]:
        signature.pop("reads_stored_history", None)
        for spec in (*signature["inputs"], *signature["outputs"]):
            spec.pop("kind", None)


def _copy_as(repository: Path, source: Path, name: str, change) -> None:
    shutil.copytree(source, repository / name / "1")
    _rewrite_config(repository / name / "1", lambda config: change(config, name))


@pytest.fixture(scope="module")
def legacy_repository(tiny_repository: Path, tmp_path_factory) -> Path:
    repository = tmp_path_factory.mktemp("legacy-versions")
    for arch in ARCHITECTURES:
        shutil.copytree(tiny_repository / arch, repository / arch)
        _copy_as(repository, tiny_repository / arch / "1", f"{arch}-legacy", _to_legacy)
    return repository


def test_the_rewrite_leaves_no_kind_behind(legacy_repository):
    for arch in ARCHITECTURES:
        name = f"{arch}-legacy"
        config = read_config(VersionFolder(name, 1, legacy_repository / name / "1", (0, 0)))
        assert not config.architecture_name
        assert config.architecture != mc.ARCHITECTURE_UNSPECIFIED, "legacy versions kept the architecture enum"
        assert not any(s.reads_stored_history for s in config.signatures)
        specs = [spec for s in config.signatures for spec in (*s.inputs, *s.outputs)]
        assert specs and all(spec.kind == mc.TENSOR_KIND_UNSPECIFIED for spec in specs)


def _sample(ids: list[str], count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [ids[i] for i in rng.integers(0, len(ids), count)]


def _check_answers_match(client: RecsysClient, arch: str, users: list[str], items: list[str]) -> None:
    """Predict and Recommend of ``<arch>-legacy`` equal those of ``<arch>`` (the same artifacts)."""
    pair_users, pair_items = _sample(users, 50, 1), _sample(items, 50, 2)
    legacy = client.predict(f"{arch}-legacy", pair_users, pair_items)
    current = client.predict(arch, pair_users, pair_items)
    assert legacy.model == f"{arch}-legacy" and legacy.version == 1
    np.testing.assert_allclose(legacy.ratings, current.ratings, atol=TOLERANCE, rtol=0)
    chosen = users[:3] + users[-2:]
    legacy_top = client.recommend(f"{arch}-legacy", chosen).results
    current_top = client.recommend(arch, chosen).results
    for old, new in zip(legacy_top, current_top, strict=True):
        assert old.user_id == new.user_id and not old.fallback and len(old.item_ids) == 10, arch
        assert old.item_ids == new.item_ids, arch
        np.testing.assert_allclose(old.scores, new.scores, atol=TOLERANCE, rtol=0)


def _check_legacy_lstm(client: RecsysClient, routes, items: list[str]) -> None:
    """The legacy LSTM's ``*_user`` signatures are stored-history ones by name; sent histories still work."""
    assert routes.predict_users.name == "predict_user" and routes.predict_users.reads_stored_history
    assert routes.recommend_users.name == "recommend_user" and routes.recommend_users.reads_stored_history
    assert routes.recommend_histories.name == "recommend"
    assert routes.recommend_users.output_kind == mc.TENSOR_KIND_RATING_SCORES, "legacy scores are read as stars"
    history = (items[:4], [5.0, 1.0, 4.0, 3.0])
    legacy = client.recommend("lstm-legacy", histories=[history]).results[0]
    current = client.recommend("lstm", histories=[history]).results[0]
    assert legacy.item_ids == current.item_ids and not set(legacy.item_ids) & set(history[0])
    np.testing.assert_allclose(legacy.scores, current.scores, atol=TOLERANCE, rtol=0)


def _check_metadata_says_what_scores_mean(client: RecsysClient) -> None:
    """A new version's config tells a client that RecommendResult.scores are ranking scores, not stars."""
    for arch in ARCHITECTURES:
        config = client.metadata(arch).config
        signatures = {s.name: s for s in config.signatures}
        (output,) = signatures["recommend"].outputs
        assert output.kind == mc.TENSOR_KIND_RANKING_SCORES, f"{arch}: RecommendResult.scores are ranking scores"
        assert signatures["predict"].outputs[0].kind == mc.TENSOR_KIND_RATING
        assert config.architecture_name == arch
    lstm = {s.name: s for s in client.metadata("lstm").config.signatures}
    assert lstm["recommend_user"].outputs[0].kind == mc.TENSOR_KIND_RANKING_SCORES
    assert lstm["recommend_user"].reads_stored_history and not lstm["recommend"].reads_stored_history


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions_exported_before_kinds_still_serve(backend, legacy_repository, start_server):
    served = start_server(legacy_repository, backend=backend)
    registry = served.server.registry
    with RecsysClient(served.target, timeout=30) as client:
        states = {m.name: [(v.version, v.state, v.reason) for v in m.versions] for m in client.list_models()}
        assert states == {name: [(1, "READY", "")] for arch in ARCHITECTURES for name in (arch, f"{arch}-legacy")}
        for arch in ARCHITECTURES:
            catalog = registry.record(arch).model.catalog
            _check_answers_match(client, arch, catalog.user_ids.tolist(), catalog.item_id_list)
        lstm_items = registry.record("lstm").model.catalog.item_id_list
        _check_legacy_lstm(client, registry.record("lstm-legacy").model.engine.routes, lstm_items)
        _check_metadata_says_what_scores_mean(client)


def _unknown_input_kind(config: dict, name: str) -> None:
    config["name"] = name
    predict = next(s for s in config["signatures"] if s["name"] == "predict")
    predict["inputs"][0]["name"] = "user_age"
    predict["inputs"][0]["kind"] = 42


def _no_predict_by_kinds(config: dict, name: str) -> None:
    config["name"] = name
    predict = next(s for s in config["signatures"] if s["name"] == "predict")
    predict["outputs"][0]["kind"] = "TENSOR_KIND_RANKING_SCORES"


def test_versions_the_server_cannot_route_are_unavailable_with_the_reason(tiny_repository, tmp_path, start_server):
    _copy_as(tmp_path, tiny_repository / "mf" / "1", "mf-odd-input", _unknown_input_kind)
    _copy_as(tmp_path, tiny_repository / "mf" / "1", "mf-no-predict", _no_predict_by_kinds)
    shutil.copytree(tiny_repository / "mf", tmp_path / "mf")
    served = start_server(tmp_path)
    with RecsysClient(served.target, timeout=30) as client:
        states = {model.name: model.versions[0] for model in client.list_models()}
        assert states["mf"].state == "READY", "a broken version never affects another model"
        odd, missing = states["mf-odd-input"], states["mf-no-predict"]
        assert odd.state == missing.state == "UNAVAILABLE"
        assert "signature 'predict'" in odd.reason and "unknown: ['user_age']" in odd.reason
        assert "offers no signature for Predict" in missing.reason
