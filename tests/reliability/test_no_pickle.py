"""Checkpoints and side files are loaded without unpickling code.

A behavioural proof (a booby-trapped checkpoint does not run its payload) and a source scan of every
package: ``torch.load`` always with ``weights_only=True``, ``np.load`` never with pickles allowed,
and no ``pickle``/``joblib``/``dill`` loading at all.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import torch

from .procs import ROOT

PACKAGES = ("server", "client", "trainer", "exporter", "loadtest", "protos")


class _Trap:
    """Unpickling this calls os.mkdir(path): visible proof that pickle ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.path),))


def test_booby_trapped_checkpoint_is_refused_without_running_its_payload(tmp_path: Path) -> None:
    from trainer.checkpoint import CheckpointError, load_checkpoint

    evidence = tmp_path / "pickle-ran-code"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format_version": 1, "architecture": "mf", "hparams": _Trap(evidence)}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(path)
    assert not evidence.exists()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "<not a constant>"
    return None


def _problems(path: Path) -> list[str]:
    problems = []
    for func, call in _calls(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{call.lineno} {func}"
        if func.endswith("torch.load") and _keyword(call, "weights_only") is not True:
            problems.append(f"{where} without weights_only=True")
        if func in ("np.load", "numpy.load", "np.save", "numpy.save") and _keyword(call, "allow_pickle") not in (
            None,
            False,
        ):
            problems.append(f"{where} with allow_pickle")
        if func.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle") and "load" in func:
            problems.append(f"{where} unpickles")
    return problems


def test_no_package_loads_with_pickle() -> None:
    sources = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if not p.name.endswith("_pb2.py")]
    assert len(sources) > 20, "the scan found too few files to mean anything"
    problems = [problem for path in sources for problem in _problems(path)]
    assert problems == []


def test_the_scan_flags_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "sample.py"
    bad.write_text(
        "import pickle, torch, numpy as np\n"
        "torch.load('x')\ntorch.load('x', weights_only=False)\nnp.load('x', allow_pickle=True)\npickle.load(f)\n"
        "torch.load('x', weights_only=True)\nnp.load('x')\n"
    )
    assert [p.split(" ", 1)[0] for p in _problems(bad)] == [f"sample.py:{n}" for n in (2, 3, 4, 5)]
