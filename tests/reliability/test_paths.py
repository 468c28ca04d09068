"""Model names and versions from requests never become file paths.

The server runs with an audit hook (audit/sitecustomize.py) logging every file it opens or folder
it lists. Requests naming models by path (``../outside``, ``mf/../../etc``, absolute paths) all get
NOT_FOUND, and while they are answered the server touches neither the repository nor anything the
names point at, although a valid model lies exactly where ``../outside`` leads.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import grpc
import pytest

from protos.recsys.v1 import service_pb2, service_pb2_grpc

from . import tally
from .procs import ROOT, server_process

AUDIT_DIR = Path(__file__).parent / "audit"
TIMEOUT_S = 10.0


def _names(repository: Path, outside: Path) -> list[tuple[str, int]]:
    relative = f"../{outside.parent.name}/{outside.name}"
    return [
        ("../outside", 0),
        (relative, 0),
        (f"{relative}/1", 0),
        (str(outside), 0),
        (str(outside / "1"), 1),
        ("mf/../../etc", 0),
        ("mf/../mf", 1),
        ("./mf", 1),
        ("mf/1", 0),
        ("mf/", 1),
        ("/etc/passwd", 0),
        ("..", 0),
        (".", 0),
        ("~", 0),
        ("mf\x00", 1),
        ("%2e%2e/outside", 0),
        (str(repository / "mf"), 1),
        ("mf", -1),
        ("mf", 2**63 - 1),
    ]


def test_path_like_model_names_are_not_found_without_touching_files(tiny_repository: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    shutil.copytree(tiny_repository / "mf", repository / "mf")
    outside = tmp_path / "outside"
    shutil.copytree(tiny_repository / "mf", outside)  # a loadable model where "../outside" points
    audit_log = tmp_path / "audit.log"
    env = {"PYTHONPATH": f"{AUDIT_DIR}:{ROOT}", "RECSYS_TEST_AUDIT_LOG": str(audit_log)}
    with server_process(repository, tmp_path, ["--poll-interval-s", "0"], env=env) as process:
        assert audit_log.stat().st_size > 0, "the audit hook did not load: nothing to judge file access by"
        with grpc.insecure_channel(process.target) as channel:
            stub = service_pb2_grpc.RecommenderServiceStub(channel)
            started = time.time()
            for name, version in _names(repository, outside):
                spec = service_pb2.ModelSpec(name=name, version=version)
                calls = [
                    (stub.Predict, service_pb2.PredictRequest(model=spec, user_ids=["u0"], item_ids=["i0"])),
                    (stub.Recommend, service_pb2.RecommendRequest(model=spec, user_ids=["u0"], k=3)),
                    (stub.GetModelMetadata, service_pb2.GetModelMetadataRequest(model=spec)),
                ]
                for method, request in calls:
                    with pytest.raises(grpc.RpcError) as caught:
                        method(request, timeout=TIMEOUT_S)
                    tally.record("path-like model names", caught.value.code())
                    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, (name, caught.value.details())
            finished = time.time()
            listed = stub.ListModels(service_pb2.ListModelsRequest(), timeout=TIMEOUT_S)
            assert [m.name for m in listed.models] == ["mf"]
    touched = []
    for line in audit_log.read_text(encoding="utf-8").splitlines():
        stamp, event, path = line.split("\t", 2)
        if started <= float(stamp) <= finished and (str(tmp_path) in path or "/etc" in path or path.startswith("..")):
            touched.append((event, path))
    assert touched == [], f"the server touched files while answering path-like names: {touched[:5]}"
