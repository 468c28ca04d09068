"""Predict pairs as integer ids: which request fields the client fills, and refusals before anything is sent."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from client import AsyncRecsysClient, RecsysClient, predict_request
from loadtest.fake_server import FakeServerConfig, start_fake_server
from protos.recsys.v1 import service_pb2


def _fields(request: service_pb2.PredictRequest) -> dict[str, list]:
    names = ("user_ids", "item_ids", "user_int_ids", "item_int_ids")
    return {name: list(getattr(request, name)) for name in names if len(getattr(request, name))}


def test_strings_fill_the_string_fields():
    request = predict_request("mf", ["196", "186"], ("242", "302"), version=3)
    assert _fields(request) == {"user_ids": ["196", "186"], "item_ids": ["242", "302"]}
    assert (request.model.name, request.model.version) == ("mf", 3)
    unicode_array = predict_request("mf", np.array(["196", "186"]), np.array(["242", "302"]))
    assert unicode_array == predict_request("mf", ["196", "186"], ["242", "302"])


@pytest.mark.parametrize(
    ("users", "items"),
    [
        ([196, 186], [242, 302]),
        (np.array([196, 186]), np.array([242, 302])),
        (np.array([196, 186], dtype=np.int32), np.array([242, 302], dtype=np.uint16)),
        ([np.int64(196), np.int64(186)], (i for i in (242, 302))),  # NumPy scalars and a generator
    ],
    ids=["python-ints", "int64-arrays", "int32-and-uint16-arrays", "numpy-scalars-and-generator"],
)
def test_integers_fill_the_integer_fields(users, items):
    request = predict_request("mf", users, items)
    assert _fields(request) == {"user_int_ids": [196, 186], "item_int_ids": [242, 302]}
    # Packed int64 on the wire: a 1,000-pair request is far smaller than with string ids.
    assert request.SerializeToString() == predict_request("mf", [196, 186], [242, 302]).SerializeToString()


def test_large_numpy_arrays_keep_order_and_extreme_values():
    rng = np.random.default_rng(0)
    users = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 1000, dtype=np.int64)
    items = rng.integers(0, 2000, 1000)
    request = predict_request("mf", users, items)
    np.testing.assert_array_equal(np.array(request.user_int_ids), users)
    np.testing.assert_array_equal(np.array(request.item_int_ids), items)
    strings = predict_request("mf", users.astype(str), items.astype(str))
    assert len(request.SerializeToString()) < len(strings.SerializeToString())


def test_mixing_integer_and_string_sides_says_what_to_do():
    with pytest.raises(TypeError, match=r"user_ids are integers but item_ids are strings: give both sides"):
        predict_request("mf", [196], ["242"])
    with pytest.raises(TypeError, match=r"user_ids are strings but item_ids are integers"):
        predict_request("mf", np.array(["196"]), np.array([242]))
    with pytest.raises(TypeError, match="all strings or all integers on each side"):
        predict_request("mf", [196, "186"], [242, 302])
    with pytest.raises(TypeError, match="all strings or all integers on each side"):
        predict_request("mf", ["196", 186], ["242", "302"])


def test_other_id_types_are_refused():
    with pytest.raises(TypeError, match=r"float64 array; ids are strings or integers, e.g. ids.astype\(np.int64\)"):
        predict_request("mf", np.array([1.0]), np.array([2.0]))
    with pytest.raises(TypeError, match="booleans are not ids"):
        predict_request("mf", [True], [1])
    with pytest.raises(TypeError, match="booleans are not ids"):
        predict_request("mf", np.array([1]), np.array([True]))
    with pytest.raises(TypeError, match="not float"):
        predict_request("mf", [1.5], [2])
    with pytest.raises(ValueError, match="2-D array; give one id per pair"):
        predict_request("mf", np.ones((2, 2), dtype=np.int64), np.ones(4, dtype=np.int64))
    with pytest.raises(ValueError, match="beyond int64"):
        predict_request("mf", np.array([2**64 - 1], dtype=np.uint64), np.array([1], dtype=np.uint64))


def test_empty_sides_take_the_form_of_the_other():
    assert _fields(predict_request("mf", [], [5])) == {"item_int_ids": [5]}
    assert _fields(predict_request("mf", np.array([], dtype=np.int64), ["5"])) == {"item_ids": ["5"]}
    assert _fields(predict_request("mf", [], [])) == {}


async def test_both_clients_predict_with_integer_ids_and_see_integer_ids_in_metadata():
    server, port = await start_fake_server(FakeServerConfig(num_users=50, num_items=40))
    target = f"127.0.0.1:{port}"
    try:
        async with AsyncRecsysClient(target, timeout=10) as client:
            meta = await client.metadata("fake")
            answer = await client.predict("fake", np.arange(1, 31), np.arange(40, 10, -1))
            with pytest.raises(TypeError, match="give both sides"):
                await client.predict("fake", [1], ["2"])
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.predict("fake", [1, 51], [2, 3])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "51" in caught.value.details()
        assert meta.integer_ids is True
        assert answer.ratings.shape == (30,) and answer.ratings.dtype == np.float32

        def sync_call() -> np.ndarray:
            with RecsysClient(target, timeout=10) as sync_client:
                return sync_client.predict("fake", [1, 2, 3], np.array([4, 5, 6], dtype=np.int32)).ratings

        assert (await asyncio.to_thread(sync_call)).tolist() == [3.5, 3.5, 3.5]
    finally:
        await server.stop(None)


async def test_a_model_without_integer_ids_says_so_in_metadata():
    server, port = await start_fake_server(FakeServerConfig(integer_ids=False))
    try:
        async with AsyncRecsysClient(f"127.0.0.1:{port}", timeout=10) as client:
            assert (await client.metadata("fake")).integer_ids is False
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.predict("fake", [1], [2])
            assert (await client.predict("fake", ["1"], ["2"])).ratings.tolist() == [3.5]
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "does not take integer ids" in caught.value.details()
    finally:
        await server.stop(None)
