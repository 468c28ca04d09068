"""TorchScript export: one ``model.pt`` whose ``forward`` is predict and whose ``recommend`` method is recommend."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from exporter.errors import ExportError

_LOGGER = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch 2.13's deprecation warnings for ``torch.jit``, which stays a supported backend here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*(torch\\.jit|TorchScript).*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*(torch\\.jit|TorchScript).*")
        yield


def export_torchscript(serving: nn.Module, path: Path) -> None:
    """Script a serving module and save it.

    Scripting (not tracing) keeps the module free of example-input shapes, so the batch and the
    history length stay dynamic; ``recommend`` is kept because the serving modules mark it
    ``@torch.jit.export``.

    Args:
        serving: the model's ``serving_module()`` in eval mode.
        path: the ``.pt`` file to write.

    Raises:
        ExportError: the module is not scriptable or lacks ``recommend``.
    """
    with quiet_jit():
        try:
            scripted = torch.jit.script(serving)
        except Exception as error:  # torch.jit raises frontend errors of many types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"TorchScript export failed: {first_line}") from error
        if not hasattr(scripted, "recommend"):
            raise ExportError(
                f"TorchScript export failed: {type(serving).__name__} has no @torch.jit.export recommend method"
            )
        scripted.save(str(path))
    _LOGGER.debug("wrote %s", path)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Load a saved TorchScript model on CPU, as the server would, without the warnings."""
    with quiet_jit():
        return torch.jit.load(str(path), map_location="cpu")
