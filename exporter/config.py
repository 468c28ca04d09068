"""The ``recsys.v1.ModelConfig`` of a version: built from the checkpoint and the export, stored as JSON.

Stored with protobuf's JSON mapping (``google.protobuf.json_format``) so the server reads it with the
generated code alone; field names are kept as in the .proto (``num_items``, not ``numItems``), which
``json_format.Parse`` accepts like the camelCase form, and fields at their default are written too,
so a reader sees e.g. ``"max_history_length": "0"`` rather than guessing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

from google.protobuf import json_format

from exporter.errors import ExportError
from exporter.signatures import build_signatures
from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import Architecture

CONFIG_NAME = "config.json"


def exporter_version() -> str:
    """The installed recsys-serve version, or ``0+unknown`` when running from an uninstalled tree."""
    from importlib import metadata

    try:
        return metadata.version("recsys-serve")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_config(
    *,
    name: str,
    architecture: Architecture,
    num_users: int,
    num_items: int,
    rating_scale: Sequence[float],
    max_history_length: int,
    artifacts: Sequence[mc.Artifact],
    side_files: Sequence[mc.SideFile],
    training_metrics: Mapping[str, float],
    hyperparameters: Mapping[str, object],
    source_checkpoint_sha256: str,
    parity: mc.Parity,
    retrieval_index: mc.RetrievalIndex | None = None,
) -> mc.ModelConfig:
    """Assemble a version's config; the version number and creation time are set at publish time.

    Args:
        name: model name (the folder name).
        architecture: the architecture's declaration.
        num_users: number of user indices.
        num_items: number of item indices.
        rating_scale: ``[min, max]`` in stars.
        max_history_length: longest history a history signature reads; 0 when none does.
        artifacts: the runnable files written, with their hashes and opsets.
        side_files: the .npy files written, with their hashes.
        training_metrics: test-split metrics from training.
        hyperparameters: the model's constructor arguments (stored as strings).
        source_checkpoint_sha256: hash of the checkpoint exported.
        parity: the parity figures of the artifacts.
        retrieval_index: the version's ANN index, when one was built (``exporter.retrieval``).

    Returns:
        The config with ``version`` 0 and no ``created_at`` yet (see :func:`stamp`).
    """
    return mc.ModelConfig(
        name=name,
        architecture=architecture.contract_enum,
        architecture_name=architecture.name,
        signatures=build_signatures(architecture, num_items),
        rating_scale=mc.RatingScale(min=float(rating_scale[0]), max=float(rating_scale[1])),
        num_users=num_users,
        num_items=num_items,
        max_history_length=max_history_length,
        artifacts=artifacts,
        side_files=side_files,
        training_metrics={key: float(value) for key, value in training_metrics.items()},
        source_checkpoint_sha256=source_checkpoint_sha256,
        parity=parity,
        hyperparameters={key: str(value) for key, value in hyperparameters.items()},
        exporter_version=exporter_version(),
        retrieval_index=retrieval_index,
    )


def stamp(config: mc.ModelConfig, version: int) -> mc.ModelConfig:
    """A copy of ``config`` with its version number and the current UTC time (RFC 3339)."""
    stamped = mc.ModelConfig()
    stamped.CopyFrom(config)
    stamped.version = version
    stamped.created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return stamped


def config_to_json(config: mc.ModelConfig) -> str:
    """Protobuf JSON of a config, proto field names, defaults included, keys in field order."""
    return json_format.MessageToJson(
        config, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def write_config(config: mc.ModelConfig, folder: Path) -> Path:
    """Write ``folder/config.json`` and return its path."""
    path = folder / CONFIG_NAME
    path.write_text(config_to_json(config) + "\n", encoding="utf-8")
    return path


def read_config(folder: Path) -> mc.ModelConfig:
    """Read a version folder's ``config.json`` with the generated code alone, as the server does.

    Raises:
        ExportError: the file is missing or not a valid ModelConfig.
    """
    path = folder / CONFIG_NAME
    try:
        return json_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())
    except (OSError, json_format.ParseError) as error:
        raise ExportError(f"cannot read {path}: {error}") from error
