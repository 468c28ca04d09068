"""Rules of the contract that more than one stage applies, stated once.

The exporter writes what the server checks, and the server and the load tester must agree on which
ids may travel as integers. Each such rule lives here so that the stages cannot drift apart: the
``sha256`` a ``config.json`` gives for a file (``ArtifactFile.sha256``, ``SideFile.sha256`` in
``model_config.proto``), and when a raw id has an integer form (``PredictRequest.user_int_ids`` and
``GetModelMetadataResponse.integer_ids`` in ``service.proto``).

Like the rest of ``protos``, this module imports nothing of ours; it needs only the standard
library, so every stage (trainer, exporter, server, client, load tester) may import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

INT64_MIN = -(2**63)
"""Smallest value of a protobuf ``int64``."""
INT64_MAX = 2**63 - 1
"""Largest value of a protobuf ``int64``."""

_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """The digest ``config.json`` records for a file: lower-case hex SHA-256 of its bytes.

    Read in 1 MiB chunks, so that hashing a large model needs no more memory than a small one.

    Args:
        path: The file.

    Returns:
        64 lower-case hex characters.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def integer_id(raw_id: str) -> int | None:
    """The integer a raw id stands for, or None when it has no integer form.

    An id has one when it is written exactly as ``str(int)`` writes an int64: ``"196"`` and ``"-3"``
    do; ``"0196"``, ``"+196"``, ``" 196"``, ``"-0"``, ``"1_000"`` and ``"٧"`` do not, because once sent
    as a number they could no longer be told apart from the id written the usual way.

    Args:
        raw_id: One raw id as the catalogue holds it.

    Returns:
        The value, within ``INT64_MIN..INT64_MAX``, or None.
    """
    try:
        value = int(raw_id)
    except ValueError:  # not a number at all, or more digits than int() accepts
        return None
    if str(value) != raw_id or not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


def integer_ids(raw_ids: Iterable[str]) -> list[int] | None:
    """The integer form of every id, or None when any one lacks it (see :func:`integer_id`).

    A version offers integer ids only when all of its user and item ids have this form.

    Args:
        raw_ids: Raw ids, in catalogue order.

    Returns:
        One value per id, in the same order, or None.
    """
    values = []
    for raw_id in raw_ids:
        value = integer_id(raw_id) if isinstance(raw_id, str) else None
        if value is None:
            return None
        values.append(value)
    return values
