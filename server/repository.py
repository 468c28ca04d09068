"""Reading the model repository: which version folders exist and what their files hold.

Layout (see ``protos/recsys/v1/model_config.proto``): ``REPOSITORY/<model>/<version>/config.json``
beside the artifacts and side files. Names come from the file system here and nowhere else:
model names and versions sent by callers are only ever looked up among the folders found by
:func:`scan`, never joined into paths.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from protos.recsys.v1 import model_config_pb2 as mc
from protos.rules import file_sha256
from server.errors import ModelLoadError

_LOGGER = logging.getLogger(__name__)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CONFIG_FILE = "config.json"
_FORMATS = {"onnx": mc.ARTIFACT_FORMAT_ONNX, "torchscript": mc.ARTIFACT_FORMAT_TORCHSCRIPT}
_SIGNATURES = ("predict", "recommend")


@dataclass(frozen=True)
class VersionFolder:
    """One ``<model>/<version>`` folder holding a ``config.json``.

    Attributes:
        name: Model name (the parent folder's name).
        version: Version number (the folder's name).
        path: The folder.
        fingerprint: Modification time and size of ``config.json``; a change means "look again".
    """

    name: str
    version: int
    path: Path
    fingerprint: tuple[int, int]


def scan(repository: Path) -> dict[tuple[str, int], VersionFolder]:
    """Finds every version folder of the repository.

    Folders whose name starts with ``.`` (temporary folders of an export in progress), model
    names that are not valid, versions that are not positive integers and folders without a
    ``config.json`` are skipped: an export appears by an atomic rename, complete or not at all.

    Args:
        repository: The repository root.

    Returns:
        ``(name, version) -> VersionFolder``.

    Raises:
        FileNotFoundError: the repository folder does not exist.
    """
    if not repository.is_dir():
        raise FileNotFoundError(f"model repository {repository} is not a folder; pass --repository")
    found: dict[tuple[str, int], VersionFolder] = {}
    for model_dir in repository.iterdir():
        if model_dir.name.startswith(".") or not MODEL_NAME.fullmatch(model_dir.name) or not model_dir.is_dir():
            continue
        for version_dir in model_dir.iterdir():
            name = version_dir.name
            if not name.isdigit() or name.startswith("0") or not version_dir.is_dir():
                continue
            try:
                stat = (version_dir / CONFIG_FILE).stat()
            except OSError:
                continue
            key = (model_dir.name, int(name))
            found[key] = VersionFolder(model_dir.name, int(name), version_dir, (stat.st_mtime_ns, stat.st_size))
    return found


def read_config(folder: VersionFolder) -> mc.ModelConfig:
    """Parses and checks a version's ``config.json``.

    Raises:
        ModelLoadError: the file is not a ModelConfig, or its name or version disagree with the folder.
    """
    path = folder.path / CONFIG_FILE
    try:
        config = json_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig(), ignore_unknown_fields=True)
    except (OSError, UnicodeDecodeError, json_format.ParseError) as error:
        raise ModelLoadError(f"{CONFIG_FILE}: not a readable ModelConfig: {error}") from error
    if config.name != folder.name or config.version != folder.version:
        raise ModelLoadError(
            f"{CONFIG_FILE}: says model {config.name!r} v{config.version} but lies in {folder.name}/{folder.version}"
        )
    if config.num_users < 1 or config.num_items < 1:
        raise ModelLoadError(
            f"{CONFIG_FILE}: num_users={config.num_users} and num_items={config.num_items} must be > 0"
        )
    names = {signature.name for signature in config.signatures}
    if not set(_SIGNATURES) <= names:
        raise ModelLoadError(f"{CONFIG_FILE}: signatures {sorted(names)} lack one of {list(_SIGNATURES)}")
    return config


def checked_file(folder: Path, relative: str, sha256: str) -> Path:
    """The file ``relative`` inside ``folder`` after checking its name and its SHA-256.

    Raises:
        ModelLoadError: the name leaves the folder, the file is missing, or its hash differs.
    """
    if not relative or Path(relative).name != relative or relative in (".", ".."):
        raise ModelLoadError(f"{relative!r}: artifact paths must be plain file names inside the version folder")
    path = folder / relative
    if not path.is_file():
        raise ModelLoadError(f"{relative}: missing from {folder}")
    if not sha256:
        raise ModelLoadError(f"{relative}: config.json gives no sha256 to check it against")
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise ModelLoadError(f"{relative}: sha256 mismatch (config {sha256[:12]}…, file {actual[:12]}…); re-export it")
    return path


def artifact_files(config: mc.ModelConfig, folder: Path, backend: str) -> dict[str, Path]:
    """The checked file serving each signature for ``backend``.

    Every signature the config declares must be served by an artifact of that format.

    Raises:
        ModelLoadError: no artifact of that format serves a signature, or a file fails its check.
    """
    wanted = _FORMATS[backend]
    files: dict[str, Path] = {}
    for artifact in config.artifacts:
        if artifact.format != wanted:
            continue
        path = checked_file(folder, artifact.path, artifact.sha256)
        for signature in artifact.signatures:
            files[signature] = path
    missing = [signature.name for signature in config.signatures if signature.name not in files]
    if missing:
        other = next(b for b in _FORMATS if b != backend)
        raise ModelLoadError(
            f"no {backend} artifact serves {missing}; export with that format or serve with --backend {other}"
        )
    return files


def load_side_files(
    config: mc.ModelConfig, folder: Path, *, mmap: bool = False, skip: frozenset[int] = frozenset()
) -> dict[int, np.ndarray]:
    """Loads every side file (``SideFileKind`` -> array) after checking its hash.

    Args:
        config: The version's config.
        folder: Its folder.
        mmap: Memory-map the arrays read-only instead of reading them (large versions: processes serving
            the same version then share one copy of the pages).
        skip: Kinds not to load (nor check), e.g. the ranking tables of a version scored exactly.

    Raises:
        ModelLoadError: a side file is missing, fails its check or is not a plain ``.npy`` array.
    """
    arrays: dict[int, np.ndarray] = {}
    for side in config.side_files:
        if side.kind in skip:
            continue
        path = checked_file(folder, side.path, side.sha256)
        try:
            arrays[side.kind] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{side.path}: not a NumPy array loadable without pickle: {error}") from error
    return arrays
