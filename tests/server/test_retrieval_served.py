"""Recommend by user id served from a version's retrieval index, end to end over gRPC, against the exact path."""

from __future__ import annotations

import warnings
from pathlib import Path

import grpc
import numpy as np
import pytest

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc

pytest.importorskip("faiss")

MODELS = ("mf", "lstm")
NEVER = 2**62  # a server threshold above every catalogue: always score exactly


@pytest.fixture(scope="module")
def indexed_repository(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoints: dict[str, Path]) -> Path:
    """Tiny MF and LSTM exported with an exact (flat) index from 1 item: every version serves from it."""
    from exporter import export_checkpoint
    from exporter.retrieval import RetrievalOptions
    from exporter.retrieval_index import IndexSpec

    repository = tmp_path_factory.mktemp("indexed-repository")
    options = RetrievalOptions(min_items=1, spec=IndexSpec(kind="flat"), required=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for arch in MODELS:
            export_checkpoint(tiny_checkpoints[arch], repository, formats=("onnx",), retrieval=options)
    return repository


def _served(thread, name: str):
    return thread.server.registry.record(name).model


def _stored_users(repository: Path, name: str) -> tuple[list[str], list[set[str]]]:
    """Users with a training history, and the raw ids of the items each has seen."""
    folder = repository / name / "1"
    users = np.load(folder / "user_ids.npy").tolist()
    items = np.load(folder / "item_ids.npy")
    offsets, history = np.load(folder / "history_offsets.npy"), np.load(folder / "history_items.npy")
    kept = [u for u in range(len(users)) if offsets[u + 1] > offsets[u]]
    return [users[u] for u in kept], [set(items[history[offsets[u] : offsets[u + 1]]].tolist()) for u in kept]


def _recommend(target: str, name: str, users: list[str], k: int, candidates: list[str] = ()) -> list:
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        request = pb.RecommendRequest(
            model=pb.ModelSpec(name=name), user_ids=users, k=k, exclude_seen=True, candidate_item_ids=candidates
        )
        return list(stub.Recommend(request).results)


@pytest.fixture
def servers(indexed_repository: Path, start_server):
    """(index server, exact server) over the same repository; the exact one's threshold is above every catalogue."""
    return start_server(indexed_repository), start_server(indexed_repository, retrieval_min_items=NEVER)


@pytest.mark.parametrize("name", MODELS)
def test_recommend_is_served_from_the_index_and_matches_the_exact_path(
    servers, indexed_repository: Path, name: str
) -> None:
    indexed, exact = servers
    model = _served(indexed, name)
    assert model.retrieval is not None and _served(exact, name).retrieval is None
    assert isinstance(model.retrieval.user_vectors, np.memmap)  # large versions share pages, not copies
    users, seen = _stored_users(indexed_repository, name)
    calls = model.retrieval.calls
    got = _recommend(indexed.target, name, users, k=10)
    assert model.retrieval.calls > calls
    want = _recommend(exact.target, name, users, k=10)
    same = 0
    for result, reference, seen_items in zip(got, want, seen, strict=True):
        assert len(result.item_ids) == 10 and not seen_items & set(result.item_ids)
        same += list(result.item_ids) == list(reference.item_ids)
        np.testing.assert_allclose(sorted(result.scores), sorted(reference.scores), rtol=1e-4, atol=1e-4)
    assert same >= 0.95 * len(users)  # a flat index is exact: only float ties may reorder


def test_candidates_and_seen_items_are_honoured_through_the_index(servers, indexed_repository: Path) -> None:
    indexed, exact = servers
    users, seen = _stored_users(indexed_repository, "mf")
    items = np.load(indexed_repository / "mf" / "1" / "item_ids.npy").tolist()
    candidates = sorted(seen[0])[:3] + [i for i in items if i not in seen[0]][:8]  # 3 seen, 8 eligible
    [result] = _recommend(indexed.target, "mf", users[:1], k=10, candidates=candidates)
    [reference] = _recommend(exact.target, "mf", users[:1], k=10, candidates=candidates)
    assert len(result.item_ids) == 8 and set(result.item_ids) <= set(candidates) - seen[0]
    assert list(result.item_ids) == list(reference.item_ids)


def test_below_the_threshold_the_catalogue_is_scored(indexed_repository: Path, start_server) -> None:
    server = start_server(indexed_repository, retrieval_min_items=151)  # tiny catalogues hold 150 items
    assert all(_served(server, name).retrieval is None for name in MODELS)
    assert _served(server, "mf").config.num_items < 151
