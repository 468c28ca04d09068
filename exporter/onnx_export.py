"""ONNX export of one signature to one self-contained file, verified by reading the saved file back.

Which exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)`` with
``dynamic_axes``). Measured in torch 2.13 by exporting an LSTM scorer twice in one process and
reading the dims back: the torch.export-based exporter with explicit ``torch.export.Dim`` shapes keeps
T symbolic only the first time. Its while_loop LSTM decomposition is patched in and out of the
``aten.lstm`` kernel table per export, the second capture specialises T, and the exporter silently
falls back to a draft export with T fixed to the example length. The TorchScript-based exporter maps
``nn.LSTM`` to the ONNX ``LSTM`` op with the sequence length read from the input at run time, kept T
symbolic on every repeat, and costs ~0.2 s per export instead of ~2-4 s. Whatever the exporter, the
saved file is checked: every dimension the signature marks -1 must come out symbolic, or the export
fails.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from exporter.errors import ExportError
from protos.recsys.v1 import model_config_pb2 as mc

_LOGGER = logging.getLogger(__name__)

ONNX_OPSET = 17
"""Default-domain opset written: supported by every ONNX Runtime since 1.11 and by the TorchScript exporter."""

_ONNX_TYPES = {mc.DATA_TYPE_INT64: onnx.TensorProto.INT64, mc.DATA_TYPE_FLOAT32: onnx.TensorProto.FLOAT}
_DIM_NAMES = ("batch", "history_length")


class _MethodAsForward(nn.Module):
    """Presents one method of a serving module (``recommend``, ...) as ``forward``, which the exporter traces."""

    def __init__(self, serving: nn.Module, method: str) -> None:
        super().__init__()
        self.serving = serving
        self.method = method
        # A new module starts in training mode, and the exporter restores the wrapper's mode on exit
        # recursively: without this the serving module would come back with dropout switched on.
        self.train(serving.training)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.serving, self.method)(*inputs)


def _dynamic_axes(signature: mc.Signature) -> dict[str, dict[int, str]]:
    """Every -1 dimension of the signature, named so that all inputs share one batch and one T symbol."""
    axes: dict[str, dict[int, str]] = {}
    for spec in [*signature.inputs, *signature.outputs]:
        dynamic = {axis: _DIM_NAMES[axis] for axis, size in enumerate(spec.shape) if size == -1}
        if dynamic:
            axes[spec.name] = dynamic
    return axes


def export_onnx(
    serving: nn.Module,
    signature: mc.Signature,
    example: dict[str, torch.Tensor],
    path: Path,
    opset: int = ONNX_OPSET,
) -> int:
    """Export one signature of a serving module to ``path`` and verify the saved file.

    Args:
        serving: the model's serving module in eval mode (``forward`` is predict, plus a method per other
            signature: ``recommend``, and the LSTM's ``predict_user`` and ``recommend_user``).
        signature: which entry point to export, with its input and output specs.
        example: valid example inputs by name; use a batch > 1 and T > 1 so no size-1 broadcast gets traced in.
        path: the ``.onnx`` file to write.
        opset: default-domain opset to target.

    Returns:
        The default-domain opset recorded in the saved file.

    Raises:
        ExportError: the exporter failed or the saved file breaks the signature (see :func:`verify_onnx`).
    """
    module = serving if signature.name == "predict" else _MethodAsForward(serving, signature.name)
    args = tuple(example[spec.name] for spec in signature.inputs)
    with warnings.catch_warnings():
        # Expected and harmless here: the TorchScript exporter is deprecated in favour of the dynamo one
        # (see the module docstring for why we keep it), and it warns that an LSTM exported with a batch
        # > 1 may not run at other batch sizes, which applies only when h0/c0 are inputs; ours start
        # from zeros of the run-time batch, and parity runs batches 1, 7 and 256 to prove it.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*LSTM can cause an error.*", category=UserWarning)
        # nn.LSTM checks its input size in Python; tracing records those checks as constants, which is
        # right for a fixed model (the feature size never varies) and says nothing about B or T.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        try:
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    args,
                    str(path),
                    dynamo=False,
                    input_names=[spec.name for spec in signature.inputs],
                    output_names=[spec.name for spec in signature.outputs],
                    dynamic_axes=_dynamic_axes(signature),
                    opset_version=opset,
                    do_constant_folding=True,
                )
        except Exception as error:  # the exporter raises many types; all mean the same to the caller
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"ONNX export of signature {signature.name!r} failed: {first_line}") from error
    opset_written = verify_onnx(path, signature)
    _LOGGER.debug("wrote %s (opset %d)", path, opset_written)
    return opset_written


def _check_value_info(value: onnx.ValueInfoProto, spec: mc.TensorSpec, path: Path) -> None:
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type != _ONNX_TYPES[spec.dtype]:
        raise ExportError(
            f"{path.name}: {spec.name} has ONNX element type {onnx.TensorProto.DataType.Name(tensor_type.elem_type)}, "
            f"expected {mc.DataType.Name(spec.dtype)}"
        )
    dims = tensor_type.shape.dim
    if len(dims) != len(spec.shape):
        raise ExportError(f"{path.name}: {spec.name} has rank {len(dims)}, expected {len(spec.shape)}")
    for axis, (dim, size) in enumerate(zip(dims, spec.shape, strict=True)):
        if size == -1 and not dim.dim_param:
            raise ExportError(
                f"{path.name}: {spec.name} dim {axis} came out fixed at {dim.dim_value}, expected a dynamic dim; "
                "the exporter specialised it to the example input"
            )
        if size != -1 and dim.HasField("dim_value") and dim.dim_value != size:
            raise ExportError(f"{path.name}: {spec.name} dim {axis} is {dim.dim_value}, expected {size}")


def verify_onnx(path: Path, signature: mc.Signature) -> int:
    """Check a saved ONNX file against its signature, reading it back from disk.

    Checks: ``onnx.checker`` (with shape inference), one self-contained file, input and output names
    in order, element types, ranks, every -1 dimension symbolic and every fixed one as declared.

    Args:
        path: the saved ``.onnx`` file.
        signature: what it must implement.

    Returns:
        The default-domain opset of the file.

    Raises:
        ExportError: naming the file and the first violation found.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"{path.name}: onnx.checker failed: {str(error).strip().splitlines()[0]}") from error
    model = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ExportError(f"{path.name}: weights {external[:3]} are stored outside the file; expected one file")
    for kind, values, specs in (
        ("inputs", model.graph.input, signature.inputs),
        ("outputs", model.graph.output, signature.outputs),
    ):
        names, expected = [v.name for v in values], [s.name for s in specs]
        if names != expected:
            raise ExportError(f"{path.name}: {kind} are {names}, expected {expected}")
        for value, spec in zip(values, specs, strict=True):
            _check_value_info(value, spec, path)
    opsets = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not opsets:
        raise ExportError(f"{path.name}: no default-domain opset recorded")
    return opsets[0]
