"""Checkpoint -> published model version: the exporter's public entry points.

An export validates everything it can before writing, builds the version in a staging folder
(artifacts, side files, parity against the eager model), and publishes it with one rename. Any
failure removes the staging folder, so the repository never gains a partial version.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from exporter.artifacts import write_artifacts
from exporter.config import build_config, read_config, stamp, write_config
from exporter.errors import ExportInputError
from exporter.formats import FORMATS
from exporter.inputs import ModelShape
from exporter.parity import PARITY_TOLERANCE, check_parity
from exporter.ranking_tables import find_ranking_tables
from exporter.repository import prepare_repository, publish, staging_folder, validate_model_name
from exporter.retrieval import RetrievalOptions, build_retrieval_index, wants_index
from exporter.side_files import side_file_arrays, write_side_files
from protos.recsys.v1 import model_config_pb2 as mc
from trainer import architecture as architectures
from trainer.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from trainer.data.interactions import UserHistories

_LOGGER = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of a checkpoint inside ``RUN_DIR/<architecture>/``."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """One published model version.

    Attributes:
        name: model name (folder under the repository).
        version: the version number it was given.
        path: the version folder.
        config: its ``ModelConfig``, as read back from ``config.json``.
    """

    name: str
    version: int
    path: Path
    config: mc.ModelConfig

    @property
    def parity(self) -> mc.Parity:
        """The parity figures recorded in the config."""
        return self.config.parity


def validate_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """Deduplicated artifact formats, in the order given.

    Raises:
        ExportInputError: empty, or a name not in ``onnx``, ``torchscript``.
    """
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if not chosen or unknown:
        raise ExportInputError(
            f"unknown or missing formats {unknown or list(formats)}: choose from {', '.join(FORMATS)}"
        )
    return chosen


def load_for_export(checkpoint: Path) -> Checkpoint:
    """Load a training checkpoint, turning every way it can be unusable into one :class:`ExportInputError`.

    Args:
        checkpoint: a ``checkpoint.pt`` written by the trainer.

    Returns:
        The trainer's ``Checkpoint`` (model in eval mode, ids, histories, metrics, sha256).

    Raises:
        ExportInputError: missing, unreadable, corrupt, or of an architecture the exporter does not know.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ExportInputError(f"checkpoint {checkpoint} not found: train first (recsys-train) or fix the path")
    try:
        loaded = load_checkpoint(checkpoint)
    except CheckpointError as error:
        raise ExportInputError(_one_line(error)) from error
    except Exception as error:  # torch.load and model rebuilding raise many types for a damaged file
        raise ExportInputError(f"cannot load checkpoint {checkpoint}: {_one_line(error)}") from error
    if loaded.architecture not in architectures.names():
        raise ExportInputError(
            f"checkpoint {checkpoint} has architecture {loaded.architecture!r}, which the exporter does not know; "
            f"known: {', '.join(architectures.names())}"
        )
    loaded.model.eval()
    return loaded


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _model_shape(loaded: Checkpoint) -> ModelShape:
    hparams = dict(loaded.hparams)
    num_users, num_items = len(loaded.user_ids), len(loaded.item_ids)
    for key, expected in (("num_users", num_users), ("num_items", num_items)):
        if key in hparams and int(hparams[key]) != expected:
            raise ExportInputError(f"checkpoint model has {key}={hparams[key]} but {expected} raw ids: it is corrupt")
    return ModelShape(
        architecture=loaded.architecture,
        num_users=num_users,
        num_items=num_items,
        rating_min=float(loaded.rating_scale[0]),
        rating_max=float(loaded.rating_scale[1]),
        max_history_length=int(hparams.get("max_history_length", 0)),
    )


def export_checkpoint(
    checkpoint: Path,
    repository: Path,
    *,
    name: str | None = None,
    formats: Sequence[str] = ("onnx", "torchscript"),
    tolerance: float = PARITY_TOLERANCE,
    retrieval: RetrievalOptions | None = None,
) -> ExportResult:
    """Export one training checkpoint as the next version of a model in a repository.

    Args:
        checkpoint: ``RUN_DIR/<arch>/checkpoint.pt`` from the trainer.
        repository: the model repository root (created if missing).
        name: model name; defaults to the architecture (``mf``, ``dense``, ``lstm``, ``gcn``).
        formats: artifact formats to write, from ``onnx`` and ``torchscript``.
        tolerance: largest allowed difference from the eager model, in stars.
        retrieval: when to build a retrieval index and how; None for the defaults (from 100K items).

    Returns:
        The published version.

    Raises:
        ExportInputError: bad checkpoint, name, formats or repository path; nothing was written.
        ExportError: an exporter failed or parity exceeded the tolerance; nothing was published.
    """
    formats = validate_formats(formats)
    if name is not None:
        validate_model_name(name)
    loaded = load_for_export(checkpoint)
    repository = prepare_repository(repository)  # only now: a bad checkpoint must not leave an empty folder
    return _export_loaded(loaded, repository, name or loaded.architecture, formats, tolerance, retrieval)


def _export_loaded(
    loaded: Checkpoint,
    repository: Path,
    name: str,
    formats: Sequence[str],
    tolerance: float,
    retrieval: RetrievalOptions | None = None,
) -> ExportResult:
    retrieval = retrieval or RetrievalOptions()
    validate_model_name(name)
    shape = _model_shape(loaded)
    arrays = side_file_arrays(
        loaded.user_ids,
        loaded.item_ids,
        loaded.item_popularity,
        loaded.history_offsets,
        loaded.history_items,
        loaded.history_ratings,
    )
    # The arrays written as side files, so that the LSTM's states encoded at export are those of the
    # histories the server will read.
    histories = UserHistories(
        arrays[mc.SIDE_FILE_KIND_HISTORY_OFFSETS],
        arrays[mc.SIDE_FILE_KIND_HISTORY_ITEMS],
        arrays[mc.SIDE_FILE_KIND_HISTORY_RATINGS],
    )
    declaration = architectures.get(loaded.architecture)
    serving = loaded.model.serving_module(histories)
    tables = find_ranking_tables(serving, declaration, shape.num_users)
    if tables is not None:
        arrays = {**arrays, **tables.side_file_arrays()}
    indexed = wants_index(tables, shape.num_items, retrieval)
    with staging_folder(repository, name) as staging:
        written = write_artifacts(serving.eval(), declaration, shape, formats, staging)
        side_files = write_side_files(arrays, staging)
        parity = check_parity(
            loaded.model, declaration, shape, written.runners, histories=histories, tolerance=tolerance
        )
        retrieval_index = None
        if indexed:
            counts = np.diff(arrays[mc.SIDE_FILE_KIND_HISTORY_OFFSETS])
            retrieval_index = build_retrieval_index(tables, counts, staging, retrieval)
        config = build_config(
            name=name,
            architecture=declaration,
            num_users=shape.num_users,
            num_items=shape.num_items,
            rating_scale=(shape.rating_min, shape.rating_max),
            max_history_length=shape.max_history_length,
            artifacts=written.artifacts,
            side_files=side_files,
            training_metrics=loaded.metrics,
            hyperparameters=loaded.hparams,
            source_checkpoint_sha256=loaded.sha256,
            parity=parity,
            retrieval_index=retrieval_index,
        )
        version, path = publish(staging, repository, name, lambda v, folder: write_config(stamp(config, v), folder))
    return ExportResult(name=name, version=version, path=path, config=read_config(path))


def resolve_run_models(run_dir: Path, models: Sequence[str]) -> list[str]:
    """The architectures to export from a run folder.

    ``all`` means every architecture with a ``RUN_DIR/<arch>/checkpoint.pt``; named architectures
    must each be known (their checkpoint is checked when loaded).

    Raises:
        ExportInputError: the run folder is missing, a name is unknown, or ``all`` finds nothing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportInputError(f"run folder {run_dir} not found: pass the --out folder of recsys-train")
    requested = [m.strip().lower() for m in models if m.strip()]
    known = architectures.names()
    unknown = [m for m in requested if m != "all" and m not in known]
    if unknown or not requested:
        raise ExportInputError(f"unknown models {unknown or list(models)}: choose from {', '.join(known)} or all")
    if "all" in requested:
        found = [arch for arch in known if (run_dir / arch / CHECKPOINT_NAME).is_file()]
        if not found:
            raise ExportInputError(f"no checkpoints in {run_dir}/<{'|'.join(known)}>/{CHECKPOINT_NAME}: train first")
        return found
    return list(dict.fromkeys(requested))


def export_run(
    run_dir: Path,
    repository: Path,
    models: Sequence[str] = ("all",),
    *,
    name: str | None = None,
    formats: Sequence[str] = ("onnx", "torchscript"),
    tolerance: float = PARITY_TOLERANCE,
    retrieval: RetrievalOptions | None = None,
) -> list[ExportResult]:
    """Export the checkpoints of a training run, one model per architecture.

    Every checkpoint is loaded and checked before the first export starts, so a bad input anywhere
    leaves the repository untouched. Each model is then published on its own: if a later one fails
    (e.g. parity), the earlier ones stay published, each complete.

    Args:
        run_dir: the trainer's output folder holding ``<arch>/checkpoint.pt``.
        repository: the model repository root (created if missing).
        models: architectures to export, or ``all``.
        name: model name; only with a single model (default: its architecture).
        formats: artifact formats, from ``onnx`` and ``torchscript``.
        tolerance: largest allowed difference from the eager model, in stars.
        retrieval: when to build a retrieval index and how; None for the defaults (from 100K items).

    Returns:
        The published versions, in architecture order.

    Raises:
        ExportInputError: bad run folder, models, name, formats, repository path or checkpoint.
        ExportError: an export failed; earlier models of this call stay published.
    """
    formats = validate_formats(formats)
    architectures = resolve_run_models(run_dir, models)
    if name is not None:
        validate_model_name(name)
        if len(architectures) != 1:
            raise ExportInputError(f"a model name ({name!r}) needs exactly one model, got {', '.join(architectures)}")
    loaded = [load_for_export(Path(run_dir) / arch / CHECKPOINT_NAME) for arch in architectures]
    repository = prepare_repository(repository)
    results = []
    for checkpoint in tqdm(loaded, desc="export", unit="model", disable=None):
        results.append(
            _export_loaded(checkpoint, repository, name or checkpoint.architecture, formats, tolerance, retrieval)
        )
    return results
