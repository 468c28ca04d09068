"""``--int-ids``: Predict pairs sent as integers, end to end against the fake server, and its refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from loadtest.cli import main
from loadtest.connection import Connection
from loadtest.int_ids import decimal_int64
from loadtest.sanity import check_responses, pair_count
from loadtest.workload import IdSpace, WorkloadError, WorkloadSpec, build_workload
from protos.recsys.v1 import model_config_pb2, service_pb2

MOVIELENS_LIKE = IdSpace(
    np.array([str(i) for i in range(1, 51)]),
    np.array([str(i) for i in range(1, 41)]),
    item_popularity=np.arange(40, 0, -1, dtype=np.float32),
    rating_scale=(1.0, 5.0),
)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["1", "22", "-3", "9223372036854775807"], [1, 22, -3, 2**63 - 1]),
        (["1", "01"], None),  # "01" sent as 1 would name user "1"
        (["+1"], None),
        ([" 1"], None),
        (["-0"], None),
        (["1.0"], None),
        (["u196"], None),
        (["9223372036854775808"], None),  # beyond int64
        ([""], None),
    ],
)
def test_only_canonical_decimal_ids_have_an_integer_form(ids, expected):
    values = decimal_int64(np.array(ids))
    assert (values.tolist() if values is not None else None) == expected


def test_integer_workload_sends_the_same_pairs_as_the_string_one():
    spec = WorkloadSpec(model="mf", rows_per_request=100, pool_size=16, seed=3)
    strings = build_workload(spec, MOVIELENS_LIKE)
    integers = build_workload(dataclasses.replace(spec, int_ids=True), MOVIELENS_LIKE)
    for index in range(16):
        text, number = strings.parse_request(index), integers.parse_request(index)
        assert not number.user_ids and not number.item_ids and not text.user_int_ids
        assert [str(u) for u in number.user_int_ids] == list(text.user_ids)
        assert [str(i) for i in number.item_int_ids] == list(text.item_ids)
        assert pair_count(number) == pair_count(text) == 100
    assert sum(map(len, integers.payloads)) < 0.6 * sum(map(len, strings.payloads))


def test_integer_ids_are_refused_for_string_id_spaces_and_for_recommend():
    ids = IdSpace(np.array(["196", "u2"]), np.array(["1", "2"]), source="repository r/mf/1")
    with pytest.raises(WorkloadError, match=r"not all decimal integers \(repository r/mf/1\).*drop --int-ids"):
        build_workload(WorkloadSpec(model="mf", int_ids=True), ids)
    padded = IdSpace(np.array(["1", "2"]), np.array(["01", "02"]))
    with pytest.raises(WorkloadError, match="not all decimal integers"):
        build_workload(WorkloadSpec(model="mf", int_ids=True), padded)
    with pytest.raises(WorkloadError, match="Predict only"):
        WorkloadSpec(method="recommend", model="mf", int_ids=True)


def test_sanity_counts_pairs_from_the_integer_fields():
    workload = build_workload(WorkloadSpec(model="mf", rows_per_request=5, pool_size=8, int_ids=True), MOVIELENS_LIKE)
    good = service_pb2.PredictResponse(ratings=[3.0] * 5).SerializeToString()
    short = service_pb2.PredictResponse(ratings=[3.0] * 4).SerializeToString()
    report = check_responses(workload, [(0, good), (1, short)], MOVIELENS_LIKE)
    assert (report.checked, report.failed) == (2, 1)
    assert report.problems == ["call 1: 4 ratings for 5 pairs"]


async def test_fake_server_treats_integer_pairs_like_the_real_server(fake_server):
    server = fake_server(num_users=10, num_items=5)
    [client] = Connection(server.target).open()
    spec = service_pb2.ModelSpec(name="fake")

    async def predict(**fields) -> service_pb2.PredictResponse:
        return await client.predict_message(service_pb2.PredictRequest(model=spec, **fields))

    try:
        answer = await predict(user_int_ids=[1, 10, 3], item_int_ids=[5, 1, 2])
        assert list(answer.ratings) == [3.5, 3.5, 3.5]
        refused = {
            "unknown user": {"user_int_ids": [11], "item_int_ids": [1]},
            "unknown item": {"user_int_ids": [1], "item_int_ids": [0]},
            "count mismatch": {"user_int_ids": [1, 2], "item_int_ids": [1]},
            "both forms": {"user_ids": ["1"], "item_ids": ["1"], "user_int_ids": [1], "item_int_ids": [1]},
            "half of each": {"user_ids": ["1"], "item_int_ids": [1]},
        }
        details = {}
        for name, fields in refused.items():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await predict(**fields)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            details[name] = caught.value.details()
        assert "[11]" in details["unknown user"] and "[0]" in details["unknown item"]
        assert "not both" in details["both forms"] and "not both" in details["half of each"]
    finally:
        await client.close()


def _repository(root, users: list[str], items: list[str]) -> str:
    folder = root / "repo" / "fake" / "1"
    folder.mkdir(parents=True)
    np.save(folder / "user_ids.npy", np.array(users))
    np.save(folder / "item_ids.npy", np.array(items))
    (folder / "config.json").write_text(json_format.MessageToJson(model_config_pb2.ModelConfig(name="fake")))
    return str(root / "repo")


def _run(server, *extra: str, model: str = "fake") -> int:
    args = ["--target", server.target, "--model", model, "--concurrency", "1,4", "--requests", "40"]
    return main([*args, "--warmup", "0.1", "--quiet", *extra])


def test_cli_int_ids_end_to_end(fake_server, tmp_path, capsys):
    server = fake_server(num_users=50, num_items=40)
    out = tmp_path / "int.json"
    assert _run(server, "--int-ids", "--pairs-per-request", "30", "--samples", "16", "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "| fake int | c=1 |" in text and "| fake int | c=4 |" in text
    assert "30 rows/call" in text and "integer ids from server" in text
    data = json.loads(out.read_text())
    assert data["config"]["workload"]["int_ids"] is True and data["server"]["integer_ids"] is True
    for step in data["steps"]:
        assert step["int_ids"] is True and step["label"] == "fake int"
        assert step["calls"] == 40 and step["rows_per_s"] == pytest.approx(30 * step["calls_per_s"])
        assert step["sanity"]["checked"] > 0 and step["sanity"]["failed"] == 0
        assert step["errors"] == {}


def test_cli_int_ids_sanity_catches_a_short_answer(fake_server, tmp_path, capsys):
    server = fake_server(corrupt="count")  # its Recommend answers are short too: ids come from a repository
    repository = _repository(tmp_path, ["1", "2", "3"], ["4", "5"])
    assert _run(server, "--int-ids", "--pairs-per-request", "7", "--repository", repository) == 1
    assert "6 ratings for 7 pairs" in capsys.readouterr().out


def test_cli_refuses_int_ids_where_they_cannot_work(fake_server, tmp_path, capsys):
    assert _run(fake_server(), "--int-ids", "--method", "recommend") == 2
    assert "Predict only" in capsys.readouterr().err

    assert _run(fake_server(integer_ids=False), "--int-ids") == 2
    err = capsys.readouterr().err
    assert "does not take integer ids" in err and "integer_ids is false" in err and "drop --int-ids" in err

    repository = _repository(tmp_path, ["1", "u2"], ["1", "2"])
    assert _run(fake_server(), "--int-ids", "--repository", repository) == 2
    assert "not all decimal integers (repository" in capsys.readouterr().err


def _integer_id_copy(copy_repository, root) -> str:
    """Tiny MF v1 with its ids written as integers ("u7" -> "1007", "i7" -> "1007"), side file hashes updated."""
    folder = copy_repository(root, ("mf",)) / "mf" / "1"
    config = json_format.Parse((folder / "config.json").read_text(), model_config_pb2.ModelConfig())
    id_kinds = (model_config_pb2.SIDE_FILE_KIND_USER_IDS, model_config_pb2.SIDE_FILE_KIND_ITEM_IDS)
    for side in (s for s in config.side_files if s.kind in id_kinds):
        path = folder / side.path
        np.save(path, np.array([str(1000 + int(raw[1:])) for raw in np.load(path).tolist()]))
        side.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "config.json").write_text(json_format.MessageToJson(config))
    return str(root)


def test_cli_int_ids_against_the_real_server(start_server, copy_repository, tmp_path, capsys):
    repository = _integer_id_copy(copy_repository, tmp_path / "repo")
    server = start_server(Path(repository))
    out = tmp_path / "real.json"
    extra = ("--repository", repository, "--pairs-per-request", "50", "--json", str(out))
    assert _run(server, "--int-ids", *extra, model="mf") == 0
    assert "| mf int | c=4 |" in capsys.readouterr().out
    steps = json.loads(out.read_text())["steps"]
    assert all(s["errors"] == {} and s["sanity"]["checked"] > 0 and s["sanity"]["failed"] == 0 for s in steps)
    assert all(s["int_ids"] and s["calls"] == 40 for s in steps)


@pytest.mark.parametrize("served", ["onnx"], indirect=True)
def test_cli_refuses_int_ids_for_a_real_string_id_model(served, capsys):
    assert _run(served, "--int-ids", model="mf") == 2  # tiny ids are "u0", "i0"
    assert "model 'mf' v1 does not take integer ids" in capsys.readouterr().err
