from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter import ExportResult, ParityError, export_checkpoint, read_config
from exporter.files import sha256_file
from exporter.parity import top_k_mismatches
from exporter.repository import list_versions
from protos.recsys.v1 import model_config_pb2 as pb
from trainer import load_checkpoint
from trainer.architecture import BUILT_IN as ARCHITECTURES
from trainer.architecture import get as declared
from trainer.data.interactions import UserHistories

EXPECTED_FILES = {
    "config.json",
    "predict.onnx",
    "recommend.onnx",
    "model.pt",
    "user_ids.npy",
    "item_ids.npy",
    "item_popularity.npy",
    "history_offsets.npy",
    "history_items.npy",
    "history_ratings.npy",
    "ranking_user_vectors.npy",
    "ranking_item_vectors.npy",
    "ranking_item_bias.npy",
}
USER_SIGNATURES = ["predict_user", "recommend_user"]  # the LSTM's, over stored histories encoded at export


def _signatures(architecture: str) -> list[str]:
    return ["predict", "recommend", *(USER_SIGNATURES if architecture == "lstm" else [])]


def _expected_files(architecture: str) -> set[str]:
    return EXPECTED_FILES | {f"{name}.onnx" for name in _signatures(architecture)}


def _checkpoint(tiny_run: Path, architecture: str) -> Path:
    return tiny_run / architecture / "checkpoint.pt"


def _load_jit(path: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path), map_location="cpu")


def _side_histories(folder: Path) -> UserHistories:
    """The stored histories as a server reads them: from the version's side files alone."""
    arrays = [np.load(folder / f"history_{name}.npy", allow_pickle=False) for name in ("offsets", "items", "ratings")]
    return UserHistories(*arrays)


def _real_inputs(folder: Path, config: pb.ModelConfig, signature: str, rows: int) -> dict[str, np.ndarray]:
    """Inputs a server would build from the side files alone: users with a stored history, and their latest events."""
    rng = np.random.default_rng(1)
    histories = _side_histories(folder)
    users = rng.choice(np.flatnonzero(histories.lengths() > 0), rows)
    inputs: dict[str, np.ndarray] = {}
    if config.architecture == pb.ARCHITECTURE_LSTM:
        offsets, items, ratings = histories.offsets, histories.items, histories.ratings
        starts = np.maximum(offsets[users], offsets[users + 1] - config.max_history_length)
        lengths = offsets[users + 1] - starts
        width = int(lengths.max())
        batch_items = np.zeros((len(users), width), np.int64)
        batch_ratings = np.zeros((len(users), width), np.float32)
        for row, (start, length) in enumerate(zip(starts, lengths, strict=True)):
            batch_items[row, :length] = items[start : start + length]
            batch_ratings[row, :length] = ratings[start : start + length]
        inputs.update(history_items=batch_items, history_ratings=batch_ratings, lengths=lengths.astype(np.int64))
    else:
        inputs["user"] = users.astype(np.int64)
    if signature == "predict":
        inputs["item"] = rng.integers(0, config.num_items, len(users)).astype(np.int64)
    return inputs


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_version_folder_holds_the_contract(
    architecture: str, exported: dict[str, ExportResult], tiny_run: Path
) -> None:
    result = exported[architecture]
    checkpoint = load_checkpoint(_checkpoint(tiny_run, architecture))
    config = read_config(result.path)
    assert config == result.config
    assert result.path == result.path.parent.parent / architecture / "1"
    assert {p.name for p in result.path.iterdir()} == _expected_files(architecture)
    assert (config.name, config.version) == (architecture, 1)
    assert pb.Architecture.Name(config.architecture) == f"ARCHITECTURE_{architecture.upper()}"
    assert (config.num_users, config.num_items) == (len(checkpoint.user_ids), len(checkpoint.item_ids))
    assert [config.rating_scale.min, config.rating_scale.max] == checkpoint.rating_scale
    assert config.max_history_length == (checkpoint.hparams["max_history_length"] if architecture == "lstm" else 0)
    assert config.source_checkpoint_sha256 == checkpoint.sha256
    assert dict(config.training_metrics) == pytest.approx(checkpoint.metrics)
    assert dict(config.hyperparameters) == {k: str(v) for k, v in checkpoint.hparams.items()}
    assert config.created_at.endswith("Z") and config.exporter_version
    assert [s.name for s in config.signatures] == _signatures(architecture)
    assert list(config.signatures[1].outputs[0].shape) == [-1, config.num_items]
    for signature in config.signatures[2:]:
        assert [spec.name for spec in signature.inputs] == (
            ["user", "item"] if "predict" in signature.name else ["user"]
        )
    for entry in [*config.artifacts, *config.side_files]:
        assert sha256_file(result.path / entry.path) == entry.sha256
    formats = {pb.ArtifactFormat.Name(a.format): (a.path, list(a.signatures)) for a in config.artifacts}
    assert formats["ARTIFACT_FORMAT_TORCHSCRIPT"] == ("model.pt", _signatures(architecture))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_side_files_load_without_pickle_and_match_the_checkpoint(
    architecture: str, exported: dict[str, ExportResult], tiny_run: Path
) -> None:
    checkpoint = load_checkpoint(_checkpoint(tiny_run, architecture))
    folder = exported[architecture].path
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ("user_ids", "item_ids")}
    assert arrays["user_ids"].dtype.kind == "U" and arrays["item_ids"].dtype.kind == "U"
    assert arrays["user_ids"].tolist() == checkpoint.user_ids
    assert arrays["item_ids"].tolist() == checkpoint.item_ids
    for name, dtype in [
        ("item_popularity", np.float32),
        ("history_offsets", np.int64),
        ("history_items", np.int64),
        ("history_ratings", np.float32),
    ]:
        array = np.load(folder / f"{name}.npy", allow_pickle=False)
        assert array.dtype == dtype
        np.testing.assert_array_equal(array, getattr(checkpoint, name))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_saved_onnx_files_have_symbolic_batch_and_history_dims(
    architecture: str, exported: dict[str, ExportResult]
) -> None:
    result = exported[architecture]
    for artifact in result.config.artifacts:
        if artifact.format != pb.ARTIFACT_FORMAT_ONNX:
            continue
        model = onnx.load(str(result.path / artifact.path))
        onnx.checker.check_model(model)
        assert artifact.onnx_opset == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        assert not [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        for value in [*model.graph.input, *model.graph.output]:
            dims = value.type.tensor_type.shape.dim
            assert dims[0].dim_param, f"{artifact.path}: {value.name} batch dim is fixed"
            if value.name in ("history_items", "history_ratings"):
                assert dims[1].dim_param, f"{artifact.path}: {value.name} history dim is fixed"
            if value.name == "scores":
                assert dims[1].dim_value == result.config.num_items


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_round_trip_from_files_alone_matches_eager(
    architecture: str, exported: dict[str, ExportResult], tiny_run: Path
) -> None:
    result = exported[architecture]
    model = load_checkpoint(_checkpoint(tiny_run, architecture)).model
    histories = _side_histories(result.path)
    scripted = _load_jit(result.path / "model.pt")
    for signature in ("predict", "recommend"):
        declaration = declared(architecture).signature(signature)
        session = ort.InferenceSession(str(result.path / f"{signature}.onnx"), providers=["CPUExecutionProvider"])
        inputs = _real_inputs(result.path, result.config, signature, rows=33)
        tensors = {name: torch.from_numpy(array) for name, array in inputs.items()}
        with torch.no_grad():
            eager = declaration.eager(model, tensors, histories).numpy()
            jit = (scripted.forward if signature == "predict" else scripted.recommend)(*tensors.values()).numpy()
        onnx_out = session.run(None, inputs)[0]
        assert eager.shape == ((33,) if signature == "predict" else (33, model.num_items))
        np.testing.assert_allclose(onnx_out, eager, atol=1e-4, rtol=0)
        np.testing.assert_allclose(jit, eager, atol=1e-4, rtol=0)
        if signature == "predict":
            assert eager.min() >= result.config.rating_scale.min and eager.max() <= result.config.rating_scale.max
        else:  # ranking scores: only the order counts, so compare it too
            assert top_k_mismatches(onnx_out, eager, 10, 1e-4) == top_k_mismatches(jit, eager, 10, 1e-4) == 0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parity_figures_cover_every_artifact_batch_and_length(
    architecture: str, exported: dict[str, ExportResult]
) -> None:
    parity = exported[architecture].parity
    lengths = {1, 5, 50} if architecture == "lstm" else {0}
    expected = {
        (fmt, sig, batch, length)
        for fmt in (pb.ARTIFACT_FORMAT_ONNX, pb.ARTIFACT_FORMAT_TORCHSCRIPT)
        for sig in ("predict", "recommend")
        for batch in (1, 7, 256)
        for length in lengths
    }
    if architecture == "lstm":  # stored histories: the first user has the longest, cut to 50 (tiny data: 137)
        expected |= {
            (fmt, sig, batch, 50)
            for fmt in (pb.ARTIFACT_FORMAT_ONNX, pb.ARTIFACT_FORMAT_TORCHSCRIPT)
            for sig in USER_SIGNATURES
            for batch in (1, 7, 256)
        }
    seen = {(c.format, c.signature, c.batch_size, c.history_length) for c in parity.checks}
    assert seen == expected and len(parity.checks) == len(expected)
    assert parity.tolerance == 1e-4
    assert parity.max_abs_diff == max(c.max_abs_diff for c in parity.checks) <= 1e-4


def test_gcn_export_matches_the_propagating_model(exported: dict[str, ExportResult], tiny_run: Path) -> None:
    checkpoint = load_checkpoint(_checkpoint(tiny_run, "gcn"))
    model = checkpoint.model
    users = torch.arange(model.num_users)
    items = torch.randint(0, model.num_items, (model.num_users,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        propagated = model.clip(model(users, items)).numpy()  # LGConv over the adjacency, eval mode
        histories = UserHistories(checkpoint.history_offsets, checkpoint.history_items, checkpoint.history_ratings)
        ranked = model.rank(users, histories).numpy()  # LightGCN propagation over the same graph
    folder = exported["gcn"].path
    session = ort.InferenceSession(str(folder / "predict.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"user": users.numpy(), "item": items.numpy()})[0]
    np.testing.assert_allclose(got, propagated, atol=1e-4, rtol=0)
    session = ort.InferenceSession(str(folder / "recommend.onnx"), providers=["CPUExecutionProvider"])
    scores = session.run(None, {"user": users.numpy()})[0]
    np.testing.assert_allclose(scores, ranked, atol=1e-4, rtol=0)


def test_gcn_artifacts_run_without_torch_geometric(exported: dict[str, ExportResult]) -> None:
    folder = exported["gcn"].path
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch_geometric"] = None  # any import of it now fails
        import numpy as np, onnxruntime as ort, torch
        folder = {str(folder)!r}
        users = np.arange(5, dtype=np.int64)
        onnx_scores = ort.InferenceSession(folder + "/recommend.onnx", providers=["CPUExecutionProvider"]).run(
            None, {{"user": users}})[0]
        jit_scores = torch.jit.load(folder + "/model.pt").recommend(torch.from_numpy(users)).numpy()
        assert onnx_scores.shape == jit_scores.shape, (onnx_scores.shape, jit_scores.shape)
        assert np.abs(onnx_scores - jit_scores).max() <= 1e-4
        assert not any(name.startswith(("torch_geometric", "trainer")) for name in sys.modules if sys.modules[name])
        print("ok", onnx_scores.shape)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok (5, ")


def test_reexport_takes_the_next_version(tiny_run: Path, repository: Path) -> None:
    first = export_checkpoint(_checkpoint(tiny_run, "mf"), repository, formats=("onnx",))
    second = export_checkpoint(_checkpoint(tiny_run, "mf"), repository, formats=("onnx",))
    named = export_checkpoint(_checkpoint(tiny_run, "mf"), repository, name="mf-prod", formats=("torchscript",))
    assert (first.version, second.version, named.version) == (1, 2, 1)
    assert read_config(second.path).version == 2 and second.path.name == "2"
    assert list_versions(repository / "mf") == [1, 2]
    assert named.path == repository / "mf-prod" / "1" and named.config.name == "mf-prod"
    assert {p.name for p in first.path.iterdir()} == EXPECTED_FILES - {"model.pt"}
    assert {p.name for p in named.path.iterdir()} == EXPECTED_FILES - {"predict.onnx", "recommend.onnx"}
    assert {c.format for c in named.parity.checks} == {pb.ARTIFACT_FORMAT_TORCHSCRIPT}


def _no_trace_of_an_export(repository: Path) -> bool:
    leftovers = [p for p in repository.iterdir() if p.name.startswith(".tmp-")]
    versions = [v for model in repository.iterdir() if model.is_dir() for v in list_versions(model)]
    return not leftovers and not versions


def test_a_crash_mid_export_leaves_no_version_folder(
    tiny_run: Path, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def crash(*args: object, **kwargs: object) -> None:
        staging = [p for p in repository.iterdir() if p.name.startswith(".tmp-lstm-")]
        seen["staged"] = sorted(p.name for p in staging[0].iterdir()) if staging else []
        seen["versions"] = list_versions(repository / "lstm")
        raise RuntimeError("simulated crash during parity")

    monkeypatch.setattr("exporter.export.check_parity", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_checkpoint(_checkpoint(tiny_run, "lstm"), repository)
    assert "predict.onnx" in seen["staged"] and "model.pt" in seen["staged"]  # the crash came mid-export...
    assert seen["versions"] == []  # ...while no version folder existed...
    assert _no_trace_of_an_export(repository)  # ...and none appeared, nor any staging leftovers


def test_parity_beyond_tolerance_fails_and_leaves_nothing(
    tiny_run: Path, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exporter.artifacts

    real_runner = exporter.artifacts.onnx_runner

    def drifting_runner(path: Path):  # an artifact that is off by 2e-4 stars
        run = real_runner(path)
        return lambda inputs: run(inputs) + np.float32(2e-4)

    monkeypatch.setattr(exporter.artifacts, "onnx_runner", drifting_runner)
    with pytest.raises(
        ParityError,
        match=r"parity failed: onnx .* differs from the eager model by 0\.0002\d* > tolerance 0\.0001",
    ):
        export_checkpoint(_checkpoint(tiny_run, "dense"), repository)
    assert _no_trace_of_an_export(repository)
