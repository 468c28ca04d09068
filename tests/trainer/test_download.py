"""The opt-in download: checksum enforced, unpacked once, cached afterwards (a file:// URL, no network)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from trainer.data import download
from trainer.data.download import Archive, DownloadError, download_dataset


def make_zip(path: Path) -> str:
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
        bundle.writestr("ml-100k/README", "test archive")
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    make_zip(archive)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="does not match the published 0e33842e"):
        download_dataset("ml-100k", cache, url=archive.as_uri())
    assert not (cache / "ml-100k").exists()
    assert list(cache.iterdir()) == []


def test_verified_archive_is_unpacked_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "ml-100k.zip"
    digest = make_zip(archive)
    monkeypatch.setitem(download.ARCHIVES, "ml-100k", Archive(archive.as_uri(), digest, "ml-100k", "u.data"))
    cache = tmp_path / "cache"
    folder = download_dataset("ml-100k", cache)
    assert (folder / "u.data").read_text() == "1\t2\t3\t4\n"
    archive.unlink()  # a second call must not touch the source
    assert download_dataset("ml-100k", cache) == folder


def test_unknown_name_and_unreachable_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'ml-20m'"):
        download_dataset("ml-20m", tmp_path)
    with pytest.raises(DownloadError, match="could not download"):
        download_dataset("ml-100k", tmp_path, url=(tmp_path / "absent.zip").as_uri())


def test_the_published_checksum_is_pinned() -> None:
    assert download.ARCHIVES["ml-100k"].md5 == "0e33842e24a9c977be4e0107933c0723"
    assert download.ARCHIVES["ml-100k"].url.startswith("https://files.grouplens.org/")
