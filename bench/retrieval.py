"""Retrieval at catalogue scale: exact scoring against faiss indexes, in-process, at 100K and 1M items.

For each catalogue size (default 100K and 1M items x 64 dimensions, one run), item and user vectors
shaped like trained factors (``--vectors factors``: items around 1,000 topic directions with
popularity-dependent norms and a bias; or plain Gaussian ``random``, the hardest case for an index):

- exact: ``user @ items.T + bias`` then ``argpartition``, the way the server ranks today;
- each index kind (``exporter.retrieval_index``), searched through ``server.retrieval.RetrievalIndex``
  (memory-mapped, exact re-scoring): recall@10 against the exact top-10, queries/s and p50/p99
  latency at batch 1, queries/s at batch 64, build seconds, file size and process RSS after loading.

    python -m bench.retrieval                          # 100K and 1M, hnsw-ip and ivf
    python -m bench.retrieval --sizes 100000 --kinds hnsw,hnsw-ip,ivf --queries 300

The rows come from functions returning :class:`Row`; the gRPC section (Recommend calls/s at concurrency
64 and p50/p99 at concurrency 1 through the real server, exact path vs index path, server RSS) appends
its rows to the same table: see :func:`grpc_rows`. ``--sizes ''`` runs only the gRPC section.

    python -m bench.retrieval --sizes '' --grpc-sizes 100000,1000000 --grpc-seconds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

from exporter.retrieval_index import IndexSpec, build_index
from server.retrieval import RetrievalIndex

K = 10


@dataclasses.dataclass
class Row:
    """One line of the table."""

    items: int
    method: str
    recall: float | None
    qps_batch1: float
    p50_ms: float
    p99_ms: float
    qps_batch64: float | None = None
    build_s: float | None = None
    file_mib: float | None = None
    rss_mib: float | None = None
    note: str = ""


def make_vectors(num_items: int, dim: int, kind: str, queries: int, seed: int) -> tuple[np.ndarray, ...]:
    """(items float32 [N, d], biases float32 [N], users float32 [Q, d])."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        items = rng.standard_normal((num_items, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        users = rng.standard_normal((queries, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        return items, rng.normal(0, 0.3, num_items).astype(np.float32), users
    topics = rng.standard_normal((1000, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    items = np.empty((num_items, dim), np.float32)
    for lo in range(0, num_items, 1 << 17):
        n = min(1 << 17, num_items - lo)
        mix = topics[rng.integers(0, 1000, n)] + 0.6 * topics[rng.integers(0, 1000, n)]
        items[lo : lo + n] = mix + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(0.5 / np.sqrt(dim))
    popularity = 1.0 / np.arange(1, num_items + 1) ** 1.0
    rank = rng.permutation(num_items)
    items *= (0.5 + 0.5 * (np.log(popularity[rank]) - np.log(popularity).min()) / -np.log(popularity).min())[
        :, None
    ].astype(np.float32)
    biases = (0.3 * np.log(popularity[rank] * num_items)).astype(np.float32) / 10
    users = topics[rng.integers(0, 1000, queries)] + 0.5 * topics[rng.integers(0, 1000, queries)]
    users += rng.standard_normal((queries, dim), dtype=np.float32) * np.float32(0.5 / np.sqrt(dim))
    return items, biases, users.astype(np.float32)


def exact_top_k(items: np.ndarray, biases: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
    """int64 [Q, k] exact best items per user (the reference)."""
    out = np.empty((len(users), k), np.int64)
    for lo in range(0, len(users), 64):
        scores = users[lo : lo + 64] @ items.T + biases
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
        out[lo : lo + 64] = np.take_along_axis(best, order, axis=1)
    return out


def _latencies(call, queries: np.ndarray, count: int) -> np.ndarray:
    call(queries[:1])  # warm
    times = np.empty(count)
    for i in range(count):
        start = time.perf_counter()
        call(queries[i % len(queries) : i % len(queries) + 1])
        times[i] = time.perf_counter() - start
    return times


def _batch_qps(call, queries: np.ndarray, batch: int, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        lo = (done * batch) % max(len(queries) - batch, 1)
        call(queries[lo : lo + batch])
        done += 1
    return done * batch / (time.perf_counter() - start)


def exact_row(items: np.ndarray, biases: np.ndarray, users: np.ndarray, count: int) -> Row:
    def call(q: np.ndarray) -> None:
        scores = q @ items.T + biases
        best = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)

    times = _latencies(call, users, count)
    return Row(
        len(items),
        "exact (numpy matmul + argpartition)",
        1.0,
        1 / times.mean(),
        1e3 * np.percentile(times, 50),
        1e3 * np.percentile(times, 99),
        qps_batch64=_batch_qps(call, users, 64, 2.0),
        rss_mib=psutil.Process().memory_info().rss / 2**20,
    )


def index_row(
    kind: str, items: np.ndarray, biases: np.ndarray, users: np.ndarray, truth: np.ndarray, folder: Path, count: int
) -> Row:
    np.save(folder / "item_vectors.npy", items)
    np.save(folder / "item_biases.npy", biases)
    built = build_index(items, biases, folder, IndexSpec(kind=kind), file_name=f"{kind}.faiss")
    rss_before = psutil.Process().memory_info().rss
    index = RetrievalIndex.load(built.path, folder / "item_vectors.npy", folder / "item_biases.npy")
    rss_loaded = psutil.Process().memory_info().rss

    def call(q: np.ndarray) -> None:
        index.search(q, K)

    found = [ranked[0] for ranked in index.search(users, K)]
    recall = float(np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, truth, strict=True)]))
    times = _latencies(call, users, count)
    shown = ", ".join(f"{k}={v}" for k, v in built.parameters.items() if k not in ("bias_column", "max_norm"))
    return Row(
        len(items),
        f"{kind} ({shown})",
        recall,
        1 / times.mean(),
        1e3 * np.percentile(times, 50),
        1e3 * np.percentile(times, 99),
        qps_batch64=_batch_qps(call, users, 64, 2.0),
        build_s=built.build_seconds,
        file_mib=built.path.stat().st_size / 2**20,
        rss_mib=psutil.Process().memory_info().rss / 2**20,
        note=f"load +{(rss_loaded - rss_before) / 2**20:.0f} MiB RSS (mmap)",
    )


def grpc_rows(args: argparse.Namespace) -> list[Row]:
    """Recommend through the real gRPC server at each of ``--grpc-sizes``: exact path vs index path.

    See ``bench/retrieval_grpc.py``: an MF version built from synthetic tables (TorchScript backend), served
    once scoring every item and once from an IVF index with ``sqrt(N)`` lists and ``--grpc-nprobe`` (fewer
    lists than the in-process default of ``4 sqrt(N)``, so that the 1M build takes a minute, not eight,
    on a shared 2-core machine). Columns: ``q/s batch 1`` = calls/s at concurrency 1, ``p50``/``p99`` at
    concurrency 1, ``q/s batch 64`` = calls/s at concurrency 64, one user per call, k=10, seen items excluded;
    recall@10 is the exporter's check of the index (raw index top-10 vs exact, 256 users).
    """
    from bench import retrieval_grpc

    rows: list[Row] = []
    for size in [int(s) for s in args.grpc_sizes.split(",") if s]:
        items, biases, users = make_vectors(size, args.dim, args.vectors, args.grpc_users, args.seed)
        with tempfile.TemporaryDirectory(dir=args.out) as folder:
            repository = Path(folder) / "repository"
            spec = IndexSpec(kind="ivf", ivf_lists=round(np.sqrt(size)), ivf_nprobe=args.grpc_nprobe)
            index = retrieval_grpc.build_version(repository, items, biases, users, spec, args.seed)
            del items, users
            exact, indexed = retrieval_grpc.exact_and_indexed(repository, args.out / "logs", args.grpc_seconds)
            file_mib = (repository / retrieval_grpc.MODEL / "1" / index.path).stat().st_size / 2**20
        shown = ", ".join(f"{k}={v}" for k, v in index.parameters.items() if k != "bias_column")
        for method, served, recall, build in (
            ("gRPC exact (torchscript, whole catalogue)", exact, 1.0, None),
            (f"gRPC ivf ({shown})", indexed, index.recall_at_10, index.build_seconds),
        ):
            rows.append(
                Row(
                    size,
                    method,
                    recall,
                    served.calls_s_c1,
                    served.p50_ms,
                    served.p99_ms,
                    qps_batch64=served.calls_s_c64,
                    build_s=build,
                    file_mib=file_mib if build is not None else None,
                    rss_mib=served.rss_mib,
                    note=f"server USS {served.uss_mib:,.0f} MiB; c=1 / c=64 calls/s; {served.errors} errors",
                )
            )
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def format_table(rows: list[Row]) -> str:
    def f(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    exact = {row.items: row.qps_batch1 for row in rows if row.method.startswith("exact")}
    lines = [
        "| items | method | recall@10 | q/s batch 1 | x exact | p50 ms | p99 ms | q/s batch 64 | build s | file MiB "
        "| RSS MiB | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.qps_batch1 / exact[row.items] if row.items in exact else None
        lines.append(
            f"| {row.items:,} | {row.method} | {f(row.recall, 3)} | {f(row.qps_batch1, 0)} | {f(ratio, 1)} | "
            f"{f(row.p50_ms, 2)} | {f(row.p99_ms, 2)} | {f(row.qps_batch64, 0)} | {f(row.build_s)} | "
            f"{f(row.file_mib, 0)} | {f(row.rss_mib, 0)} | {row.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="catalogue sizes (items)")
    parser.add_argument("--dim", type=int, default=64, help="vector dimensions")
    parser.add_argument("--kinds", default="hnsw-ip,ivf", help="index kinds (exporter.retrieval_index.KINDS)")
    parser.add_argument("--vectors", choices=("factors", "random"), default="factors", help="vector shape")
    parser.add_argument("--queries", type=int, default=500, help="users for recall and batch-1 latency")
    parser.add_argument("--exact-queries", type=int, default=100, help="users timed for exact scoring")
    parser.add_argument("--seed", type=int, default=0, help="vector seed")
    parser.add_argument("--out", type=Path, default=Path("out/bench/retrieval"), help="folder for index files")
    parser.add_argument("--grpc-sizes", default="100000,1000000", help="catalogue sizes served over gRPC ('' skips)")
    parser.add_argument("--grpc-users", type=int, default=2000, help="users of the served versions")
    parser.add_argument("--grpc-nprobe", type=int, default=64, help="IVF cells searched per query by the server")
    parser.add_argument("--grpc-seconds", type=float, default=5.0, help="measured seconds per concurrency step")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    for size in tqdm(sizes, desc="catalogues"):
        items, biases, users = make_vectors(size, args.dim, args.vectors, args.queries, args.seed)
        truth = exact_top_k(items, biases, users, K)
        rows.append(exact_row(items, biases, users, args.exact_queries))
        with tempfile.TemporaryDirectory(dir=args.out) as folder:
            for kind in kinds:
                rows.append(index_row(kind, items, biases, users, truth, Path(folder), args.queries))
                print(format_table(rows[-1:]).splitlines()[-1], flush=True)
        del items, users
    rows.extend(grpc_rows(args))
    print(f"\n{args.vectors} vectors, d={args.dim}, k={K}; gRPC rows through python -m server (see grpc_rows)\n")
    print(format_table(rows))


if __name__ == "__main__":
    main()
