"""Helpers of ``bench/serving.py``: a model repository to serve, and servers run as subprocesses.

Client and server run in separate processes, as in production: each server is a
``python -m server`` (or ``python -m loadtest.fake_server`` for the ceiling) child process on free
loopback ports, stopped with SIGTERM (then SIGKILL) when the benchmark moves on or fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from protos.recsys.v1 import service_pb2, service_pb2_grpc

_LOGGER = logging.getLogger(__name__)
ARCHITECTURES = ("mf", "dense", "lstm", "gcn")
_READY_TIMEOUT_S = 180.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet(function: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit deprecation notes on export
        return function(*args, **kwargs)


def _train_sized(data: str, arch: str, run: Path, epochs: int) -> Path:
    """A model with the default (production) sizes, trained for only ``epochs`` on ``data``."""
    from trainer import architecture
    from trainer.checkpoint import save_checkpoint
    from trainer.data.sources import load_split
    from trainer.experiment import train_and_evaluate

    split = load_split(data, "random")
    declared = architecture.get(arch)
    config = dataclasses.replace(declared.training, epochs=epochs, patience=epochs, refit=False, progress=False)
    ranking = dataclasses.replace(declared.ranking, epochs=epochs, eval_every=epochs, refit=False, progress=False)
    trained = train_and_evaluate(arch, split, config=config, ranking_config=ranking, progress=False)
    source = {"source": f"{data} (bench.serving, {epochs} epochs)", "split": split.name, "seed": "0"}
    return save_checkpoint(
        run / arch / "checkpoint.pt", trained.model, split.train, metrics=trained.metrics, data=source
    )


def prepare_repository(data: str, out_dir: Path, architectures: Sequence[str], epochs: int = 1) -> Path:
    """Train and export the models to benchmark.

    Serving speed depends on the models' sizes, not on their accuracy, so the models are trained
    briefly: ``tiny`` takes the trainer's seconds-long tiny models (dim 16, 200 users, 150 items);
    ``synthetic`` or a MovieLens folder builds the default (production) sizes on that data's id space
    and trains them for ``epochs``.

    Args:
        data: ``tiny``, ``synthetic`` or a MovieLens folder.
        out_dir: Working folder: ``run/`` for checkpoints, ``repository/`` for the export.
        architectures: Models to train.
        epochs: Training epochs of the non-tiny models.

    Returns:
        The model repository.
    """
    from exporter.export import export_checkpoint  # the benchmark trains; the load tester never imports these

    run, repository = out_dir / "run", out_dir / "repository"
    for arch in tqdm(architectures, desc=f"train+export ({data})", unit="model"):
        if data == "tiny":
            from trainer.tiny import train_tiny_checkpoint

            checkpoint = _quiet(train_tiny_checkpoint, arch, run)
        else:
            checkpoint = _quiet(_train_sized, data, arch, run, epochs)
        _quiet(export_checkpoint, checkpoint, repository)
    return repository


@dataclass
class ServerProcess:
    """A server child process and where to reach it.

    Attributes:
        target: ``127.0.0.1:PORT`` of its gRPC endpoint.
        metrics_url: Its Prometheus endpoint, None for the ceiling server.
        process: The child.
        log_path: Its stdout and stderr.
    """

    target: str
    metrics_url: str | None
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _wait_ready(server: ServerProcess, models: Sequence[str]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with grpc.insecure_channel(server.target) as channel:
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}; see {server.log_path}")
            try:
                listing = stub.ListModels(service_pb2.ListModelsRequest(), timeout=2)
                ready = {
                    m.name
                    for m in listing.models
                    if any(v.state == service_pb2.VERSION_STATE_READY for v in m.versions)
                }
                if set(models) <= ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"models {list(models)} not ready within {_READY_TIMEOUT_S:.0f} s; see {server.log_path}")


@contextlib.contextmanager
def running_server(
    log_dir: Path,
    name: str,
    repository: Path | None = None,
    models: Sequence[str] = (),
    server_args: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Run our server (``repository`` given) or the ceiling server in a child process.

    Args:
        log_dir: Folder for the child's log.
        name: Label of the server, used for the log file name.
        repository: Model repository for ``python -m server``; None starts the ceiling server.
        models: Models that must be READY before the benchmark starts.
        server_args: Extra server flags (``--backend``, ``--max-batch-size``, ...).

    Yields:
        The running server; it is stopped on exit, whatever happens.
    """
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{name}.log"
    metrics_url = None
    if repository is None:
        command = [sys.executable, "-m", "loadtest.fake_server", "--mode", "ceiling", "--port", str(port)]
    else:
        metrics_port = free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        command = [
            sys.executable, "-m", "server", "--repository", str(repository), "--port", str(port),
            "--metrics-port", str(metrics_port), "--poll-interval-s", "0", "--log-level", "WARNING", *server_args,
        ]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"127.0.0.1:{port}", metrics_url, process, log_path)
    try:
        if repository is None:
            with grpc.insecure_channel(server.target) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
        else:
            _wait_ready(server, models)
        yield server
    finally:
        server.stop()
