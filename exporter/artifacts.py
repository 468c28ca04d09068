"""Writes a model's runnable files (ONNX per signature, one TorchScript module) and loads them back for parity."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from exporter.files import sha256_file
from exporter.inputs import ModelShape, random_inputs
from exporter.onnx_export import export_onnx
from exporter.parity import Runner, onnx_runner, torchscript_runner
from exporter.signatures import build_signatures
from exporter.torchscript_export import export_torchscript, load_torchscript
from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import Architecture

TORCHSCRIPT_NAME = "model.pt"

_EXAMPLE_BATCH = 3
_EXAMPLE_HISTORY = 4


@dataclasses.dataclass
class WrittenArtifacts:
    """What :func:`write_artifacts` produced.

    Attributes:
        artifacts: one ``Artifact`` per file, with its hash and opset, for the config.
        runners: ``(ArtifactFormat, signature) -> runner`` over the saved files, for parity.
    """

    artifacts: list[mc.Artifact] = dataclasses.field(default_factory=list)
    runners: dict[tuple[int, str], Runner] = dataclasses.field(default_factory=dict)


def write_artifacts(
    serving: nn.Module, architecture: Architecture, shape: ModelShape, formats: Sequence[str], folder: Path
) -> WrittenArtifacts:
    """Export ``serving`` in each format into ``folder``.

    ONNX gets one self-contained file per signature (``predict.onnx``, ``recommend.onnx``, and for history
    models ``predict_user.onnx``, ``recommend_user.onnx``) so the server can run each without the other's
    weights in memory twice; TorchScript gets one ``model.pt`` holding all of them as methods.

    Args:
        serving: the model's serving module, in eval mode, built with the stored histories.
        architecture: the declaration (its signatures).
        shape: the model's sizes (for example inputs).
        formats: names from :data:`exporter.formats.FORMATS`.
        folder: the staging folder.

    Returns:
        The artifacts and runners over the saved files.

    Raises:
        ExportError: an exporter failed or a saved file breaks its signature.
    """
    written = WrittenArtifacts()
    signatures = build_signatures(architecture, shape.num_items)
    generator = torch.Generator().manual_seed(0)
    history_length = min(_EXAMPLE_HISTORY, max(shape.max_history_length, 1))
    if "onnx" in formats:
        for signature in signatures:
            path = folder / f"{signature.name}.onnx"
            declaration = architecture.signature(signature.name)
            example = random_inputs(shape, declaration, _EXAMPLE_BATCH, history_length, generator)
            opset = export_onnx(serving, signature, example, path)
            written.artifacts.append(
                mc.Artifact(
                    format=mc.ARTIFACT_FORMAT_ONNX,
                    path=path.name,
                    signatures=[signature.name],
                    sha256=sha256_file(path),
                    onnx_opset=opset,
                )
            )
            written.runners[(mc.ARTIFACT_FORMAT_ONNX, signature.name)] = onnx_runner(path)
    if "torchscript" in formats:
        path = folder / TORCHSCRIPT_NAME
        export_torchscript(serving, path, [signature.name for signature in signatures])
        written.artifacts.append(
            mc.Artifact(
                format=mc.ARTIFACT_FORMAT_TORCHSCRIPT,
                path=path.name,
                signatures=[signature.name for signature in signatures],
                sha256=sha256_file(path),
            )
        )
        scripted = load_torchscript(path)
        for signature in signatures:
            written.runners[(mc.ARTIFACT_FORMAT_TORCHSCRIPT, signature.name)] = torchscript_runner(
                scripted, signature.name
            )
    return written
