"""Drives tritonclient[grpc] for the OIP tests, in a process of its own.

tritonclient's generated ``grpc_service.proto`` and ours both define package ``inference``, and
protobuf refuses to load two files defining the same symbols into one process ("duplicate symbol
'inference.ServerLiveRequest'"), so the test process (which runs the server) never imports
tritonclient: it sends this script one JSON request per line on stdin and reads one JSON answer per
line on stdout. Requests: ``{"target": "127.0.0.1:PORT", "op": ..., ...}`` with op ``live``,
``ready``, ``model_ready``, ``server_metadata``, ``model_metadata`` or ``infer``; answers are
``{"ok": true, "result": ...}`` or ``{"ok": false, "code": "INVALID_ARGUMENT", "message": ...}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

_NUMPY = {"BYTES": object, "INT64": np.int64, "FP32": np.float32, "BOOL": bool}
_clients: dict[str, triton.InferenceServerClient] = {}


def _client(target: str) -> triton.InferenceServerClient:
    if target not in _clients:
        _clients[target] = triton.InferenceServerClient(url=target)
    return _clients[target]


def _tensors(tensors: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape]} for t in tensors]


def _plain(array: np.ndarray) -> Any:
    if array.dtype == object:
        return [value.decode() for value in array.ravel().tolist()]
    return array.ravel().tolist()


def _infer(client: triton.InferenceServerClient, request: dict[str, Any]) -> dict[str, Any]:
    inputs = []
    for spec in request["inputs"]:
        data = np.array(spec["data"], dtype=_NUMPY[spec["datatype"]]).reshape(spec.get("shape", [-1]))
        tensor = triton.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(name) for name in request.get("outputs") or ()] or None
    result = client.infer(
        request["model"],
        inputs,
        model_version=request.get("version", ""),
        outputs=outputs,
        request_id=request.get("id", ""),
        parameters=request.get("parameters"),
    )
    response = result.get_response()
    return {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "raw": len(response.raw_output_contents) == len(response.outputs),
        "outputs": {
            t.name: {"datatype": t.datatype, "shape": list(t.shape), "data": _plain(result.as_numpy(t.name))}
            for t in response.outputs
        },
    }


def _run(request: dict[str, Any]) -> Any:
    client = _client(request["target"])
    op = request["op"]
    if op == "live":
        return client.is_server_live()
    if op == "ready":
        return client.is_server_ready()
    if op == "model_ready":
        return client.is_model_ready(request["model"], request.get("version", ""))
    if op == "server_metadata":
        metadata = client.get_server_metadata()
        return {"name": metadata.name, "version": metadata.version, "extensions": list(metadata.extensions)}
    if op == "model_metadata":
        metadata = client.get_model_metadata(request["model"], request.get("version", ""))
        return {
            "name": metadata.name,
            "versions": list(metadata.versions),
            "platform": metadata.platform,
            "inputs": _tensors(metadata.inputs),
            "outputs": _tensors(metadata.outputs),
        }
    if op == "infer":
        return _infer(client, request)
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    """Answers requests until stdin closes."""
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": True, "result": _run(request)}
        except InferenceServerException as error:
            code = (error.status() or "").removeprefix("StatusCode.")
            answer = {"ok": False, "code": code, "message": error.message()}
        print(json.dumps(answer), flush=True)
    for client in _clients.values():
        client.close()


if __name__ == "__main__":
    main()
