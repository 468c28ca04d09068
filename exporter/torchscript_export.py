"""TorchScript export: one ``model.pt`` whose ``forward`` is predict, with one method per other signature."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from exporter.errors import ExportError
from exporter.signatures import torchscript_method

_LOGGER = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch 2.13's deprecation warnings for ``torch.jit``, which stays a supported backend here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*(torch\\.jit|TorchScript).*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*(torch\\.jit|TorchScript).*")
        yield


def export_torchscript(serving: nn.Module, path: Path, signatures: Sequence[str] = ("predict", "recommend")) -> None:
    """Script a serving module and save it.

    Scripting (not tracing) keeps the module free of example-input shapes, so the batch and the
    history length stay dynamic; ``recommend`` (and the LSTM's ``predict_user``/``recommend_user``)
    are kept because the serving modules mark them ``@torch.jit.export``.

    Args:
        serving: the model's serving module in eval mode.
        path: the ``.pt`` file to write.
        signatures: the signatures it must serve (see :func:`exporter.signatures.torchscript_method`).

    Raises:
        ExportError: the module is not scriptable or lacks a signature's method.
    """
    with quiet_jit():
        try:
            scripted = torch.jit.script(serving)
        except Exception as error:  # torch.jit raises frontend errors of many types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"TorchScript export failed: {first_line}") from error
        missing = [torchscript_method(name) for name in signatures if not hasattr(scripted, torchscript_method(name))]
        if missing:
            raise ExportError(
                f"TorchScript export failed: {type(serving).__name__} has no @torch.jit.export methods {missing}"
            )
        scripted.save(str(path))
    _LOGGER.debug("wrote %s", path)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Load a saved TorchScript model on CPU, as the server would, without the warnings."""
    with quiet_jit():
        return torch.jit.load(str(path), map_location="cpu")
