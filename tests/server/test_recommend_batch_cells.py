"""Recommend batches are sized by users x catalogue items, and larger requests run in chunks."""

from __future__ import annotations

import grpc
import numpy as np

from protos.recsys.v1 import service_pb2 as pb
from protos.recsys.v1 import service_pb2_grpc


def test_recommend_batches_are_capped_by_catalogue_cells_and_large_requests_chunked(start_server, tiny_repository):
    server = start_server(tiny_repository, max_batch_cells=300)
    model = server.server.registry.record("mf").model
    assert model.batchers["predict"].max_batch_rows == 256
    assert model.batchers["recommend"].max_batch_rows == 300 // model.catalog.num_items
    users = model.catalog.user_ids[:9].tolist()
    with grpc.insecure_channel(server.target) as channel:
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        answer = stub.Recommend(pb.RecommendRequest(model=pb.ModelSpec(name="mf"), user_ids=users, k=5))
        one_by_one = [
            stub.Recommend(pb.RecommendRequest(model=pb.ModelSpec(name="mf"), user_ids=[user], k=5)).results[0]
            for user in users
        ]
    assert [r.item_ids for r in answer.results] == [r.item_ids for r in one_by_one]
    np.testing.assert_allclose([r.scores for r in answer.results], [r.scores for r in one_by_one], atol=1e-6)
