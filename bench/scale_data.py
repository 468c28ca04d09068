"""Data at scale: the synthetic generator's seconds and peak memory, and rating-file readers compared.

Every measurement runs in a fresh child process, so its peak resident memory (``ru_maxrss``) is its own:

1. ``generate``: ``trainer.data.synthetic_scale.generate_scale`` at each ``--sizes`` (MovieLens 25M's
   users/items ratio: 162K users and 59K items at 25M ratings, scaled down for smaller sizes);
2. ``readers``: one generated CSV in MovieLens 25M's layout (``userId,movieId,rating,timestamp``)
   read by the project's line parser, ``np.loadtxt``, ``np.genfromtxt``, ``pyarrow.csv`` and
   ``polars``, each to columns, and, for the project's readers, all the way to ``Interactions``.

    python -m bench.scale_data --sizes 1M,5M,25M --csv-rows 5M --out out/bench/scale

Readers that exceed ``--reader-timeout`` seconds are reported as such. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ML25M = (162_541, 59_047, 25_000_095)
READERS = ("python-lines", "numpy-loadtxt", "numpy-genfromtxt", "pyarrow", "polars", "read_delimited")


def _count(text: str) -> int:
    multiplier = {"k": 10**3, "M": 10**6}.get(text[-1:], 1)
    return int(float(text[:-1] if multiplier > 1 else text) * multiplier)


def shape_for(ratings: int) -> tuple[int, int]:
    """Users and items of a MovieLens-25M-like data set with ``ratings`` ratings (both scale with sqrt)."""
    factor = (ratings / ML25M[2]) ** 0.5
    return max(100, round(ML25M[0] * factor)), max(100, round(ML25M[1] * factor))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure_generate(ratings: int) -> dict:
    from trainer.data.synthetic_scale import ScaleConfig, generate_scale

    users, items = shape_for(ratings)
    baseline = _peak_mib()
    start = time.perf_counter()
    data = generate_scale(ScaleConfig(users, items, ratings), progress=False)
    seconds = time.perf_counter() - start
    result_mib = sum(a.nbytes for a in (data.users, data.items, data.ratings, data.timestamps)) / 2**20
    return {"users": users, "items": items, "seconds": seconds, "result_mib": result_mib, "baseline_mib": baseline}


def _write_csv(rows: int, path: Path) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from trainer.data.synthetic_scale import ScaleConfig, generate_scale

    users, items = shape_for(rows)
    data = generate_scale(ScaleConfig(users, items, rows, seed=1), progress=False)
    table = pa.table(
        {
            "userId": data.users + 1,
            "movieId": data.items + 1,
            "rating": data.ratings.astype(np.float64),
            "timestamp": data.timestamps,
        }
    )
    pacsv.write_csv(table, path)
    return {"rows": rows, "mib": path.stat().st_size / 2**20}


def _imports(reader: str) -> None:
    """Import what a reader needs before measuring, so the baseline RSS holds the libraries."""
    if reader in ("python-lines", "read_delimited"):
        import trainer.data.readers  # noqa: F401  (imports torch through the trainer package)
    if reader in ("pyarrow", "read_delimited"):
        import pyarrow.csv  # noqa: F401
    if reader == "polars":
        import polars  # noqa: F401


def _read(reader: str, path: Path) -> dict:
    """Read ``path`` with one reader; return rows and what it produced."""
    _imports(reader)
    baseline = _peak_mib()
    start = time.perf_counter()
    if reader == "python-lines":
        from trainer.data.readers import _parse

        rows = _parse(path, ",", None)
        n = len(rows.ratings)
    elif reader == "read_delimited":
        from trainer.data.readers import read_delimited

        n = len(read_delimited(path, delimiter=","))
    elif reader == "numpy-loadtxt":
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
        n = len(table)
    elif reader == "numpy-genfromtxt":
        table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64)
        n = len(table)
    elif reader == "pyarrow":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {"userId": pa.string(), "movieId": pa.string(), "rating": pa.float32(), "timestamp": pa.int64()}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
        users = table["userId"].combine_chunks().dictionary_encode()
        items = table["movieId"].combine_chunks().dictionary_encode()
        n = len(users.indices)
    elif reader == "polars":
        import polars as pl

        frame = pl.read_csv(path, schema_overrides={"userId": pl.String, "movieId": pl.String})
        users = frame["userId"].unique(maintain_order=True)
        items = frame["movieId"].unique(maintain_order=True)
        n = min(frame.height, len(users) * len(items))
    else:
        raise ValueError(f"unknown reader {reader!r}; choose from {', '.join(READERS)}")
    return {"reader": reader, "rows": int(n), "seconds": time.perf_counter() - start, "baseline_mib": baseline}


def _child(argv: list[str], timeout: float) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.scale_data", "--child", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_child(argv: list[str]) -> None:
    kind, value = argv[0], argv[1]
    if kind == "generate":
        result = _measure_generate(int(value))
    elif kind == "write":
        result = _write_csv(int(argv[2]), Path(value))
    else:
        result = _read(kind, Path(value))
    result["peak_rss_mib"] = _peak_mib()
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _run_child(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="1M,5M", help="generator sizes (ratings), e.g. 1M,5M,25M")
    parser.add_argument("--csv-rows", default="5M", help="rows of the CSV the readers read (0 skips the readers)")
    parser.add_argument("--readers", default=",".join(READERS), help="readers to compare")
    parser.add_argument("--reader-timeout", type=float, default=300.0, help="seconds before a reader is given up")
    parser.add_argument("--out", type=Path, default=Path("out/bench/scale"), help="folder for the CSV and JSON")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {"generate": [], "readers": []}

    print("| ratings | users | items | seconds | peak RSS MiB | RSS after imports MiB | result arrays MiB |")
    print("|---|---|---|---|---|---|---|")
    for size in filter(None, args.sizes.split(",")):
        row = _child(["generate", str(_count(size))], timeout=1800)
        results["generate"].append({"ratings": _count(size), **row})
        if "error" in row:
            print(f"| {_count(size):,} | - | - | {row['error']} | - | - | - |")
            continue
        print(
            f"| {_count(size):,} | {row['users']:,} | {row['items']:,} | {row['seconds']:.1f} | "
            f"{row['peak_rss_mib']:.0f} | {row['baseline_mib']:.0f} | {row['result_mib']:.0f} |",
            flush=True,
        )

    rows = _count(args.csv_rows)
    if rows:
        csv = args.out / f"ratings-{args.csv_rows}.csv"
        if not csv.is_file():
            written = _child(["write", str(csv), str(rows)], timeout=1800)
            if "error" in written:
                raise SystemExit(f"could not write {csv}: {written['error']}")
        print(f"\nreaders on {csv} ({csv.stat().st_size / 2**20:.0f} MiB, {rows:,} rows)\n")
        print("| reader | seconds | peak RSS MiB | RSS after imports MiB | output |")
        print("|---|---|---|---|---|")
        for reader in filter(None, args.readers.split(",")):
            row = _child([reader, str(csv)], timeout=args.reader_timeout)
            results["readers"].append({"reader": reader, **row})
            if "error" in row:
                print(f"| {reader} | {row['error']} | - | - | - |", flush=True)
                continue
            print(
                f"| {reader} | {row['seconds']:.1f} | {row['peak_rss_mib']:.0f} | {row['baseline_mib']:.0f} | "
                f"{_output(reader)} |",
                flush=True,
            )
    (args.out / f"scale_data-{args.csv_rows}.json").write_text(json.dumps(results, indent=2))


def _output(reader: str) -> str:
    return {
        "python-lines": "lists of str + float32/int64 arrays (no id map)",
        "numpy-loadtxt": "float64 [n, 4] (ids as numbers: no string ids)",
        "numpy-genfromtxt": "float64 [n, 4] (ids as numbers: no string ids)",
        "pyarrow": "string ids dictionary-encoded (first appearance) + float32/int64",
        "polars": "frame with string ids + unique ids in first-appearance order",
        "read_delimited": "Interactions (id maps, int64 indices): the project's reader (pyarrow path)",
    }[reader]


if __name__ == "__main__":
    main()
