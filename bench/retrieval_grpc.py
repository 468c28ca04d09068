"""Recommend through the real gRPC server at catalogue scale: exact scoring vs the retrieval index.

A helper of ``bench/retrieval.py``. For one catalogue size it builds an MF version folder from synthetic
factor-shaped tables (``bench.retrieval.make_vectors``) with the exporter's pieces, not by training:
the serving module, the TorchScript artifact (the exact path; an ONNX recommend graph of a 1M-item table
is a 256 MiB initializer to export and parity-check, which this benchmark skips), the side files with the
ranking tables, and an IVF index checked for recall as the exporter checks it. Then it serves the folder
twice with ``python -m server`` (``bench.serving_setup.running_server``): once with
``--retrieval-min-items`` above the catalogue (exact: score every item, then top-k) and once from the
index, and drives each with ``loadtest`` (p50/p99 at concurrency 1, calls/s at concurrency 64, one user
per call, k=10, seen items excluded), reporting the server's RSS and USS (pages it does not share).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

from exporter.artifacts import write_artifacts
from exporter.config import build_config, stamp, write_config
from exporter.inputs import ModelShape
from exporter.ranking_tables import RankingTables
from exporter.retrieval import RetrievalOptions, build_retrieval_index
from exporter.retrieval_index import IndexSpec
from exporter.side_files import side_file_arrays, write_side_files
from loadtest.connection import Connection
from loadtest.runner import StepLimits
from loadtest.session import LoadTestConfig, run_loadtest
from loadtest.sweep import SweepConfig
from loadtest.workload import WorkloadSpec
from protos.recsys.v1 import model_config_pb2 as mc
from trainer import architecture as architectures
from trainer.data.interactions import UserHistories

_LOGGER = logging.getLogger(__name__)
MODEL = "big"
NEVER = 2**62


@dataclass(frozen=True)
class Served:
    """What one server run measured."""

    p50_ms: float
    p99_ms: float
    calls_s_c1: float
    calls_s_c64: float
    rss_mib: float
    uss_mib: float
    errors: int


def build_version(
    repository: Path, items: np.ndarray, biases: np.ndarray, users: np.ndarray, spec: IndexSpec, seed: int
) -> mc.RetrievalIndex:
    """Write ``repository/big/1``: MF with these ranking tables (a small random rating head), and its index.

    Each user gets 20 random training items (its seen set) so that exclude_seen has work to do.
    """
    from trainer.models.mf import MatrixFactorization

    num_users, num_items = len(users), len(items)
    rng = np.random.default_rng(seed)
    model = MatrixFactorization(num_users, num_items, dim=8, ranking_dim=items.shape[1])
    with torch.no_grad():
        model.ranking.users.weight.copy_(torch.from_numpy(users))
        model.ranking.items.weight.copy_(torch.from_numpy(items))
        model.ranking.item_bias.copy_(torch.from_numpy(biases))
    offsets = np.arange(num_users + 1, dtype=np.int64) * 20
    history = rng.integers(0, num_items, 20 * num_users).astype(np.int64)
    ratings = rng.integers(1, 6, len(history)).astype(np.float32)
    arrays = side_file_arrays(
        [f"u{u}" for u in range(num_users)],
        [f"i{i}" for i in range(num_items)],
        np.bincount(history, minlength=num_items).astype(np.float32),
        offsets,
        history,
        ratings,
    )
    tables = RankingTables("recommend", False, users, items, biases)
    arrays.update(tables.side_file_arrays())
    declaration = architectures.get("mf")
    shape = ModelShape(
        architecture="mf",
        num_users=num_users,
        num_items=num_items,
        rating_min=1.0,
        rating_max=5.0,
        max_history_length=0,
    )
    folder = repository / MODEL / "1"
    folder.mkdir(parents=True)
    serving = model.serving_module(UserHistories(offsets, history, ratings)).eval()
    written = write_artifacts(serving, declaration, shape, ("torchscript",), folder)
    options = RetrievalOptions(min_items=num_items, spec=spec)
    index = build_retrieval_index(tables, np.diff(offsets), folder, options)
    config = build_config(
        name=MODEL,
        architecture=declaration,
        num_users=num_users,
        num_items=num_items,
        rating_scale=(1.0, 5.0),
        max_history_length=0,
        artifacts=written.artifacts,
        side_files=write_side_files(arrays, folder),
        training_metrics={},
        hyperparameters=model.hparams,
        source_checkpoint_sha256="0" * 64,
        parity=mc.Parity(),
        retrieval_index=index,
    )
    write_config(stamp(config, 1), folder)
    return index


def drive(target: str, repository: Path, seconds: float) -> tuple[list, list]:
    """(concurrency-1 step, concurrency-64 step) reports of one Recommend sweep."""
    reports = []
    for concurrency in (1, 64):
        sweep = SweepConfig(
            connection=Connection(target=target, timeout_s=60.0),
            concurrency=(concurrency,),
            limits=StepLimits(duration_s=seconds),
            warmup_s=1.0,
            progress=False,
        )
        workload = WorkloadSpec(method="recommend", model=MODEL, k=10, exclude_seen=True, pool_size=512)
        result = asyncio.run(run_loadtest(LoadTestConfig(sweep=sweep, workload=workload, repository=repository)))
        reports.append(result.steps[0])
    return reports


def serve_and_measure(repository: Path, log_dir: Path, label: str, server_args: list[str], seconds: float) -> Served:
    """Start ``python -m server`` on the repository, drive it, and read its memory before stopping it."""
    from bench.serving_setup import running_server

    with running_server(log_dir, label, repository, [MODEL], ["--backend", "torchscript", *server_args]) as server:
        one, many = drive(server.target, repository, seconds)
        memory = psutil.Process(server.process.pid).memory_full_info()
    return Served(
        p50_ms=one.latency.p50_ms,
        p99_ms=one.latency.p99_ms,
        calls_s_c1=one.calls_per_s,
        calls_s_c64=many.calls_per_s,
        rss_mib=memory.rss / 2**20,
        uss_mib=memory.uss / 2**20,
        errors=sum(one.errors.values()) + sum(many.errors.values()),
    )


def exact_and_indexed(repository: Path, log_dir: Path, seconds: float) -> tuple[Served, Served]:
    """The same version served by scoring every item, then from its index."""
    exact = serve_and_measure(repository, log_dir, "exact", ["--retrieval-min-items", str(NEVER)], seconds)
    indexed = serve_and_measure(repository, log_dir, "index", [], seconds)
    return exact, indexed
