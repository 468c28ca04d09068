"""Data-parallel training: the sharding and thread arithmetic, and two gloo ranks under torchrun end to end."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.data.synthetic import synthetic_interactions
from trainer.distributed import DistributedContext, ShardLog, shard, shard_batch_size, state_digest
from trainer.jobs import ThreadShare, threads_per_worker
from trainer.tiny import TINY_DATA

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("cores", "running", "threads"),
    [(2, 2, 1), (2, 1, 2), (2, 0, 2), (2, 3, 1), (16, 3, 5), (16, 1, 16), (1, 4, 1)],
)
def test_threads_per_worker(cores: int, running: int, threads: int) -> None:
    assert threads_per_worker(cores, running) == threads


def test_thread_share_gives_the_last_worker_every_core() -> None:
    running = multiprocessing.get_context("spawn").Value("i", 0)
    before = torch.get_num_threads()
    try:
        running.value = 1  # another worker is still training
        with ThreadShare(2, running) as share:
            assert running.value == 2 and torch.get_num_threads() == 1
            running.value -= 1  # the other one finished
            share.rebalance()
            assert torch.get_num_threads() == 2
        assert running.value == 0
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 6, 7])
def test_shard_deals_groups_and_gives_the_tail_to_everyone(count: int) -> None:
    batches = list(range(count))
    shards = [list(shard(batches, rank, 3)) for rank in range(3)]
    full = count - count % 3
    tail = batches[full:]
    for rank, mine in enumerate(shards):
        assert mine == [*batches[rank:full:3], *tail]
    assert len({len(mine) for mine in shards}) == 1  # every rank steps equally often
    assert sorted({b for mine in shards for b in mine}) == batches  # nothing dropped


def test_one_process_shard_is_everything() -> None:
    assert list(shard(range(5), 0, 1)) == [0, 1, 2, 3, 4]
    assert shard_batch_size(1024, 2) == 512 and shard_batch_size(1025, 2) == 513 and shard_batch_size(1, 4) == 1


def test_context_from_env() -> None:
    assert not DistributedContext.from_env({}).enabled
    context = DistributedContext.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (context.rank, context.world_size, context.local_rank, context.backend) == (3, 4, 1, "gloo")
    assert context.enabled and not context.is_main
    with pytest.raises(ValueError, match="rank"):
        DistributedContext.from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="integer"):
        DistributedContext.from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_one_process_context_passes_values_through() -> None:
    context = DistributedContext()
    module = torch.nn.Linear(2, 2)
    assert context.broadcast_object((True, 3)) == (True, 3)
    assert context.wrap(module, module.parameters()) is module
    log = ShardLog()
    log.add(torch.arange(4), 4)
    assert log.summary()[:2] == (1, 4)
    assert state_digest(module) == state_digest(module)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = synthetic_interactions(TINY_DATA)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    rows = [
        f"{data.user_ids[u]},{data.item_ids[i]},{int(r)},{t}"
        for u, i, r, t in zip(data.users, data.items, data.ratings, data.timestamps, strict=True)
    ]
    path.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_two_gloo_ranks_train_different_shards_to_identical_weights(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "trainer",
        "--model",
        "mf",
        "--data",
        str(ratings_csv),
        "--epochs",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pt")) == ["mf/checkpoint.pt"]
    assert (out / "report.json").is_file()
    assert log.count("| mf |") == 1  # rank 0 alone prints the table
    shards = dict(
        re.findall(r"mf: rank (\d) of 2 stepped on \d+ ratings in \d+ batches per epoch \(shard (\w+)\)", log)
    )
    assert set(shards) == {"0", "1"} and shards["0"] != shards["1"]
    weights = dict(re.findall(r"mf: rank (\d) of 2 final weights (\w+)", log))
    assert set(weights) == {"0", "1"} and weights["0"] == weights["1"]
