"""OIP tensors in and out: typed ``contents`` or little-endian ``raw_*_contents``, checked against their shape.

The Open Inference Protocol carries each tensor either in the ``InferTensorContents`` field of its
datatype or, in the same order as the tensors, as one ``raw_input_contents`` / ``raw_output_contents``
entry: the flattened, row-major elements, little-endian, with BYTES elements each prefixed by their
length as a 4-byte little-endian unsigned integer (what tritonclient sends and reads). A request uses
one form for all its inputs; this module reads either and writes either.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protos.inference import open_inference_grpc_pb2 as pb
from server.errors import InvalidInput

BYTES = "BYTES"
INT64 = "INT64"
FP32 = "FP32"
BOOL = "BOOL"

_LENGTH = struct.Struct("<I")
_NUMPY = {INT64: np.dtype("<i8"), FP32: np.dtype("<f4"), BOOL: np.dtype("?")}
_CONTENTS_FIELD = {INT64: "int64_contents", FP32: "fp32_contents", BOOL: "bool_contents", BYTES: "bytes_contents"}


@dataclass(frozen=True)
class InputTensor:
    """One request input, not decoded yet.

    Attributes:
        name: Tensor name.
        datatype: OIP datatype as sent (``BYTES``, ``INT64``, ...).
        shape: Dimensions as sent, each >= 0.
        raw: Its ``raw_input_contents`` entry, or None when the typed ``contents`` carry it.
        contents: Its typed contents (empty when ``raw`` is set).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    raw: bytes | None
    contents: pb.InferTensorContents

    @property
    def elements(self) -> int:
        """Number of elements its shape holds."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class OutputTensor:
    """One response output: a float32/int64/bool array, or a list of strings for BYTES."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: np.ndarray | Sequence[str]


def request_inputs(request: pb.ModelInferRequest) -> dict[str, InputTensor]:
    """The inputs of a request by name, with raw contents paired to their tensors.

    Raises:
        InvalidInput: an input name repeats, a dimension is negative, the number of
            ``raw_input_contents`` differs from the number of inputs, or raw and typed contents are mixed.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries but the request has {len(request.inputs)} inputs; "
            "send one entry per input, in the same order"
        )
    inputs: dict[str, InputTensor] = {}
    for index, tensor in enumerate(request.inputs):
        if tensor.name in inputs:
            raise InvalidInput(f"input {_shown(tensor.name)} appears twice; send each input once")
        if any(dim < 0 for dim in tensor.shape):
            raise InvalidInput(f"input {_shown(tensor.name)} has shape {list(tensor.shape)}: dimensions must be >= 0")
        if raw and tensor.HasField("contents"):
            raise InvalidInput(
                f"input {_shown(tensor.name)} sets contents while the request uses raw_input_contents; use one form"
            )
        inputs[tensor.name] = InputTensor(
            tensor.name, tensor.datatype, tuple(tensor.shape), raw[index] if raw else None, tensor.contents
        )
    return inputs


def decode_strings(tensor: InputTensor) -> list[str]:
    """The elements of a BYTES tensor as UTF-8 strings, flattened.

    Raises:
        InvalidInput: the element count differs from the shape, a length prefix runs past the end,
            bytes are left over, or an element is not UTF-8.
    """
    if tensor.raw is None:
        elements = list(tensor.contents.bytes_contents)
        _check_count(tensor, len(elements), "bytes_contents elements")
    else:
        elements = _split_raw_bytes(tensor)
    try:
        return [element.decode() for element in elements]
    except UnicodeDecodeError as error:
        raise InvalidInput(f"input {_shown(tensor.name)} holds bytes that are not UTF-8 text: {error.reason}") from None


def _split_raw_bytes(tensor: InputTensor) -> list[bytes]:
    raw = tensor.raw or b""
    elements = []
    offset, end = 0, len(raw)
    for _ in range(tensor.elements):
        if offset + 4 > end:
            break
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput(
                f"raw contents of input {_shown(tensor.name)}: element {len(elements)} claims {length} bytes but "
                f"only {end - offset} remain; BYTES elements are each a 4-byte little-endian length, then the bytes"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    if len(elements) != tensor.elements or offset != end:
        raise InvalidInput(
            f"raw contents of input {_shown(tensor.name)} hold {len(elements)} complete BYTES elements "
            f"({end - offset} bytes left over) but its shape {list(tensor.shape)} needs {tensor.elements}"
        )
    return elements


def decode_int64(tensor: InputTensor) -> np.ndarray:
    """The elements of an INT64 tensor, int64 [elements] (native byte order).

    Raises:
        InvalidInput: the element count (or raw byte count) differs from the shape.
    """
    if tensor.raw is None:
        values = np.array(tensor.contents.int64_contents, dtype=np.int64)
        _check_count(tensor, len(values), "int64_contents elements")
        return values
    if len(tensor.raw) != 8 * tensor.elements:
        raise InvalidInput(
            f"raw contents of input {_shown(tensor.name)} have {len(tensor.raw)} bytes but its shape "
            f"{list(tensor.shape)} needs {8 * tensor.elements} (8 per INT64 element)"
        )
    return np.frombuffer(tensor.raw, dtype=_NUMPY[INT64]).astype(np.int64, copy=False)


def _check_count(tensor: InputTensor, count: int, what: str) -> None:
    if count != tensor.elements:
        raise InvalidInput(
            f"input {_shown(tensor.name)} has {count} {what} but its shape {list(tensor.shape)} needs {tensor.elements}"
        )


def write_outputs(response: pb.ModelInferResponse, outputs: Sequence[OutputTensor], *, raw: bool) -> None:
    """Appends ``outputs`` to a response, as ``raw_output_contents`` or as typed contents.

    Args:
        response: The response to fill.
        outputs: The tensors, in the order the caller asked for them.
        raw: Write ``raw_output_contents`` (one entry per output, same order) instead of ``contents``.
    """
    for output in outputs:
        tensor = response.outputs.add(name=output.name, datatype=output.datatype, shape=output.shape)
        if raw:
            response.raw_output_contents.append(_raw_bytes(output))
        elif output.datatype == BYTES:
            tensor.contents.bytes_contents.extend(value.encode() for value in output.values)
        else:
            getattr(tensor.contents, _CONTENTS_FIELD[output.datatype]).extend(np.ravel(output.values).tolist())


def _raw_bytes(output: OutputTensor) -> bytes:
    if output.datatype != BYTES:
        return np.ascontiguousarray(output.values, dtype=_NUMPY[output.datatype]).tobytes()
    encoded = [value.encode() for value in output.values]
    return b"".join(_LENGTH.pack(len(value)) + value for value in encoded)


def _shown(name: str) -> str:
    return repr(name if len(name) <= 64 else name[:64] + "…")
