"""Predict with integer ids over gRPC: same ratings as string ids, clear errors where not offered."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc

MODELS = ("mf", "lstm")


def _integer(raw_id: str) -> str:
    """ "u7" -> "1007", "i7" -> "21": canonical decimal ids, not the indices themselves."""
    return str(1000 + int(raw_id[1:])) if raw_id.startswith("u") else str(3 * int(raw_id[1:]))


def _with_integer_ids(version: Path) -> None:
    """Rewrites a tiny version's user and item ids as integers, and their sha256 in config.json."""
    config_path = version / "config.json"
    config = json.loads(config_path.read_text())
    for entry in config["side_files"]:
        if entry["kind"] in ("SIDE_FILE_KIND_USER_IDS", "SIDE_FILE_KIND_ITEM_IDS"):
            path = version / entry["path"]
            np.save(path, np.array([_integer(i) for i in np.load(path).tolist()]))
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))


@pytest.fixture(scope="module")
def integer_repository(tmp_path_factory, tiny_repository):
    import shutil

    root = tmp_path_factory.mktemp("integer-ids")
    for model in MODELS:
        shutil.copytree(tiny_repository / model, root / model)
        _with_integer_ids(root / model / "1")
    shutil.copytree(tiny_repository / "dense", root / "dense")  # string ids: "u0", "i0"
    return root


@pytest.fixture(params=["onnx", "torchscript"])
def stub(request, start_server, integer_repository):
    server = start_server(integer_repository, backend=request.param)
    with grpc.insecure_channel(server.target) as channel:
        yield service_pb2_grpc.RecommenderServiceStub(channel)


@pytest.mark.parametrize("model", MODELS)
def test_integer_ids_give_the_string_ids_ratings(stub, model):
    metadata = stub.GetModelMetadata(pb.GetModelMetadataRequest(model=pb.ModelSpec(name=model)))
    assert metadata.integer_ids
    rng = np.random.default_rng(3)
    users = (1000 + rng.integers(0, 50, 200)).tolist()
    items = (3 * rng.integers(0, 40, 200)).tolist()
    spec = pb.ModelSpec(name=model)
    as_strings = stub.Predict(pb.PredictRequest(model=spec, user_ids=map(str, users), item_ids=map(str, items)))
    as_ints = stub.Predict(pb.PredictRequest(model=spec, user_int_ids=users, item_int_ids=items))
    assert len(as_ints.ratings) == 200
    np.testing.assert_array_equal(as_ints.ratings, as_strings.ratings)


def _error(stub, request: pb.PredictRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


def test_bad_integer_requests_are_invalid_argument_with_a_reason(stub):
    mf = pb.ModelSpec(name="mf")
    unknown = _error(stub, pb.PredictRequest(model=mf, user_int_ids=[1000, 7, 2**63 - 1], item_int_ids=[0, 1, 3]))
    assert "unknown user ids ['7', '9223372036854775807']" in unknown.details()
    assert "unknown item ids ['1']" in unknown.details()
    mixed = _error(stub, pb.PredictRequest(model=mf, user_ids=["1000"], item_int_ids=[0]))
    assert "not both" in mixed.details()
    uneven = _error(stub, pb.PredictRequest(model=mf, user_int_ids=[1000, 1001], item_int_ids=[0]))
    assert "user_int_ids has 2 ids but item_int_ids has 1" in uneven.details()


def test_string_id_models_refuse_integer_ids_and_say_what_to_send(stub):
    dense = pb.ModelSpec(name="dense")
    assert not stub.GetModelMetadata(pb.GetModelMetadataRequest(model=dense)).integer_ids
    refused = _error(stub, pb.PredictRequest(model=dense, user_int_ids=[0], item_int_ids=[0]))
    assert "integer_ids=false" in refused.details() and "as strings" in refused.details()
