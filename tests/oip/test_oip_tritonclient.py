"""tritonclient[grpc], a real third-party OIP client, against the real server: same numbers as recsys.v1.

The server is the session's ``served`` (both backends, all four architectures); tritonclient runs in
its own process (see ``triton_driver.py``), sends raw_input_contents and reads raw_output_contents.
"""

from __future__ import annotations

import numpy as np
import pytest
from oip_helpers import ARCHITECTURES, sample_pairs, side_file, users_with_history

from client import RecsysClient

PLATFORMS = {"onnx": "onnx_onnxv1", "torchscript": "pytorch_torchscript"}


def _pairs_input(users: list[str], items: list[str]) -> list[dict]:
    return [
        {"name": "user_id", "datatype": "BYTES", "data": users},
        {"name": "item_id", "datatype": "BYTES", "data": items},
    ]


def test_health_and_server_metadata(served, triton):
    target = served.target
    assert triton.result(target, "live") is True
    assert triton.result(target, "ready") is True
    for arch in ARCHITECTURES:
        assert triton.result(target, "model_ready", model=arch) is True
        assert triton.result(target, "model_ready", model=f"{arch}.recommend", version="1") is True
        assert triton.result(target, "model_ready", model=arch, version="2") is False
    assert triton.result(target, "model_ready", model="no-such-model") is False
    metadata = triton.result(target, "server_metadata")
    assert metadata["name"] == "recsys-serve" and metadata["version"] and metadata["extensions"] == []


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_model_metadata_lists_the_mapped_tensors(served, triton, arch):
    predict = triton.result(served.target, "model_metadata", model=arch)
    assert predict["name"] == arch and predict["versions"] == ["1"]
    assert predict["platform"] == PLATFORMS[served.config.backend]
    assert predict["inputs"] == [
        {"name": "user_id", "datatype": "BYTES", "shape": [-1]},
        {"name": "item_id", "datatype": "BYTES", "shape": [-1]},
    ], "the tiny models' ids are strings ('u0'), so no INT64 inputs"
    assert predict["outputs"] == [{"name": "rating", "datatype": "FP32", "shape": [-1]}]
    recommend = triton.result(served.target, "model_metadata", model=f"{arch}.recommend", version="1")
    assert recommend["inputs"] == [{"name": "user_id", "datatype": "BYTES", "shape": [-1]}]
    assert recommend["outputs"] == [
        {"name": "item_id", "datatype": "BYTES", "shape": [-1, -1]},
        {"name": "score", "datatype": "FP32", "shape": [-1, -1]},
        {"name": "fallback", "datatype": "BOOL", "shape": [-1]},
    ]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_model_infer_predicts_exactly_what_recsys_v1_predicts(served, triton, arch):
    users, items = sample_pairs(served.config.repository, arch, 64, seed=1)
    answer = triton.result(served.target, "infer", model=arch, inputs=_pairs_input(users, items), id="req-7")
    assert answer["raw"], "tritonclient sent raw inputs, so the outputs come raw"
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (arch, "1", "req-7")
    rating = answer["outputs"]["rating"]
    assert rating["datatype"] == "FP32" and rating["shape"] == [64]
    with RecsysClient(served.target) as client:
        expected = client.predict(arch, users, items).ratings
    np.testing.assert_array_equal(np.array(rating["data"], dtype=np.float32), expected)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_model_infer_recommends_exactly_what_recsys_v1_recommends(served, triton, arch):
    users = users_with_history(served.config.repository, arch)[:5]
    answer = triton.result(
        served.target,
        "infer",
        model=f"{arch}.recommend",
        inputs=[{"name": "user_id", "datatype": "BYTES", "data": users}],
        parameters={"k": 7},
    )
    outputs = answer["outputs"]
    assert outputs["item_id"]["shape"] == [5, 7] and outputs["score"]["shape"] == [5, 7]
    with RecsysClient(served.target) as client:
        expected = client.recommend(arch, users, k=7).results
    item_ids = np.array(outputs["item_id"]["data"]).reshape(5, 7)
    scores = np.array(outputs["score"]["data"], dtype=np.float32).reshape(5, 7)
    for row, result in enumerate(expected):
        assert item_ids[row].tolist() == list(result.item_ids)
        np.testing.assert_array_equal(scores[row], result.scores)
    assert outputs["fallback"]["data"] == [False] * 5


def test_recommend_parameters_reach_the_ranking(served, triton):
    repository = served.config.repository
    known = users_with_history(repository, "mf")[0]
    answer = triton.result(
        served.target,
        "infer",
        model="mf.recommend",
        inputs=[{"name": "user_id", "datatype": "BYTES", "data": [known, "nobody"]}],
        parameters={"k": 3, "exclude_seen": False, "allow_popularity_fallback": True},
        outputs=["fallback", "item_id"],
    )
    assert list(answer["outputs"]) == ["fallback", "item_id"], "only the requested outputs, in their order"
    assert answer["outputs"]["fallback"]["data"] == [False, True]
    with RecsysClient(served.target) as client:
        expected = client.recommend(
            "mf", [known, "nobody"], k=3, exclude_seen=False, allow_popularity_fallback=True
        ).results
    assert answer["outputs"]["item_id"]["data"] == [*expected[0].item_ids, *expected[1].item_ids]
    popular = side_file(repository, "mf", "item_ids")[
        np.argsort(-side_file(repository, "mf", "item_popularity"), kind="stable")
    ]
    assert list(expected[1].item_ids) == popular[:3].tolist()


def test_errors_have_recsys_v1_codes_and_name_the_tensor(served, triton):
    target = served.target
    users, items = sample_pairs(served.config.repository, "mf", 3)

    code, message = triton.error(target, "infer", model="no-such-model", inputs=_pairs_input(users, items))
    assert code == "NOT_FOUND" and "'mf.recommend'" in message, message
    code, message = triton.error(target, "infer", model="mf", version="9", inputs=_pairs_input(users, items))
    assert code == "NOT_FOUND" and "no version 9" in message, message
    code, message = triton.error(target, "model_metadata", model="gcn", version="latest")
    assert code == "INVALID_ARGUMENT" and "model_version 'latest'" in message, message

    wrong_type = [_pairs_input(users, items)[0], {"name": "item_id", "datatype": "FP32", "data": [1.0, 2.0, 3.0]}]
    code, message = triton.error(target, "infer", model="mf", inputs=wrong_type)
    assert code == "INVALID_ARGUMENT" and "input 'item_id'" in message and "'FP32', expected BYTES" in message

    code, message = triton.error(target, "infer", model="dense", inputs=_pairs_input(users, items[:2]))
    assert code == "INVALID_ARGUMENT" and "'user_id' (3 elements) and 'item_id' (2)" in message, message

    code, message = triton.error(target, "infer", model="lstm", inputs=_pairs_input([users[0], "u999"], ["i0", "i999"]))
    assert code == "INVALID_ARGUMENT" and "unknown user ids ['u999']" in message and "['i999']" in message, message

    only_users = [{"name": "user_id", "datatype": "BYTES", "data": users}]
    code, message = triton.error(target, "infer", model="gcn", inputs=only_users)
    assert code == "INVALID_ARGUMENT" and "takes inputs (user_id BYTES [-1], item_id BYTES [-1])" in message

    code, message = triton.error(target, "infer", model="mf.recommend", inputs=only_users, parameters={"k": 0})
    assert code == "INVALID_ARGUMENT" and "k=0 is outside" in message, message
    code, message = triton.error(target, "infer", model="mf.recommend", inputs=only_users, parameters={"top": 3})
    assert code == "INVALID_ARGUMENT" and "no parameter 'top'" in message, message
