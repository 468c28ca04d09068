"""ONNX Runtime backend: one inference session per signature, CUDA when a GPU is usable."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server.errors import ModelLoadError
from server.runtime.base import Runtime, SignatureSpec
from server.runtime.device import wants_cuda

_LOGGER = logging.getLogger(__name__)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    # Spinning worker threads would steal the cores the event loop needs between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _requested_providers(device: str) -> list[str]:
    if not wants_cuda(device):
        return [CPU]
    if CUDA not in ort.get_available_providers():
        message = f"this onnxruntime build has no {CUDA} (providers: {ort.get_available_providers()})"
        if device == "cuda":
            raise ModelLoadError(f"device 'cuda' requested but {message}; install onnxruntime-gpu")
        _LOGGER.warning("a GPU is usable but %s; serving on the CPU", message)
        return [CPU]
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()  # finds CUDA/cuDNN from the nvidia-* wheels of the [gpu] extra
        except Exception as error:  # a failed preload only means the system libraries are used
            _LOGGER.debug("onnxruntime.preload_dlls failed: %s", error)
    return [CUDA, CPU]


class OnnxRuntime(Runtime):
    """Runs ``predict.onnx`` and ``recommend.onnx`` with ONNX Runtime.

    The CUDA provider is requested when ``device`` allows and a GPU is usable; which providers
    really loaded is read back from the session, because ONNX Runtime silently falls back to the
    CPU when the CUDA libraries are missing. That fallback is logged as a WARNING (device ``auto``)
    or refused (device ``cuda``).

    Args:
        files: Signature name -> its ``.onnx`` file.
        signatures: Input and output names of each signature.
        device: ``auto``, ``cpu`` or ``cuda``.
        intra_op_threads: Threads per call; 0 lets ONNX Runtime decide.

    Raises:
        ModelLoadError: a file is not a valid ONNX model, lacks the expected inputs, or CUDA was
            required and did not load.
    """

    backend = "onnx"

    def __init__(
        self, files: dict[str, Path], signatures: list[SignatureSpec], *, device: str, intra_op_threads: int
    ) -> None:
        requested = _requested_providers(device)
        options = _session_options(intra_op_threads)
        self._sessions: dict[str, tuple[ort.InferenceSession, tuple[str, ...], list[str]]] = {}
        for spec in signatures:
            path = files[spec.name]
            try:
                session = ort.InferenceSession(str(path), sess_options=options, providers=requested)
            except Exception as error:  # onnxruntime raises several unrelated types
                raise ModelLoadError(f"{path.name}: onnxruntime cannot load it: {error}") from error
            graph_inputs = {i.name for i in session.get_inputs()}
            missing = [name for name in spec.inputs if name not in graph_inputs]
            if missing:
                raise ModelLoadError(f"{path.name}: graph has no inputs {missing} (it has {sorted(graph_inputs)})")
            self._sessions[spec.name] = (session, spec.inputs, [spec.output])
        self._providers = next(iter(self._sessions.values()))[0].get_providers() if self._sessions else [CPU]
        if CUDA in requested and CUDA not in self._providers:
            reason = (
                f"onnxruntime could not load {CUDA} (usually missing CUDA 13 / cuDNN 9 libraries: "
                "pip install 'recsys-serve[gpu]'; onnxruntime's own error is printed above)"
            )
            if device == "cuda":
                raise ModelLoadError(f"device 'cuda' requested but {reason}")
            _LOGGER.warning("a GPU is usable but %s; serving on the CPU", reason)

    @property
    def providers(self) -> list[str]:
        """Execution providers the sessions really use, best first."""
        return list(self._providers)

    def run(self, signature: str, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """Runs one signature (see :meth:`Runtime.run`)."""
        session, names, outputs = self._sessions[signature]
        return session.run(outputs, dict(zip(names, inputs, strict=True)))[0]
