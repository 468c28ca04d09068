"""Dependencies point one way, and the generated stubs match the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("trainer", "exporter", "torch_geometric", "torch")


def test_server_and_client_do_not_import_training_code():
    probe = (
        "import sys, server, server.app, server.cli, client; "
        "from server.runtime import onnx; "
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"server/client imported {result.stdout.strip()}"


def test_generated_stubs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "protos.generate", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
