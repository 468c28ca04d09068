from collections import Counter

import numpy as np
import pytest
from google.protobuf import json_format

from loadtest.connection import Connection
from loadtest.workload import (
    IdSpace,
    WorkloadError,
    WorkloadSpec,
    build_workload,
    discover_id_space,
    load_id_space,
    zipf_probabilities,
)
from protos.recsys.v1 import model_config_pb2


@pytest.fixture
def repository(tmp_path):
    folder = tmp_path / "repo" / "mf" / "3"
    folder.mkdir(parents=True)
    (tmp_path / "repo" / "mf" / "1").mkdir()  # an older version, not picked
    np.save(folder / "user_ids.npy", np.array(["u10", "u20", "u30"]))
    np.save(folder / "item_ids.npy", np.array(["a", "b", "c", "d"]))
    np.save(folder / "item_popularity.npy", np.array([1.0, 50.0, 5.0, 0.0], dtype=np.float32))
    np.save(folder / "history_offsets.npy", np.array([0, 1, 3, 3], dtype=np.int64))
    np.save(folder / "history_items.npy", np.array([1, 0, 2], dtype=np.int64))
    config = model_config_pb2.ModelConfig(name="mf", version=3, rating_scale=model_config_pb2.RatingScale(min=1, max=5))
    (folder / "config.json").write_text(json_format.MessageToJson(config))
    return tmp_path / "repo"


def test_load_id_space_reads_the_newest_version_side_files(repository):
    ids = load_id_space(repository, "mf")
    assert ids.user_ids.tolist() == ["u10", "u20", "u30"]
    assert ids.rating_scale == (1.0, 5.0)
    assert ids.seen_items(1).tolist() == [0, 2]
    assert ids.item_order().tolist() == [1, 2, 0, 3]
    assert ids.user_order().tolist() == [1, 0, 2]
    assert "mf/3" in ids.source


def test_load_id_space_errors_name_the_fix(repository):
    with pytest.raises(WorkloadError, match="--model"):
        load_id_space(repository, "dense")
    with pytest.raises(WorkloadError, match="--version"):
        load_id_space(repository, "mf", version=7)
    with pytest.raises(WorkloadError, match=r"user_ids\.npy is missing"):
        load_id_space(repository, "mf", version=1)


def test_requests_follow_popularity_with_zipf_skew(repository):
    ids = load_id_space(repository, "mf")
    spec = WorkloadSpec(method="predict", model="mf", version=3, rows_per_request=50, pool_size=40, skew=1.2)
    workload = build_workload(spec, ids)
    requests = [workload.parse_request(i) for i in range(len(workload.payloads))]
    assert len(requests) == 40 and all(len(r.user_ids) == len(r.item_ids) == 50 for r in requests)
    assert all(r.model.name == "mf" and r.model.version == 3 for r in requests)
    items = Counter(i for r in requests for i in r.item_ids)
    users = Counter(u for r in requests for u in r.user_ids)
    assert [i for i, _ in items.most_common()] == ["b", "c", "a", "d"]  # the popularity order
    assert users.most_common(1)[0][0] == "u20"  # the longest history
    uniform = build_workload(WorkloadSpec(method="predict", model="mf", rows_per_request=50, pool_size=40, skew=0), ids)
    flat = Counter(i for k in range(40) for i in uniform.parse_request(k).item_ids)
    assert max(flat.values()) / min(flat.values()) < 1.3


def test_recommend_requests_and_pool_cap():
    ids = IdSpace(np.array(["1", "2"]), np.array([str(i) for i in range(100)]))
    spec = WorkloadSpec(method="recommend", model="m", rows_per_request=3, k=7, exclude_seen=False)
    request = build_workload(spec, ids).parse_request(5)
    assert (len(request.user_ids), request.k, request.exclude_seen) == (3, 7, False)
    big = build_workload(WorkloadSpec(model="m", rows_per_request=100_000), ids)
    assert len(big.payloads) == 8
    with pytest.raises(WorkloadError, match="lower --k"):
        build_workload(WorkloadSpec(method="recommend", model="m", k=101), ids)


def test_zipf_probabilities():
    p = zipf_probabilities(4, 1.0)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[3] == pytest.approx(4.0)
    assert zipf_probabilities(3, 0.0) == pytest.approx([1 / 3] * 3)


async def test_discover_id_space_through_the_server(fake_server):
    server = fake_server(num_users=30, num_items=12)
    [client] = Connection(server.target).open()
    try:
        ids = await discover_id_space(client, "fake")
    finally:
        await client.close()
    assert ids.user_ids.tolist() == [str(i) for i in range(1, 31)]
    assert sorted(ids.item_ids.tolist(), key=int) == [str(i) for i in range(1, 13)]
    assert ids.item_ids[ids.item_order()[0]] == "1"  # the fake's most popular item
    assert ids.rating_scale == (1.0, 5.0)
