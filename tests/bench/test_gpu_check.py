"""bench/gpu_check.sh stops at once, with a clear message and a nonzero exit, where no GPU is usable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.sh"


def _run(tmp_path: Path, nvidia_smi: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NVIDIA_SMI": nvidia_smi,
        "VENV": str(tmp_path / "venv"),
        "OUT": str(tmp_path / "out"),
        "PYTHON": "false",  # would fail loudly if the script ever tried to create a venv
    }
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_missing_nvidia_smi_fails_fast_and_installs_nothing(tmp_path: Path) -> None:
    done = _run(tmp_path, "nvidia-smi-that-does-not-exist")
    assert done.returncode == 2
    assert "no GPU here: 'nvidia-smi-that-does-not-exist' was not found" in done.stderr
    assert "nothing was installed" in done.stderr
    assert not (tmp_path / "venv").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name != "posix", reason="needs an executable shell script")
def test_a_failing_nvidia_smi_is_reported_as_no_usable_gpu(tmp_path: Path) -> None:
    fake = tmp_path / "fake-smi"
    fake.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver'\nexit 9\n"
    )
    fake.chmod(0o755)
    done = _run(tmp_path, str(fake))
    assert done.returncode == 2
    assert "failed, so no GPU is usable: NVIDIA-SMI has failed" in done.stderr
    assert not (tmp_path / "venv").exists()
