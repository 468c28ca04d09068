"""Dependencies point one way, and the generated stubs match the .proto files."""

from __future__ import annotations

import ast
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


def _imported(statement: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has imported after running ``statement``."""
    probe = f"import sys; {statement}; print(sorted(m for m in {candidates!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip())


def test_contract_rules_import_nothing_of_ours_and_no_heavy_library():
    # Every stage imports protos.rules; it must cost none of them a dependency.
    ours = ("trainer", "exporter", "server", "client", "loadtest", "bench")
    heavy = ("numpy", "grpc", "google.protobuf", "torch", "onnxruntime")
    assert _imported("import protos.rules", ours + heavy) == []


def test_load_tester_and_client_import_neither_server_nor_training_code():
    assert _imported("import client, loadtest.cli, loadtest.int_ids", ("server", *FORBIDDEN)) == []


def test_each_shared_rule_has_one_implementation():
    import exporter.files
    import loadtest.int_ids
    import server.integer_ids
    import server.repository
    from protos import rules

    assert exporter.files.sha256_file is server.repository.file_sha256 is rules.file_sha256
    assert server.integer_ids.integer_ids is loadtest.int_ids.integer_ids is rules.integer_ids


def test_generated_stubs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "protos.generate", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
