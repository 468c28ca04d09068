"""The OIP tensor codec and name/version mapping, without a server; and the stub check covering the OIP proto."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from protos.inference import open_inference_grpc_pb2 as pb
from server.errors import InvalidInput, ModelNotFound
from server.oip.models import Call, parse_version, resolve
from server.oip.tensors import OutputTensor, decode_int64, decode_strings, request_inputs, write_outputs

ROOT = Path(__file__).resolve().parents[2]


def _raw_bytes(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def _one_input(datatype: str, shape: list[int], raw: bytes) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        inputs=[pb.ModelInferRequest.InferInputTensor(name="t", datatype=datatype, shape=shape)],
        raw_input_contents=[raw],
    )


def test_raw_bytes_round_trip_with_empty_and_unicode_elements():
    values = ["u1", "", "ünï", "x" * 300]
    request = _one_input("BYTES", [4], _raw_bytes([v.encode() for v in values]))
    assert decode_strings(request_inputs(request)["t"]) == values

    response = pb.ModelInferResponse()
    write_outputs(response, [OutputTensor("t", "BYTES", (2, 2), values)], raw=True)
    assert response.raw_output_contents[0] == _raw_bytes([v.encode() for v in values])
    assert list(response.outputs[0].shape) == [2, 2] and not response.outputs[0].HasField("contents")


@pytest.mark.parametrize(
    ("raw", "shape", "message"),
    [
        (_raw_bytes([b"a", b"b"]), [3], "hold 2 complete BYTES elements (0 bytes left over) but its shape [3] needs 3"),
        (_raw_bytes([b"a", b"b"]) + b"\x00", [2], "(1 bytes left over)"),
        (b"\x09\x00\x00\x00abc", [1], "element 0 claims 9 bytes but only 3 remain"),
        (_raw_bytes([b"\xff"]), [1], "not UTF-8"),
    ],
)
def test_bad_raw_bytes_are_refused_with_what_is_wrong(raw, shape, message):
    with pytest.raises(InvalidInput, match="input 't'") as caught:
        decode_strings(request_inputs(_one_input("BYTES", shape, raw))["t"])
    assert message in str(caught.value)


def test_int64_raw_is_little_endian_and_sized_by_the_shape():
    values = np.array([1, -2, 2**62], dtype="<i8")
    np.testing.assert_array_equal(decode_int64(request_inputs(_one_input("INT64", [3], values.tobytes()))["t"]), values)
    with pytest.raises(InvalidInput, match=r"have 16 bytes but its shape \[3\] needs 24"):
        decode_int64(request_inputs(_one_input("INT64", [3], values[:2].tobytes()))["t"])


def test_typed_outputs_fill_the_datatype_field():
    response = pb.ModelInferResponse()
    outputs = [
        OutputTensor("s", "FP32", (2,), np.array([0.5, 4.25], np.float32)),
        OutputTensor("b", "BOOL", (2,), np.array([True, False])),
    ]
    write_outputs(response, outputs, raw=False)
    assert list(response.outputs[0].contents.fp32_contents) == [0.5, 4.25]
    assert list(response.outputs[1].contents.bool_contents) == [True, False]
    assert not response.raw_output_contents


def test_request_structure_errors():
    tensor = pb.ModelInferRequest.InferInputTensor(name="t", datatype="INT64", shape=[1])
    with pytest.raises(InvalidInput, match="raw_input_contents has 2 entries but the request has 1 inputs"):
        request_inputs(pb.ModelInferRequest(inputs=[tensor], raw_input_contents=[b"", b""]))
    with pytest.raises(InvalidInput, match="input 't' appears twice"):
        request_inputs(pb.ModelInferRequest(inputs=[tensor, tensor]))
    negative = pb.ModelInferRequest.InferInputTensor(name="t", datatype="INT64", shape=[-1])
    with pytest.raises(InvalidInput, match=r"shape \[-1\]: dimensions must be >= 0"):
        request_inputs(pb.ModelInferRequest(inputs=[negative]))


def test_names_and_versions_resolve_with_the_model_name_first():
    known = {"mf", "odd.recommend"}
    assert resolve("mf", "", known).call is Call.PREDICT
    assert (resolve("mf.recommend", "3", known).model, resolve("mf.recommend", "3", known).version) == ("mf", 3)
    assert resolve("odd.recommend", "", known).call is Call.PREDICT, "a model's own name wins over the suffix"
    with pytest.raises(ModelNotFound, match=r"unknown model 'gcn'.*\['mf', 'mf.recommend', 'odd.recommend'"):
        resolve("gcn", "", known)
    for bad in ("0", "-1", "v1", "1.0", "١", "9" * 19):
        with pytest.raises(InvalidInput, match="is not a version number"):
            parse_version(bad)


def test_stub_check_covers_the_oip_proto(tmp_path):
    shutil.copytree(ROOT / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("__pycache__"))
    stub = tmp_path / "protos" / "inference" / "open_inference_grpc_pb2.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    check = [sys.executable, "-m", "protos.generate", "--check"]
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "inference/open_inference_grpc_pb2.py" in result.stderr, result.stderr
