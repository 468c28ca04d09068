"""Broken model versions in the repository: reported UNAVAILABLE with the reason, the rest keep serving.

One server is started over a repository holding a good ``mf`` and one broken copy of it per fault,
so every fault is checked against the same running process (and the server had to start with all
of them present).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from protos.recsys.v1 import model_config_pb2 as mc
from protos.recsys.v1 import service_pb2, service_pb2_grpc

from . import reference
from .oracle import read_facts
from .procs import ServerProcess, server_process

TIMEOUT_S = 10.0
Edit = Callable[[Path], None]


def read_config(version_dir: Path) -> mc.ModelConfig:
    return json_format.Parse((version_dir / "config.json").read_text(), mc.ModelConfig())


def write_config(version_dir: Path, config: mc.ModelConfig) -> None:
    (version_dir / "config.json").write_text(json_format.MessageToJson(config, preserving_proto_field_name=True))


def rehash(version_dir: Path, file_name: str) -> None:
    """Makes config.json agree with a file's new content, so only the content itself is wrong."""
    import hashlib

    config = read_config(version_dir)
    digest = hashlib.sha256((version_dir / file_name).read_bytes()).hexdigest()
    for entry in [*config.artifacts, *config.side_files]:
        if entry.path == file_name:
            entry.sha256 = digest
    write_config(version_dir, config)


def truncate(file_name: str) -> Edit:
    def edit(version_dir: Path) -> None:
        path = version_dir / file_name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return edit


def truncate_and_rehash(file_name: str) -> Edit:
    def edit(version_dir: Path) -> None:
        truncate(file_name)(version_dir)
        rehash(version_dir, file_name)

    return edit


def overwrite_config(text: str) -> Edit:
    def edit(version_dir: Path) -> None:
        (version_dir / "config.json").write_text(text)

    return edit


def change_config(change: Callable[[mc.ModelConfig], None]) -> Edit:
    def edit(version_dir: Path) -> None:
        config = read_config(version_dir)
        change(config)
        write_config(version_dir, config)

    return edit


def remove(file_name: str) -> Edit:
    return lambda version_dir: (version_dir / file_name).unlink()


def pickled_popularity(version_dir: Path) -> None:
    """An object-dtype .npy: loading it needs pickle, which can run code. It must be refused."""
    values = np.load(version_dir / "item_popularity.npy")
    np.save(version_dir / "item_popularity.npy", np.array(values.tolist(), dtype=object), allow_pickle=True)
    rehash(version_dir, "item_popularity.npy")


def half_written(version_dir: Path) -> None:
    """A copier that writes config.json first and died before the artifacts."""
    for path in version_dir.iterdir():
        if path.name != "config.json":
            path.unlink()


def _bump_items(config: mc.ModelConfig) -> None:
    config.num_items += 1


def _rename(config: mc.ModelConfig) -> None:
    config.name = "someone-else"


def _wrong_sha(config: mc.ModelConfig) -> None:
    config.side_files[0].sha256 = "0" * 64


def _escape(config: mc.ModelConfig) -> None:
    config.artifacts[0].path = "../../mf/1/predict.onnx"


FAULTS: dict[str, tuple[Edit, tuple[str, ...]]] = {
    # model name -> (how it is broken, words its UNAVAILABLE reason must hold)
    "truncated-onnx": (truncate("predict.onnx"), ("predict.onnx", "sha256 mismatch")),
    "truncated-onnx-rehashed": (truncate_and_rehash("predict.onnx"), ("predict",)),
    "truncated-torchscript-unused": (truncate("model.pt"), ()),
    "config-not-json": (overwrite_config("{ not json"), ("config.json",)),
    "config-empty": (overwrite_config(""), ("config.json",)),
    "config-wrong-num-items": (change_config(_bump_items), ("ITEM",)),
    "config-wrong-name": (change_config(_rename), ("someone-else",)),
    "config-wrong-side-sha": (change_config(_wrong_sha), ("sha256 mismatch",)),
    "config-path-escapes": (change_config(_escape), ("../../mf/1/predict.onnx",)),
    "missing-side-file": (remove("item_popularity.npy"), ("item_popularity.npy", "missing")),
    "pickled-side-file": (pickled_popularity, ("item_popularity.npy", "pickle")),
    "half-written": (half_written, ("missing",)),
}
SERVING_DESPITE_FAULT = {"truncated-torchscript-unused"}  # the ONNX backend never opens model.pt


def clone(source: Path, repository: Path, name: str) -> Path:
    """Copies a version folder under another model name."""
    target = repository / name / "1"
    shutil.copytree(source, target)
    change_config(lambda config: setattr(config, "name", name))(target)
    return target


class Faulty:
    """The running server and its repository."""

    def __init__(self, process: ServerProcess, repository: Path) -> None:
        self.process, self.repository = process, repository
        self.channel = grpc.insecure_channel(process.target)
        self.stub = service_pb2_grpc.RecommenderServiceStub(self.channel)


@pytest.fixture(scope="module")
def faulty(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    repository = tmp_path_factory.mktemp("faulty-repository")
    shutil.copytree(tiny_repository / "mf", repository / "mf")
    for name, (edit, _) in FAULTS.items():
        edit(clone(tiny_repository / "mf" / "1", repository, name))
    with server_process(repository, tmp_path_factory.mktemp("faulty-server"), wait_for=["mf"]) as process:
        handle = Faulty(process, repository)
        try:
            _wait_settled(handle)
            yield handle
        finally:
            handle.channel.close()


def _wait_settled(faulty: Faulty, timeout_s: float = 30.0) -> None:
    """Waits until no version is LOADING any more."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = faulty.stub.ListModels(service_pb2.ListModelsRequest(), timeout=TIMEOUT_S)
        states = [v.state for m in listed.models for v in m.versions]
        if len(listed.models) >= len(FAULTS) and service_pb2.VERSION_STATE_LOADING not in states:
            return
        time.sleep(0.1)
    raise AssertionError(f"versions still loading after {timeout_s} s: {listed}")


def _status(faulty: Faulty, name: str) -> service_pb2.ModelVersionStatus:
    listed = faulty.stub.ListModels(service_pb2.ListModelsRequest(), timeout=TIMEOUT_S)
    (model,) = [m for m in listed.models if m.name == name]
    (version,) = model.versions
    return version


@pytest.mark.parametrize("name", sorted(set(FAULTS) - SERVING_DESPITE_FAULT))
def test_broken_version_is_unavailable_with_its_reason(faulty: Faulty, name: str) -> None:
    status = _status(faulty, name)
    assert status.state == service_pb2.VERSION_STATE_UNAVAILABLE
    for word in FAULTS[name][1]:
        assert word in status.reason, status.reason
    metadata = faulty.stub.GetModelMetadata(
        service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name=name)), timeout=TIMEOUT_S
    )
    assert (metadata.status.state, metadata.status.reason) == (status.state, status.reason)
    assert faulty.process.health(name) == health_pb2.HealthCheckResponse.NOT_SERVING
    request = service_pb2.PredictRequest(model=service_pb2.ModelSpec(name=name), user_ids=["u0"], item_ids=["i0"])
    with pytest.raises(grpc.RpcError) as caught:
        faulty.stub.Predict(request, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert name in caught.value.details()


def test_a_fault_in_an_artifact_of_another_backend_does_not_matter(faulty: Faulty) -> None:
    assert _status(faulty, "truncated-torchscript-unused").state == service_pb2.VERSION_STATE_READY


def test_healthy_model_serves_exact_answers_beside_broken_ones(faulty: Faulty) -> None:
    version_dir = faulty.repository / "mf" / "1"
    facts = read_facts(version_dir)
    users, items = list(facts.user_ids[:16]), list(facts.item_ids[-16:])
    response = faulty.stub.Predict(
        service_pb2.PredictRequest(model=service_pb2.ModelSpec(name="mf"), user_ids=users, item_ids=items),
        timeout=TIMEOUT_S,
    )
    np.testing.assert_allclose(response.ratings, reference.predict(version_dir, facts, users, items), atol=1e-5)
    expected_items, expected_scores = reference.recommend(version_dir, facts, users[0], k=5)
    ranked = faulty.stub.Recommend(
        service_pb2.RecommendRequest(model=service_pb2.ModelSpec(name="mf"), user_ids=users[:1], k=5), timeout=TIMEOUT_S
    )
    assert list(ranked.results[0].item_ids) == expected_items
    np.testing.assert_allclose(ranked.results[0].scores, expected_scores, atol=1e-5)
    assert faulty.process.health("mf") == health_pb2.HealthCheckResponse.SERVING
    assert faulty.process.health("") == health_pb2.HealthCheckResponse.SERVING


def test_server_starts_and_answers_when_every_model_is_broken(tiny_repository: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    truncate("predict.onnx")(clone(tiny_repository / "mf" / "1", repository, "only"))
    with server_process(repository, tmp_path, wait_for=()) as process, grpc.insecure_channel(process.target) as channel:
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                listed = stub.ListModels(service_pb2.ListModelsRequest(), timeout=TIMEOUT_S)
            except grpc.RpcError:
                listed = None  # not listening yet
            if (
                listed is not None
                and listed.models
                and listed.models[0].versions[0].state != service_pb2.VERSION_STATE_LOADING
            ):
                break
            assert time.monotonic() < deadline, "the broken version never settled"
            time.sleep(0.1)
        assert listed.models[0].versions[0].state == service_pb2.VERSION_STATE_UNAVAILABLE
        assert process.health("") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.health("only") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.process.poll() is None


def _wait_state(stub: service_pb2_grpc.RecommenderServiceStub, name: str, version: int, state: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = stub.ListModels(service_pb2.ListModelsRequest(), timeout=TIMEOUT_S)
        for model in listed.models:
            for status in model.versions:
                if model.name == name and status.version == version and status.state == state:
                    return status.reason
        time.sleep(0.05)
    raise AssertionError(f"{name} v{version} never reached state {state}: {listed}")


def test_half_written_version_appearing_while_serving_leaves_the_old_one_serving(
    tiny_repository: Path, tmp_path: Path
) -> None:
    repository = tmp_path / "repository"
    shutil.copytree(tiny_repository / "mf", repository / "mf")
    version_one = repository / "mf" / "1"
    request = service_pb2.PredictRequest(model=service_pb2.ModelSpec(name="mf"), user_ids=["u1"], item_ids=["i2"])
    with (
        server_process(repository, tmp_path, ["--poll-interval-s", "0.1"]) as process,
        grpc.insecure_channel(process.target) as channel,
    ):
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        before = stub.Predict(request, timeout=TIMEOUT_S)
        version_two = repository / "mf" / "2"
        version_two.mkdir()
        config = read_config(version_one)
        config.version = 2
        write_config(version_two, config)  # config first, artifacts never: a copier that died
        reason = _wait_state(stub, "mf", 2, service_pb2.VERSION_STATE_UNAVAILABLE)
        assert "missing" in reason
        after = stub.Predict(request, timeout=TIMEOUT_S)
        assert (after.model.version, list(after.ratings)) == (1, list(before.ratings))
        assert process.health("mf") == health_pb2.HealthCheckResponse.SERVING
        # Finishing the copy and rewriting config.json makes the server try version 2 again.
        for path in version_one.iterdir():
            if path.name != "config.json":
                shutil.copy(path, version_two / path.name)
        write_config(version_two, config)
        (version_two / "config.json").touch()
        _wait_state(stub, "mf", 2, service_pb2.VERSION_STATE_READY)
        assert stub.Predict(request, timeout=TIMEOUT_S).model.version == 2
