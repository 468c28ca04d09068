"""The model repository on disk: names, version numbers and the atomic rename that publishes a version.

Layout (see ``protos/recsys/v1/model_config.proto``)::

    REPOSITORY/<name>/<version>/config.json, predict.onnx, recommend.onnx, model.pt, *.npy

A version is built in a hidden staging folder ``REPOSITORY/.tmp-<name>-<random>`` on the same file
system, then renamed to ``REPOSITORY/<name>/<version>`` in one ``os.rename``: a server polling the
repository sees either no folder or a complete one. The next version number is chosen under an
exclusive ``flock`` on ``REPOSITORY/<name>/.lock``, so two exporters never take the same number.
Hidden names (a leading dot) are never valid model names or versions, so readers skip them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from exporter.errors import ExportError, ExportInputError
from exporter.files import fsync_dir, fsync_tree

_LOGGER = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Model names: also folder names, so no separators, no leading dot, at most 64 characters."""

_VERSION_PATTERN = re.compile(r"[1-9][0-9]*")
STAGING_PREFIX = ".tmp-"
LOCK_NAME = ".lock"


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise.

    Args:
        name: candidate model name.

    Returns:
        The same name.

    Raises:
        ExportInputError: the name could escape the repository or is not a plain folder name.
    """
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ExportInputError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit, with no '/' and no '..'"
        )
    return name


def prepare_repository(repository: Path) -> Path:
    """Create the repository folder if needed and return it as an absolute path.

    Raises:
        ExportInputError: the path exists and is not a folder.
    """
    repository = Path(repository).absolute()
    if repository.exists() and not repository.is_dir():
        raise ExportInputError(f"repository path {repository} is a file, not a folder: pass a folder path")
    try:
        repository.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportInputError(f"cannot create repository folder {repository}: {error.strerror}") from error
    return repository


def list_versions(model_dir: Path) -> list[int]:
    """Published versions of a model, ascending; staging folders, lock files and stray names are ignored."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(entry.name) for entry in model_dir.iterdir() if entry.is_dir() and _VERSION_PATTERN.fullmatch(entry.name)
    )


@contextlib.contextmanager
def staging_folder(repository: Path, name: str) -> Iterator[Path]:
    """A fresh hidden folder inside the repository to build a version in; removed on exit if still there.

    It lives in the repository so that publishing it is a same-file-system rename. On any exception
    (or after a successful :func:`publish`, which moves it away) nothing of it remains.

    Args:
        repository: the repository root (it must exist).
        name: model name, used in the folder name to tell concurrent exports apart.

    Yields:
        The staging folder.
    """
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=repository))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; the published version must be readable by a server user
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
            _LOGGER.debug("removed staging folder %s", staging)


@contextlib.contextmanager
def _model_lock(model_dir: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on the model folder (blocks until other exporters release it)."""
    with (model_dir / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def publish(staging: Path, repository: Path, name: str, finalize: Callable[[int, Path], None]) -> tuple[int, Path]:
    """Give a complete staging folder the next version number and rename it into place.

    Under the model's lock: pick ``max(existing) + 1``, let ``finalize`` write what depends on the
    number (``config.json``) into the staging folder, flush everything to disk, then rename.

    Args:
        staging: a folder from :func:`staging_folder` holding every other file of the version.
        repository: the repository root.
        name: a validated model name.
        finalize: called as ``finalize(version, staging)`` before the rename.

    Returns:
        ``(version, version_folder)``.

    Raises:
        ExportError: the rename failed (e.g. the target appeared despite the lock, from a writer that
            ignores it); the staging folder is left for the caller to remove.
    """
    model_dir = repository / name
    model_dir.mkdir(exist_ok=True)
    with _model_lock(model_dir):
        # Any entry with a version-like name blocks its number, a stray file included: never overwrite.
        taken = [int(entry.name) for entry in model_dir.iterdir() if _VERSION_PATTERN.fullmatch(entry.name)]
        version = max(taken, default=0) + 1
        target = model_dir / str(version)
        finalize(version, staging)
        fsync_tree(staging)
        try:
            # os.rename replaces an *empty* target folder silently: refuse any existing one instead.
            if target.exists():
                raise FileExistsError(f"{target} already exists")
            os.rename(staging, target)
        except OSError as error:
            raise ExportError(
                f"cannot publish {name} version {version}: {error}; is another tool writing to {model_dir}?"
            ) from error
        fsync_dir(model_dir)
    _LOGGER.info("published %s version %d at %s", name, version, target)
    return version, target
