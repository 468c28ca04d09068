from __future__ import annotations

import threading
from pathlib import Path

import pytest

from exporter.errors import ExportError, ExportInputError
from exporter.repository import (
    list_versions,
    prepare_repository,
    publish,
    staging_folder,
    validate_model_name,
)


@pytest.mark.parametrize("name", ["mf", "MF-2", "dense_v1.3", "a", "x" * 64, "9lives"])
def test_valid_names_pass(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "../mf", "..", "a..b", ".hidden", "-x", "x" * 65, "sp ace", "é"])
def test_unsafe_names_are_rejected(name: str) -> None:
    with pytest.raises(ExportInputError, match="invalid model name"):
        validate_model_name(name)


def test_repository_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    file = tmp_path / "repo"
    file.write_text("not a folder")
    with pytest.raises(ExportInputError, match="is a file"):
        prepare_repository(file)


def test_missing_repository_is_created(tmp_path: Path) -> None:
    path = prepare_repository(tmp_path / "a" / "b")
    assert path.is_dir() and path.is_absolute()


def _publish_one(repository: Path, name: str, payload: str = "x") -> tuple[int, Path]:
    with staging_folder(repository, name) as staging:
        (staging / "artifact.bin").write_text(payload)
        return publish(staging, repository, name, lambda v, folder: (folder / "config.json").write_text(str(v)))


def test_versions_count_up_from_one_and_never_overwrite(repository: Path) -> None:
    first = _publish_one(repository, "mf", "first")
    second = _publish_one(repository, "mf", "second")
    other = _publish_one(repository, "gcn")
    assert [first[0], second[0], other[0]] == [1, 2, 1]
    assert (repository / "mf" / "1" / "artifact.bin").read_text() == "first"
    assert (repository / "mf" / "2" / "artifact.bin").read_text() == "second"
    assert (repository / "mf" / "2" / "config.json").read_text() == "2"
    assert list_versions(repository / "mf") == [1, 2]
    assert not [p for p in repository.iterdir() if p.name.startswith(".tmp-")]


def test_next_version_follows_the_highest_and_ignores_stray_entries(repository: Path) -> None:
    model = repository / "mf"
    for entry in ("3", "10", "007", "0", "-1", "latest", ".tmp-x"):
        (model / entry).mkdir(parents=True)
    (model / "11").write_text("a file, not a version, but it still blocks its number")
    assert list_versions(model) == [3, 10]
    assert _publish_one(repository, "mf")[0] == 12
    assert (model / "11").read_text().startswith("a file")


def test_concurrent_publishers_take_distinct_versions(repository: Path) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            with staging_folder(repository, "mf") as staging:
                (staging / "artifact.bin").write_text(str(index))
                barrier.wait()
                results.append(publish(staging, repository, "mf", lambda v, f: None)[0])
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results) == list(range(1, 9))
    payloads = {(repository / "mf" / str(v) / "artifact.bin").read_text() for v in results}
    assert payloads == {str(i) for i in range(8)}


def test_a_failure_while_staging_leaves_nothing(repository: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), staging_folder(repository, "mf") as staging:
        (staging / "predict.onnx").write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(repository.iterdir()) == []


def test_a_failure_in_finalize_publishes_no_version(repository: Path) -> None:
    def fail(version: int, folder: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), staging_folder(repository, "mf") as staging:
        publish(staging, repository, "mf", fail)
    assert list_versions(repository / "mf") == []
    assert not [p for p in repository.iterdir() if p.name.startswith(".tmp-")]


def test_publish_refuses_a_target_that_appeared(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that ignores the lock creates the version folder between the choice and the rename.
    def sneak_in(version: int, folder: Path) -> None:
        (repository / "mf" / str(version)).mkdir()

    with pytest.raises(ExportError, match="cannot publish mf version 1"), staging_folder(repository, "mf") as staging:
        publish(staging, repository, "mf", sneak_in)
    assert list((repository / "mf" / "1").iterdir()) == []


def test_published_folder_is_readable_by_others(repository: Path) -> None:
    _, path = _publish_one(repository, "mf")
    assert path.stat().st_mode & 0o055 == 0o055
