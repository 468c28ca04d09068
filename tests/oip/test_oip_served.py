"""OIP over our own stubs: typed contents, integer ids, the shared batcher (queue full), versions not ready."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import struct
from pathlib import Path

import grpc
import numpy as np
import pytest
from oip_helpers import bytes_input, sample_pairs

from client import AsyncRecsysClient, RecsysClient
from protos.inference import open_inference_grpc_pb2 as oip
from protos.inference import open_inference_grpc_pb2_grpc as oip_grpc


def _infer_error(stub, request: oip.ModelInferRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    return caught.value


def test_typed_contents_in_give_typed_contents_out_with_the_raw_numbers(served, oip_stub):
    users, items = sample_pairs(served.config.repository, "gcn", 20, seed=4)
    typed = oip_stub.ModelInfer(
        oip.ModelInferRequest(model_name="gcn", inputs=[bytes_input("user_id", users), bytes_input("item_id", items)])
    )
    assert not typed.raw_output_contents and typed.outputs[0].shape == [20]
    ratings = np.array(typed.outputs[0].contents.fp32_contents, dtype=np.float32)

    raw = [b"".join(struct.pack("<I", len(v)) + v.encode() for v in values) for values in (users, items)]
    request = oip.ModelInferRequest(
        model_name="gcn",
        inputs=[
            oip.ModelInferRequest.InferInputTensor(name=name, datatype="BYTES", shape=[20])
            for name in ("user_id", "item_id")
        ],
        raw_input_contents=raw,
    )
    as_raw = oip_stub.ModelInfer(request)
    np.testing.assert_array_equal(np.frombuffer(as_raw.raw_output_contents[0], "<f4"), ratings)
    request.parameters["binary_data_output"].bool_param = False
    typed_again = oip_stub.ModelInfer(request)
    assert not typed_again.raw_output_contents
    np.testing.assert_array_equal(typed_again.outputs[0].contents.fp32_contents, ratings)
    with RecsysClient(served.target) as client:
        np.testing.assert_array_equal(client.predict("gcn", users, items).ratings, ratings)


def test_malformed_tensors_are_invalid_argument_naming_the_tensor(served, oip_stub):
    users, items = ["u0", "u1"], ["i0", "i1"]
    tensors = [bytes_input("user_id", users), bytes_input("item_id", items)]
    cases = {
        "short raw": (
            oip.ModelInferRequest(
                model_name="mf",
                inputs=[
                    oip.ModelInferRequest.InferInputTensor(name=name, datatype="BYTES", shape=[2])
                    for name in ("user_id", "item_id")
                ],
                raw_input_contents=[b"\x02\x00\x00\x00u0\x05\x00\x00\x00u1", b"\x02\x00\x00\x00i0\x02\x00\x00\x00i1"],
            ),
            "raw contents of input 'user_id': element 1 claims 5 bytes but only 2 remain",
        ),
        "raw and contents": (
            oip.ModelInferRequest(model_name="mf", inputs=tensors, raw_input_contents=[b"", b""]),
            "input 'user_id' sets contents while the request uses raw_input_contents",
        ),
        "shape": (
            oip.ModelInferRequest(
                model_name="mf",
                inputs=[
                    oip.ModelInferRequest.InferInputTensor(
                        name="user_id", datatype="BYTES", shape=[1, 2], contents=tensors[0].contents
                    ),
                    tensors[1],
                ],
            ),
            "input 'user_id' of model 'mf' has shape [1, 2], expected [-1]",
        ),
        "count": (
            oip.ModelInferRequest(
                model_name="mf",
                inputs=[
                    oip.ModelInferRequest.InferInputTensor(
                        name="user_id", datatype="BYTES", shape=[3], contents=tensors[0].contents
                    ),
                    bytes_input("item_id", ["i0", "i1", "i2"]),
                ],
            ),
            "input 'user_id' has 2 bytes_contents elements but its shape [3] needs 3",
        ),
        "output": (
            oip.ModelInferRequest(
                model_name="mf", inputs=tensors, outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name="x")]
            ),
            "model 'mf' has no output 'x'; its outputs are ['rating']",
        ),
    }
    for case, (request, expected) in cases.items():
        error = _infer_error(oip_stub, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, case
        assert expected in error.details(), (case, error.details())


def _integer(raw_id: str) -> str:
    return str(1000 + int(raw_id[1:])) if raw_id.startswith("u") else str(3 * int(raw_id[1:]))


@pytest.fixture(scope="module")
def integer_repository(tmp_path_factory, tiny_repository) -> Path:
    """mf with its ids rewritten as decimal integers ("u7" -> "1007", "i7" -> "21"), dense as it is."""
    root = tmp_path_factory.mktemp("oip-integer-ids")
    shutil.copytree(tiny_repository / "mf", root / "mf")
    shutil.copytree(tiny_repository / "dense", root / "dense")
    config_path = root / "mf" / "1" / "config.json"
    config = json.loads(config_path.read_text())
    for entry in config["side_files"]:
        if entry["kind"] in ("SIDE_FILE_KIND_USER_IDS", "SIDE_FILE_KIND_ITEM_IDS"):
            path = root / "mf" / "1" / entry["path"]
            np.save(path, np.array([_integer(i) for i in np.load(path).tolist()]))
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))
    return root


def test_integer_ids_as_int64_inputs_give_the_string_ids_ratings(start_server, integer_repository):
    server = start_server(integer_repository)
    rng = np.random.default_rng(5)
    users, items = 1000 + rng.integers(0, 40, 100), 3 * rng.integers(0, 30, 100)
    with grpc.insecure_channel(server.target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        metadata = stub.ModelMetadata(oip.ModelMetadataRequest(name="mf"))
        assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
            ("user_id", "BYTES", [-1]),
            ("item_id", "BYTES", [-1]),
            ("user_int_id", "INT64", [-1]),
            ("item_int_id", "INT64", [-1]),
        ]
        assert metadata.properties["integer_ids"] == "true"
        request = oip.ModelInferRequest(
            model_name="mf",
            inputs=[
                oip.ModelInferRequest.InferInputTensor(name=name, datatype="INT64", shape=[100])
                for name in ("user_int_id", "item_int_id")
            ],
            raw_input_contents=[users.astype("<i8").tobytes(), items.astype("<i8").tobytes()],
        )
        ratings = np.frombuffer(stub.ModelInfer(request).raw_output_contents[0], "<f4")
        strings = stub.ModelInfer(
            oip.ModelInferRequest(
                model_name="mf",
                inputs=[bytes_input("user_id", list(map(str, users))), bytes_input("item_id", list(map(str, items)))],
            )
        )
        np.testing.assert_array_equal(strings.outputs[0].contents.fp32_contents, ratings)

        request.model_name = "dense"
        error = _infer_error(stub, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not all decimal integers, so send them as BYTES user_id/item_id" in error.details()
        request.model_name = "mf"
        request.raw_input_contents[0] = np.array([1000, 7], "<i8").tobytes()
        request.inputs[0].shape[0] = 2
        error = _infer_error(stub, request)
        assert "'user_int_id' (2 elements) and 'item_int_id' (100)" in error.details()
    with RecsysClient(server.target) as client:
        np.testing.assert_array_equal(client.predict("mf", users, items).ratings, ratings)


async def test_model_infer_waits_in_the_recsys_v1_batcher_and_gets_resource_exhausted(tiny_repository, start_server):
    thread = start_server(
        tiny_repository, max_batch_size=4, max_queue_rows=4, max_rows_per_request=4, max_queue_delay_us=2_000_000
    )
    async with AsyncRecsysClient(thread.target) as client, grpc.aio.insecure_channel(thread.target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        waiting = asyncio.ensure_future(client.predict("mf", ["u0"] * 3, ["i0"] * 3, timeout=10))
        await asyncio.sleep(0.2)
        request = oip.ModelInferRequest(
            model_name="mf", inputs=[bytes_input("user_id", ["u1"] * 2), bytes_input("item_id", ["i1"] * 2)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ModelInfer(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queue_rows=4" in caught.value.details()
        assert (await waiting).ratings.shape == (3,)
    code = thread.metrics.value("recsys_requests_total", method="ModelInfer", model="mf", code="RESOURCE_EXHAUSTED")
    assert code == 1


def test_a_broken_version_is_unavailable_and_not_ready(start_server, copy_repository, tmp_path):
    repository = copy_repository(tmp_path / "repo", models=("mf", "dense"))
    (repository / "dense" / "1" / "predict.onnx").write_bytes(b"not the exported graph")
    server = start_server(repository)
    with grpc.insecure_channel(server.target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(oip.ServerReadyRequest()).ready, "mf is ready"
        assert not stub.ModelReady(oip.ModelReadyRequest(name="dense")).ready
        assert stub.ModelReady(oip.ModelReadyRequest(name="mf.recommend")).ready
        request = oip.ModelInferRequest(
            model_name="dense.recommend", inputs=[bytes_input("user_id", ["u0"])], model_version="1"
        )
        error = _infer_error(stub, request)
        assert error.code() == grpc.StatusCode.UNAVAILABLE and "sha256" in error.details(), error.details()
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelMetadata(oip.ModelMetadataRequest(name="dense"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
