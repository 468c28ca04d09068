"""``recsys-train`` end to end on a small file: exit status, table, report.json and checkpoints."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import architecture, load_checkpoint
from trainer.cli import build_parser, main
from trainer.data.splits import Split
from trainer.data.synthetic import synthetic_interactions
from trainer.jobs import RunOptions, run_models
from trainer.tiny import TINY_DATA


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


def test_trains_prints_and_writes(ratings_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    status = main(
        [
            "--model",
            "mf",
            "--data",
            str(ratings_csv),
            "--split",
            "temporal",
            "--test-per-user",
            "3",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "report.json"),
            "--epochs",
            "3",
            "--no-progress",
            "--log-level",
            "WARNING",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| mf |" in printed and "| baseline: global_mean |" in printed and "| baseline: popularity |" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["models"]) == {"mf"} and set(report["baselines"]) == {"global_mean", "popularity", "ease"}
    assert set(report["models"]["mf"]) == {
        "rmse",
        "mae",
        "rmse_01",
        "recall@10",
        "ndcg@10",
        "coverage@10",
        "train_seconds",
    }
    assert report["data"]["split"] == "temporal"
    checkpoint = load_checkpoint(out / "mf" / "checkpoint.pt")
    assert checkpoint.metrics["rmse"] == pytest.approx(report["models"]["mf"]["rmse"])
    assert checkpoint.user_ids[0] == "u0" or checkpoint.user_ids[0].startswith("u")
    # temporal split: the stored histories end before each user's held-out ratings
    assert len(checkpoint.history_items) == np.sum(np.diff(checkpoint.history_offsets))


def test_bad_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,1\na,c,x\n", encoding="utf-8")
    assert main(["--data", str(bad), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "bad.csv:2: rating 'x' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a host without CUDA answers")
def test_asking_for_cuda_without_one_exits_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--device", "cuda", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "sees no CUDA device; train with --device cpu" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_every_flag_has_help() -> None:
    parser = build_parser()
    for action in parser._actions:
        assert action.help, action.dest
    args = parser.parse_args([])
    assert (args.model, args.data, args.split) == ("all", "synthetic", "random")


def test_worker_processes_log_their_fits(
    tiny_split: Split, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """With --jobs 2 each model trains in a spawned process: its fit summaries must still reach stderr."""
    caplog.set_level(logging.INFO)  # the run's level, which the workers take
    names = ["mf", "dense"]
    metrics = run_models(
        names,
        tiny_split,
        None,
        RunOptions(epochs=1, progress=False),
        jobs=2,
        overrides={name: dict(architecture.get(name).tiny) for name in names},
    )
    assert set(metrics) == set(names)
    logged = capfd.readouterr().err
    for name in names:
        assert f"{name}: best validation RMSE" in logged and f"{name}: test RMSE" in logged, logged[-2000:]


def test_killing_the_run_stops_its_worker_processes(tmp_path: Path) -> None:
    """A SIGTERM to recsys-train must not leave its pool training on at a core each."""
    psutil = pytest.importorskip("psutil")
    command = [
        sys.executable,
        "-m",
        "trainer",
        "--model",
        "all",
        "--jobs",
        "2",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    command += ["--data", "synthetic:users=2000,items=1000,ratings=200000"]  # minutes of training per model
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
            workers = [
                child
                for child in psutil.Process(run.pid).children()
                if "--multiprocessing-fork" in " ".join(child.cmdline())
            ]
        assert len(workers) == 2, "the run did not start its two worker processes"
        time.sleep(3)  # the workers are past start-up, training
        run.terminate()
        run.wait(timeout=30)
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, f"worker processes {[p.pid for p in alive]} outlived the run"
    finally:
        run.kill()
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
