"""Which folders of a repository count as versions, and which files are trusted."""

from __future__ import annotations

import hashlib

import pytest

from server.errors import ModelLoadError
from server.repository import checked_file, scan


def test_scan_skips_hidden_incomplete_and_malformed_folders(tmp_path):
    for folder in ("mf/1", "mf/3", "mf/.staging-4", "mf/05", "mf/x", ".hidden/1", "bad name/1", "dense/2"):
        (tmp_path / folder).mkdir(parents=True)
    for folder in ("mf/1", "mf/.staging-4", "mf/05", "mf/x", ".hidden/1", "bad name/1", "dense/2"):
        (tmp_path / folder / "config.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a model")
    found = scan(tmp_path)
    assert sorted(found) == [("dense", 2), ("mf", 1)], "mf/3 has no config.json yet: still being copied"
    assert found[("mf", 1)].path == tmp_path / "mf" / "1"


def test_scan_of_a_missing_repository_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --repository"):
        scan(tmp_path / "nowhere")


def test_files_are_checked_by_name_and_hash(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert checked_file(tmp_path, "model.onnx", digest) == tmp_path / "model.onnx"
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        checked_file(tmp_path, "model.onnx", "0" * 64)
    for path in ("../model.onnx", "/etc/passwd", "sub/model.onnx", ".."):
        with pytest.raises(ModelLoadError, match="plain file names"):
            checked_file(tmp_path, path, digest)
    with pytest.raises(ModelLoadError, match="missing from"):
        checked_file(tmp_path, "absent.onnx", digest)
