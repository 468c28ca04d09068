"""bench/serving.py's OIP rows: the recsys.v1 Predict requests re-encoded as tritonclient would send them."""

from __future__ import annotations

import struct

import numpy as np

from bench.serving import CEILING, OIP_PREDICT1, parse_args, plan
from bench.serving_oip import MODEL_INFER, infer_request, oip_workload
from loadtest.workload import IdSpace, WorkloadSpec, build_workload
from protos.inference import open_inference_grpc_pb2 as oip
from protos.recsys.v1 import service_pb2


def test_an_oip_request_carries_the_same_pairs_as_raw_bytes():
    predict = service_pb2.PredictRequest(
        model=service_pb2.ModelSpec(name="mf"), user_ids=["u1", "u22"], item_ids=["i3", ""]
    )
    request = infer_request(predict)
    assert request.model_name == "mf" and request.model_version == ""
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [
        ("user_id", "BYTES", [2]),
        ("item_id", "BYTES", [2]),
    ]
    assert request.raw_input_contents[0] == struct.pack("<I", 2) + b"u1" + struct.pack("<I", 3) + b"u22"
    assert request.raw_input_contents[1] == struct.pack("<I", 2) + b"i3" + struct.pack("<I", 0)


def test_oip_rows_sit_beside_the_recsys_rows_and_share_their_ceiling():
    args = parse_args(["--quick", "--backends", "onnx", "--batching", "on", "--archs", "mf,lstm"])
    ceiling, servers = plan(args)
    labels = [c.label for c in servers["onnx/batch-on"]]
    assert labels.index("onnx/batch-on/mf oip predict x1") == labels.index("onnx/batch-on/mf predict x1") + 1
    assert "onnx/batch-on/mf oip predict x1000" in labels and "onnx/batch-on/lstm oip predict x1000" not in labels
    assert all(not c.kind.oip for c in ceiling)
    assert OIP_PREDICT1.shape in {c.kind.shape for c in ceiling if c.config == CEILING}
    _, without = plan(parse_args(["--quick", "--no-oip"]))
    assert not any(c.kind.oip for cases in without.values() for c in cases)

    ids = IdSpace(user_ids=np.array(["u0", "u1"]), item_ids=np.array(["i0", "i1", "i2"]))
    recsys = build_workload(WorkloadSpec(method="predict", model="mf", rows_per_request=3), ids)
    converted = oip_workload(recsys)
    assert converted.method_path == MODEL_INFER and len(converted.payloads) == len(recsys.payloads)
    first = oip.ModelInferRequest.FromString(converted.payloads[0])
    assert first.inputs[0].shape == [3] and len(first.raw_input_contents) == 2
