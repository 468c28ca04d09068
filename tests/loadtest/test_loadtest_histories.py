"""``--histories``: Recommend load that sends each user's recent history, so the LSTM runs on every call."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadtest.cli import main
from loadtest.workload import IdSpace, WorkloadError, WorkloadSpec, build_workload, load_id_space


def _ids(max_history_length: int = 3) -> IdSpace:
    return IdSpace(
        user_ids=np.array(["a", "b"]),
        item_ids=np.array(["i0", "i1", "i2", "i3", "i4"]),
        history_offsets=np.array([0, 5, 6]),
        history_items=np.array([0, 1, 2, 3, 4, 2]),
        history_ratings=np.array([1, 2, 3, 4, 5, 3], dtype=np.float32),
        max_history_length=max_history_length,
    )


def test_histories_are_each_users_most_recent_events_oldest_first():
    workload = build_workload(WorkloadSpec(method="recommend", model="lstm", histories=True, pool_size=64, k=2), _ids())
    sent = {}
    for index in range(len(workload.payloads)):
        request = workload.parse_request(index)
        assert not request.user_ids and len(request.histories) == 1
        history = request.histories[0]
        sent[tuple(history.item_ids)] = list(history.ratings)
    assert sent == {("i2", "i3", "i4"): [3.0, 4.0, 5.0], ("i2",): [3.0]}  # "a" cut to its last 3 of 5 events


def test_histories_need_recommend_an_lstm_and_the_repository():
    with pytest.raises(WorkloadError, match="Recommend only"):
        WorkloadSpec(method="predict", model="lstm", histories=True)
    with pytest.raises(WorkloadError, match="histories are for LSTM models"):
        build_workload(WorkloadSpec(method="recommend", model="mf", histories=True, k=2), _ids(max_history_length=0))
    without = IdSpace(user_ids=np.array(["a"]), item_ids=np.array(["i0"]), max_history_length=3)
    with pytest.raises(WorkloadError, match="pass --repository"):
        build_workload(WorkloadSpec(method="recommend", model="lstm", histories=True, k=1), without)


def test_cli_histories_against_the_real_lstm(served, tiny_repository, tmp_path, capsys):
    ids = load_id_space(tiny_repository, "lstm")
    assert ids.max_history_length > 0 and ids.history_ratings is not None
    out = tmp_path / "hist.json"
    args = ["--target", served.target, "--model", "lstm", "--method", "recommend", "--histories"]
    args += ["--repository", str(tiny_repository), "--concurrency", "1,4", "--requests", "40", "--warmup", "0.1"]
    assert main([*args, "--quiet", "--json", str(out)]) == 0
    assert "| lstm hist | c=4 |" in capsys.readouterr().out
    steps = json.loads(out.read_text())["steps"]
    assert all(s["errors"] == {} and s["sanity"]["checked"] > 0 and s["sanity"]["failed"] == 0 for s in steps)


def test_cli_histories_sent_to_a_model_that_reads_none_are_counted_as_errors(served, tiny_repository, capsys):
    args = ["--target", served.target, "--model", "mf", "--method", "recommend", "--histories"]
    args += ["--repository", str(tiny_repository), "--concurrency", "1", "--requests", "5", "--warmup", "0"]
    assert main([*args, "--quiet"]) == 2
    assert "histories are for LSTM models" in capsys.readouterr().err
