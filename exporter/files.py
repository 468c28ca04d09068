"""Small file helpers shared by the writers: content hashes and flushing a folder to disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Lower-case hex SHA-256 of a file, read in 1 MiB chunks so large models need no extra memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` (not recursive) and the folder entry itself to disk.

    Done before the staging folder is renamed into place: the rename is atomic in the namespace, but
    without the flush a power cut right after it could leave a version folder of empty files.
    """
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
