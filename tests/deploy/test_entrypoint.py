"""The image's command, run here: the Dockerfile's ENTRYPOINT + CMD against a repository folder.

No image is built (there is no Docker daemon here): the test runs the same command line with the
installed ``recsys-serve`` script (or its equivalent ``python -m server``), only the repository path and
the two ports replaced, and without the image's ``RECSYS_LISTEN_ALL_INTERFACES`` so that it binds 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import grpc
from deploy_files import ROOT, exec_form
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local_command(entrypoint: list[str]) -> list[str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entrypoint[0]] == "server.__main__:main", "the image's entrypoint is not the server's script"
    installed = Path(sys.executable).parent / entrypoint[0]
    return [str(installed)] if installed.is_file() else [sys.executable, "-m", "server"]


def _substitute(cmd: list[str], values: dict[str, str]) -> list[str]:
    out = list(cmd)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return out


def _health(target: str) -> str:
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def test_the_images_command_serves_a_repository_and_stops_cleanly_on_sigterm(dockerfile, copy_repository, tmp_path):
    entrypoint, cmd = exec_form(dockerfile, "ENTRYPOINT"), exec_form(dockerfile, "CMD")
    repository = copy_repository(tmp_path / "models", models=("mf",))
    port, metrics_port = _free_port(), _free_port()
    args = _substitute(cmd, {"--repository": str(repository), "--port": str(port), "--metrics-port": str(metrics_port)})
    assert [a for a in args if a not in cmd] == [str(repository), str(port), str(metrics_port)]
    environment = {k: v for k, v in os.environ.items() if k != "RECSYS_LISTEN_ALL_INTERFACES"}
    environment["PYTHONPATH"] = str(ROOT)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_local_command(entrypoint), *args], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    target = f"127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + 120, "unreachable"
        while status != "SERVING" and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                status = _health(target)
            except grpc.RpcError:
                time.sleep(0.2)
        assert status == "SERVING", log_path.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            assert b"recsys_models_loaded 1.0" in response.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert "server stopped" in log_path.read_text()
