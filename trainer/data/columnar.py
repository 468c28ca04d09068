"""A columnar fast path for large delimited rating files (MovieLens 25M's ``ratings.csv``), with pyarrow.

Measured on a 5M-row ``userId,movieId,rating,timestamp`` CSV (``bench/scale_data.py``, 2 cores): the
line parser of :mod:`trainer.data.readers` takes 34 s and 1.35 GB; ``np.genfromtxt`` 44 s and 2.6 GB;
``np.loadtxt`` 7.4 s but only numeric ids; polars 7.0 s; ``pyarrow.csv`` 3.6 s and ~370 MB with the
string ids already mapped to indices in order of first appearance (``dictionary_encode``), the same
order the line parser gives. pyarrow is optional (``pip install -e .[scale]``): without it, or for any
file this path cannot read exactly as the line parser would (quotes aside, a malformed row, a NaN
rating, an empty id, a leading blank line), :func:`read_columnar` returns None and the caller uses the
line parser, which reads the file the old way and names the bad line.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from trainer.data.interactions import Interactions, default_rating_scale

_LOGGER = logging.getLogger(__name__)

COLUMNAR_MIN_BYTES = 1 << 20
"""Files from this size up take the columnar path when ``engine="auto"``; smaller ones are not worth it."""

_NAMES = ("user", "item", "rating", "timestamp")


def _pyarrow() -> tuple[ModuleType, ModuleType, ModuleType] | None:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    return pa, pc, pacsv


def available() -> bool:
    """Whether pyarrow is importable, so the columnar path can run."""
    return _pyarrow() is not None


def _first_line(path: Path) -> str:
    with path.open("rb") as stream:
        return stream.readline(1 << 16).decode("utf-8", errors="replace").rstrip("\r\n")


def _layout(path: Path, delimiter: str, header: bool | None) -> tuple[int, bool, str, int] | None:
    """(fields, has header, single-char delimiter, stride) from the first line, or None to fall back."""
    line = _first_line(path)
    if not line.strip():
        return None  # blank first line(s): the line parser counts and logs them
    fields = [f.strip() for f in line.split(delimiter)]
    if len(fields) not in (3, 4):
        return None
    if header is None:
        try:
            float(fields[2])
            header = False
        except ValueError:
            header = True
    if len(delimiter) == 1:
        return len(fields), header, delimiter, 1
    if set(delimiter) == {delimiter[0]}:  # "::": split on ':' and expect empty fields in between
        return len(fields), header, delimiter[0], len(delimiter)
    return None


def _blank_lines(path: Path, rows: int, header: bool) -> int:
    """Lines that are neither the header nor a row (pyarrow skips empty lines without saying)."""
    lines, last = 0, b"\n"
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return lines - rows - int(header)


def read_columnar(path: Path, delimiter: str = ",", header: bool | None = None) -> Interactions | None:
    """Read ``user<d>item<d>rating[<d>timestamp]`` rows with pyarrow, or None where the line parser must.

    Args:
        path: the file.
        delimiter: one character, or one character repeated (MovieLens' ``::``).
        header: whether the first line is a header; None detects it as the line parser does.

    Returns:
        The same Interactions as ``read_delimited``'s line parser would give (ids in order of first
        appearance, float32 ratings, int64 timestamps or file order), or None.
    """
    modules = _pyarrow()
    layout = _layout(path, delimiter, header)
    if modules is None or layout is None:
        return None
    pa, pc, pacsv = modules
    width, has_header, separator, stride = layout
    start = time.perf_counter()
    columns = []
    for k in range(width):
        columns.append(_NAMES[k])
        columns.extend(f"gap{k}_{g}" for g in range(stride - 1) if k < width - 1)
    types = {"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()}
    types.update({name: pa.string() for name in columns if name.startswith("gap")})
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=int(has_header), block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=separator, quote_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        _LOGGER.info("%s: columnar read refused (%s); using the line parser", path, str(error)[:120])
        return None
    if not table.num_rows:
        return None
    if any(pc.max(pc.utf8_length(table[name])).as_py() for name in columns if name.startswith("gap")):
        return None  # a ':' inside a '::' field
    ids = [pc.utf8_trim_whitespace(table[name]) for name in ("user", "item")]
    if any(pc.min(pc.utf8_length(column)).as_py() == 0 for column in ids):
        return None  # an empty id: the line parser names its line
    ratings64 = table["rating"].to_numpy()
    if not np.isfinite(ratings64).all():
        return None
    users, user_ids = _encode(pc, ids[0])
    items, item_ids = _encode(pc, ids[1])
    del ids
    ratings = ratings64.astype(np.float32)
    del ratings64
    stamps = table["timestamp"].to_numpy() if width == 4 else np.arange(len(ratings), dtype=np.int64)
    del table
    blank = _blank_lines(path, len(ratings), has_header)
    if blank:
        _LOGGER.info("%s: skipped %d blank lines", path, blank)
    data = Interactions(
        users, items, ratings, stamps.astype(np.int64, copy=False), user_ids, item_ids, default_rating_scale(ratings)
    )
    _LOGGER.info(
        "%s: read %d ratings with pyarrow in %.1f s (peak RSS %.0f MiB)",
        path,
        len(data),
        time.perf_counter() - start,
        peak_rss_mib(),
    )
    return data


def _encode(pc: ModuleType, column: object) -> tuple[np.ndarray, tuple[str, ...]]:
    """int64 indices and raw ids of one id column, numbered in order of first appearance.

    The chunks are joined first, so one dictionary numbers the whole column.
    """
    encoded = pc.dictionary_encode(column.combine_chunks())
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, tuple(encoded.dictionary.to_pylist())


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB so far (0 where the platform cannot say)."""
    try:
        import resource
    except ImportError:
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
