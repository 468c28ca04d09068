"""Artifact format names used by the API and the CLI, and their ``recsys.v1.ArtifactFormat`` values."""

from __future__ import annotations

from protos.recsys.v1 import model_config_pb2 as mc

FORMATS: dict[str, int] = {"onnx": mc.ARTIFACT_FORMAT_ONNX, "torchscript": mc.ARTIFACT_FORMAT_TORCHSCRIPT}
"""Format names accepted by ``export_checkpoint`` and ``--formats``, mapped to the contract's enum."""


def format_label(artifact_format: int) -> str:
    """The short name of an ``ArtifactFormat`` value, e.g. ``onnx``, for messages and tables."""
    return mc.ArtifactFormat.Name(artifact_format).removeprefix("ARTIFACT_FORMAT_").lower()
