"""TorchScript backend: ``model.pt`` with ``forward`` (predict) and ``recommend`` methods."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from server.errors import ModelLoadError
from server.runtime.base import Runtime, SignatureSpec

_LOGGER = logging.getLogger(__name__)
_METHODS = {"predict": "forward", "recommend": "recommend"}


def _device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if device == "cuda":
        raise ModelLoadError("device 'cuda' requested but torch.cuda.is_available() is False; install a CUDA torch")
    return torch.device("cpu")


class TorchScriptRuntime(Runtime):
    """Runs the exported TorchScript module under ``torch.inference_mode``.

    Args:
        files: Every signature -> the one ``model.pt`` file.
        signatures: Input and output names of each signature.
        device: ``auto`` (CUDA when ``torch.cuda.is_available()``), ``cpu`` or ``cuda``.
        intra_op_threads: torch's intra-op threads for the whole process; 0 leaves torch's default.

    Raises:
        ModelLoadError: the file is not a TorchScript module or lacks a signature's method.
    """

    backend = "torchscript"

    def __init__(
        self, files: dict[str, Path], signatures: list[SignatureSpec], *, device: str, intra_op_threads: int
    ) -> None:
        self._device = _device(device)
        if intra_op_threads:
            torch.set_num_threads(intra_op_threads)
        paths = {files[spec.name] for spec in signatures}
        if len(paths) != 1:
            raise ModelLoadError(f"expected one TorchScript file for every signature, got {sorted(map(str, paths))}")
        path = paths.pop()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                module = torch.jit.load(str(path), map_location=self._device)
        except Exception as error:  # torch raises RuntimeError and friends for bad files
            raise ModelLoadError(f"{path.name}: torch.jit.load cannot load it: {error}") from error
        module.eval()
        self._methods = {}
        for spec in signatures:
            method = _METHODS.get(spec.name, spec.name)
            if not hasattr(module, method):
                raise ModelLoadError(f"{path.name}: the TorchScript module has no method {method!r} for {spec.name!r}")
            self._methods[spec.name] = getattr(module, method)
        self._module = module
        self._on_gpu = self._device.type == "cuda"

    @property
    def providers(self) -> list[str]:
        """The torch device in use, e.g. ``["cpu"]`` or ``["cuda:0"]``."""
        return [str(self._device)]

    def run(self, signature: str, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """Runs one signature (see :meth:`Runtime.run`)."""
        method = self._methods[signature]
        with torch.inference_mode():
            tensors = [torch.from_numpy(array) for array in inputs]
            if self._on_gpu:
                tensors = [tensor.to(self._device, non_blocking=True) for tensor in tensors]
            return method(*tensors).cpu().numpy()
