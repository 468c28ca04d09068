"""Runtimes: run an exported signature on arrays. They never see requests or ids.

:func:`load_runtime` imports only the backend asked for, so an ONNX-only server never
imports torch.
"""

from __future__ import annotations

from pathlib import Path

from server.runtime.base import Runtime, SignatureSpec

__all__ = ["Runtime", "SignatureSpec", "load_runtime"]


def load_runtime(
    backend: str, files: dict[str, Path], signatures: list[SignatureSpec], *, device: str, intra_op_threads: int
) -> Runtime:
    """Loads one model version's artifacts into the runtime named by ``backend``.

    Args:
        backend: ``onnx`` or ``torchscript``.
        files: For ONNX, signature name -> its ``.onnx`` file; for TorchScript, every signature
            -> the one ``.pt`` module.
        signatures: Input and output names of each signature, from the exported config.
        device: ``auto``, ``cpu`` or ``cuda`` (see ``ServerConfig.device``).
        intra_op_threads: Threads one call may use; 0 lets the runtime decide.

    Returns:
        A ready runtime.

    Raises:
        ModelLoadError: the files cannot be loaded on the requested device.
    """
    if backend == "onnx":
        from server.runtime.onnx import OnnxRuntime

        return OnnxRuntime(files, signatures, device=device, intra_op_threads=intra_op_threads)
    if backend == "torchscript":
        from server.runtime.torchscript import TorchScriptRuntime

        return TorchScriptRuntime(files, signatures, device=device, intra_op_threads=intra_op_threads)
    raise ValueError(f"unknown backend {backend!r}; use 'onnx' or 'torchscript'")
