"""The base install serves ONNX: ``--help`` and loading an ONNX repository import no training dependency."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from deploy_files import ROOT

NOT_IN_BASE = ("torch", "torch_geometric", "matplotlib", "onnx", "onnxscript", "tqdm", "trainer", "exporter")
NOT_BY_DEFAULT = (*NOT_IN_BASE, "opentelemetry")  # the 'tracing' extra, imported only with --tracing
_REPORT = f"print(json.dumps(sorted(m for m in {NOT_BY_DEFAULT!r} if m in sys.modules)))"


def _imported(probe: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{probe}\n{_REPORT}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_help_imports_no_training_dependency():
    probe = (
        "import contextlib, io, runpy\n"
        "sys.argv = ['recsys-serve', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    runpy.run_module('server', run_name='__main__', alter_sys=True)\n"
        "assert '--drain-delay-s' in out.getvalue()"
    )
    assert _imported(probe) == []


def test_serving_an_onnx_repository_imports_no_training_dependency(tiny_repository):
    probe = (
        "import asyncio\n"
        "from server import RunningServer, ServerConfig\n"
        "from client import RecsysClient\n"
        "async def main():\n"
        f"    config = ServerConfig(repository={str(tiny_repository)!r}, port=0, poll_interval_s=0, metrics_port=0)\n"
        "    server = RunningServer(config)\n"
        "    await server.start()\n"
        "    try:\n"
        "        assert sorted(server.registry.ready_models()) == ['dense', 'gcn', 'lstm', 'mf']\n"
        "    finally:\n"
        "        await server.stop(0)\n"
        "asyncio.run(main())"
    )
    assert _imported(probe) == []


def test_the_base_dependencies_are_the_onnx_servers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {requirement.split("=")[0].split(">")[0].split("<")[0] for requirement in project["dependencies"]}
    assert base == {
        "numpy",
        "onnxruntime-gpu",
        "grpcio",
        "grpcio-health-checking",
        "grpcio-reflection",
        "protobuf",
        "prometheus-client",
    }
    extras = project["optional-dependencies"]
    assert "torch==2.13.0" in extras["train"] and extras["torchscript"] == ["torch==2.13.0"]
    assert any(requirement.startswith("recsys-serve[train") for requirement in extras["dev"])
