"""Shared fixtures: tiny trained checkpoints of every architecture and one export of them, once per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from exporter import ExportResult, export_run
from trainer import train_tiny_checkpoint
from trainer.architecture import BUILT_IN as ARCHITECTURES


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with ``<arch>/checkpoint.pt`` for the four architectures (a few seconds of training)."""
    run_dir = tmp_path_factory.mktemp("run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch sparse beta notices from the GCN's adjacency
        for architecture in ARCHITECTURES:
            train_tiny_checkpoint(architecture, run_dir, seed=0)
    return run_dir


@pytest.fixture(scope="session")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportResult]:
    """All four models exported once into a shared repository; tests must treat it as read-only."""
    repository = tmp_path_factory.mktemp("repository")
    return {result.name: result for result in export_run(tiny_run, repository)}


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """An empty repository folder of the test's own."""
    path = tmp_path / "repository"
    path.mkdir()
    return path
