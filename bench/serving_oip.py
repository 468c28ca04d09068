"""OIP rows of the serving benchmark: recsys.v1 Predict requests re-encoded as OIP ModelInfer requests.

Each recsys.v1 ``PredictRequest`` of a workload becomes the ``ModelInferRequest`` tritonclient would
send for the same pairs: inputs ``user_id``/``item_id`` BYTES [rows] as ``raw_input_contents``
(4-byte little-endian length, then the bytes), so an OIP row measures the same model, ids and rows per
call as the recsys.v1 row beside it, through the same batcher.
"""

from __future__ import annotations

import dataclasses
import struct

from loadtest.workload import Workload
from protos.inference import open_inference_grpc_pb2 as oip
from protos.recsys.v1 import service_pb2

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
_LENGTH = struct.Struct("<I")


def _raw(values: list[str]) -> bytes:
    return b"".join(_LENGTH.pack(len(encoded)) + encoded for encoded in (v.encode() for v in values))


def infer_request(predict: service_pb2.PredictRequest) -> oip.ModelInferRequest:
    """The ModelInfer request asking what ``predict`` asks (string ids only)."""
    rows = len(predict.user_ids)
    return oip.ModelInferRequest(
        model_name=predict.model.name,
        model_version=str(predict.model.version) if predict.model.version else "",
        inputs=[
            oip.ModelInferRequest.InferInputTensor(name=name, datatype="BYTES", shape=[rows])
            for name in ("user_id", "item_id")
        ],
        raw_input_contents=[_raw(list(predict.user_ids)), _raw(list(predict.item_ids))],
    )


def oip_workload(workload: Workload) -> Workload:
    """The same requests as a recsys.v1 Predict workload, sent to OIP ModelInfer.

    Raises:
        ValueError: the workload is not Predict with string ids.
    """
    if workload.spec.method != "predict" or workload.spec.int_ids:
        raise ValueError("OIP rows re-encode Predict workloads with string ids only")
    payloads = [
        infer_request(service_pb2.PredictRequest.FromString(payload)).SerializeToString()
        for payload in workload.payloads
    ]
    return dataclasses.replace(workload, method_path=MODEL_INFER, payloads=payloads)
