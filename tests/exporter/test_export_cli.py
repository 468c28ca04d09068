from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from exporter.cli import build_parser, main, retrieval_options


def _run_with(tmp_path: Path, tiny_run: Path, make: Callable[[Path], None]) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "mf").mkdir(parents=True)
    make(run_dir / "mf" / "checkpoint.pt")
    return run_dir


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0]


def _no_model_folders(repository: Path) -> bool:
    return not repository.exists()  # not even an empty repository folder is created on bad input


def test_cli_exports_and_reports_files_opset_and_parity(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "repo"
    code = main(["--run", str(tiny_run), "--model", "mf,gcn", "--repository", str(repository)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"wrote mf version 1 at {repository.absolute() / 'mf' / '1'}" in out
    assert "wrote gcn version 1" in out
    assert out.count("onnx opset: 17") == 2
    assert "predict.onnx, recommend.onnx, model.pt + 9 side files" in out
    for label in ("onnx        predict", "onnx        recommend", "torchscript predict", "torchscript recommend"):
        assert label in out
    assert out.count("parity over 12 checks") == 2  # 2 formats x 2 signatures x 3 batch sizes
    assert sorted(p.name for p in repository.iterdir()) == ["gcn", "mf"]


def test_cli_name_and_formats(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repo"
    argv = ["--run", str(tiny_run), "--model", "gcn", "--repository", str(repository), "--formats", "onnx"]
    assert main([*argv, "--name", "gcn-onnx"]) == 0
    out = capsys.readouterr().out
    assert "wrote gcn-onnx version 1" in out and "model.pt" not in out
    assert sorted(p.name for p in (repository / "gcn-onnx" / "1").glob("*.onnx")) == ["predict.onnx", "recommend.onnx"]


def _corrupt(path: Path) -> None:
    path.write_bytes(b"this is not a torch checkpoint")


def _truncated(tiny_run: Path) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = (tiny_run / "mf" / "checkpoint.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return make


def _unknown_architecture(tiny_run: Path) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        payload = torch.load(tiny_run / "mf" / "checkpoint.pt", weights_only=True)
        payload["architecture"] = "xgboost"
        torch.save(payload, path)

    return make


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("corrupt", ("checkpoint", "corrupt")),
        ("truncated", ("checkpoint", "corrupt")),
        ("unknown_architecture", ("unknown architecture", "xgboost")),
    ],
)
def test_bad_checkpoints_fail_with_one_line_and_exit_2(
    case: str, fragments: tuple[str, ...], tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make = {
        "corrupt": _corrupt,
        "truncated": _truncated(tiny_run),
        "unknown_architecture": _unknown_architecture(tiny_run),
    }
    run_dir = _run_with(tmp_path, tiny_run, make[case])
    repository = tmp_path / "repo"
    assert main(["--run", str(run_dir), "--model", "mf", "--repository", str(repository)]) == 2
    _assert_one_line_error(capsys, str(run_dir / "mf" / "checkpoint.pt"), *fragments)
    assert _no_model_folders(repository)


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    repository = tmp_path / "repo"
    assert main(["--run", str(tmp_path / "run"), "--model", "mf", "--repository", str(repository)]) == 2
    _assert_one_line_error(capsys, "checkpoint", "not found")
    assert _no_model_folders(repository)


def test_all_with_an_empty_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    assert main(["--run", str(tmp_path / "run"), "--repository", str(tmp_path / "repo")]) == 2
    _assert_one_line_error(capsys, "no checkpoints", "train first")


def test_one_bad_checkpoint_stops_the_whole_run_before_any_export(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run / "mf", run_dir / "mf")
    (run_dir / "lstm").mkdir()
    _corrupt(run_dir / "lstm" / "checkpoint.pt")
    repository = tmp_path / "repo"
    assert main(["--run", str(run_dir), "--repository", str(repository)]) == 2
    _assert_one_line_error(capsys, "lstm", "corrupt")
    assert _no_model_folders(repository)


def test_repository_that_is_a_file(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repo"
    repository.write_text("keep me")
    assert main(["--run", str(tiny_run), "--model", "mf", "--repository", str(repository)]) == 2
    _assert_one_line_error(capsys, "is a file")
    assert repository.read_text() == "keep me"


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "mf/../../x", "a..b"])
def test_unsafe_model_names(name: str, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repo"
    assert main(["--run", str(tiny_run), "--model", "mf", "--repository", str(repository), "--name", name]) == 2
    _assert_one_line_error(capsys, "invalid model name")
    assert _no_model_folders(repository)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created beside the repository either


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--model", "svd"], "unknown models ['svd']"),
        (["--formats", "onnx,tflite"], "unknown or missing formats ['tflite']"),
        (["--name", "solo"], "needs exactly one model"),
    ],
)
def test_bad_options(
    extra: list[str], fragment: str, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--run", str(tiny_run), "--repository", str(tmp_path / "repo"), *extra]) == 2
    _assert_one_line_error(capsys, fragment)
    assert _no_model_folders(tmp_path / "repo")


def test_missing_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--run", str(tmp_path / "nope"), "--repository", str(tmp_path / "repo")]) == 2
    _assert_one_line_error(capsys, "run folder", "not found")


def test_missing_required_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--repository", "repo"])
    assert exit_info.value.code == 2
    assert "--run" in capsys.readouterr().err


def test_retrieval_flags_reach_the_options() -> None:
    args = build_parser().parse_args(
        [
            "--run",
            "runs/latest",
            "--repository",
            "models",
            "--retrieval-min-items",
            "10",
            "--retrieval-recall-target",
            "0.99",
            "--retrieval-recall-floor",
            "0.5",
        ]
    )
    options = retrieval_options(args)
    assert (options.min_items, options.recall_target, options.recall_floor, options.required) == (10, 0.99, 0.5, True)
    defaults = retrieval_options(build_parser().parse_args(["--run", "runs/latest", "--repository", "models"]))
    assert (defaults.recall_target, defaults.required) == (0.95, False)
