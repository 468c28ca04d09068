"""What an export says about its ranking heads: tensor kinds in config.json, top-10 parity, stored-history ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporter import ExportResult, ParityError, export_checkpoint
from exporter.parity import TOP_K, top_k_mismatches
from protos.recsys.v1 import model_config_pb2 as pb
from protos.tensors import SCORE_KINDS
from trainer import load_checkpoint
from trainer.architecture import BUILT_IN as ARCHITECTURES
from trainer.architecture import get as declared
from trainer.data.interactions import UserHistories
from trainer.models.mf import MatrixFactorization

USER, ITEM = pb.TENSOR_KIND_USER_INDEX, pb.TENSOR_KIND_ITEM_INDEX
HISTORY = (pb.TENSOR_KIND_HISTORY_ITEMS, pb.TENSOR_KIND_HISTORY_RATINGS, pb.TENSOR_KIND_HISTORY_LENGTHS)
RATING, RANKING = pb.TENSOR_KIND_RATING, pb.TENSOR_KIND_RANKING_SCORES

# name -> (input kinds, output kind, reads_stored_history), written out here rather than read from the
# declarations, so that a declaration that drifts from the contract fails too.
_USER_INDEX = {"predict": ((USER, ITEM), RATING, False), "recommend": ((USER,), RANKING, False)}
EXPECTED_SIGNATURES = {
    "mf": _USER_INDEX,
    "dense": {**_USER_INDEX, "recommend": ((USER,), RANKING, True)},
    "lstm": {
        "predict": ((*HISTORY, ITEM), RATING, False),
        "recommend": (HISTORY, RANKING, False),
        "predict_user": ((USER, ITEM), RATING, True),
        "recommend_user": ((USER,), RANKING, True),
    },
    "gcn": _USER_INDEX,
}


def _side_histories(folder: Path) -> UserHistories:
    arrays = [np.load(folder / f"history_{name}.npy", allow_pickle=False) for name in ("offsets", "items", "ratings")]
    return UserHistories(*arrays)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_config_json_records_every_tensors_kind(architecture: str, exported: dict[str, ExportResult]) -> None:
    result = exported[architecture]
    declaration = declared(architecture)
    raw = json.loads((result.path / "config.json").read_text(encoding="utf-8"))
    assert raw["architecture_name"] == result.config.architecture_name == architecture
    expected = EXPECTED_SIGNATURES[architecture]
    assert [s.name for s in result.config.signatures] == list(expected) == [s.name for s in declaration.signatures]
    for signature, written in zip(result.config.signatures, raw["signatures"], strict=True):
        inputs, output, stored = expected[signature.name]
        declared_signature = declaration.signature(signature.name)
        assert (declared_signature.inputs, declared_signature.output) == (inputs, output)
        assert declared_signature.reads_stored_history is stored
        assert tuple(spec.kind for spec in signature.inputs) == inputs
        assert [spec.kind for spec in signature.outputs] == [output]
        assert signature.reads_stored_history is stored
        # in the file itself, by enum name, next to each tensor's name
        assert [spec["kind"] for spec in written["inputs"]] == [pb.TensorKind.Name(kind) for kind in inputs]
        assert [spec["kind"] for spec in written["outputs"]] == [pb.TensorKind.Name(output)]
        assert written["reads_stored_history"] is stored
        assert "TENSOR_KIND_UNSPECIFIED" not in {spec["kind"] for spec in written["inputs"] + written["outputs"]}
        assert written["outputs"][0]["kind"] == (
            "TENSOR_KIND_RANKING_SCORES" if signature.name.startswith("recommend") else "TENSOR_KIND_RATING"
        )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parity_compared_the_top_10_of_every_ranking_output(
    architecture: str, exported: dict[str, ExportResult]
) -> None:
    result = exported[architecture]
    outputs = {s.name: s.outputs[0].kind for s in result.config.signatures}
    ranked = {name for name, kind in outputs.items() if kind in SCORE_KINDS}
    assert ranked == {name for name in outputs if name.startswith("recommend")}
    for check in result.parity.checks:
        if check.signature in ranked:
            assert (check.top_k, check.top_k_mismatched_rows) == (min(TOP_K, result.config.num_items), 0), check
        else:
            assert (check.top_k, check.top_k_mismatched_rows) == (0, 0), check
    covered = {(c.format, c.signature) for c in result.parity.checks if c.top_k}
    assert covered == {(a.format, name) for a in result.config.artifacts for name in a.signatures if name in ranked}


def test_an_export_whose_ranking_table_is_permuted_fails_parity(
    tiny_run: Path, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exporter.parity

    serving_module = MatrixFactorization.serving_module

    def permuted(self, histories):  # item i gets item i + 1's ranking vector and bias; ratings untouched
        serving = serving_module(self, histories)
        table = serving.ranking
        table.item_vectors.copy_(table.item_vectors.roll(1, dims=0))
        table.item_bias.copy_(table.item_bias.roll(1, dims=0))
        return serving

    recorded: list[pb.Parity] = []
    raise_on_failure = exporter.parity._raise_on_failure

    def record(parity: pb.Parity, tolerance: float) -> None:
        recorded.append(parity)
        raise_on_failure(parity, tolerance)

    monkeypatch.setattr(MatrixFactorization, "serving_module", permuted)
    monkeypatch.setattr(exporter.parity, "_raise_on_failure", record)
    with pytest.raises(ParityError, match=r"parity failed: \w+ recommend at batch"):
        export_checkpoint(tiny_run / "mf" / "checkpoint.pt", repository)
    assert not [p for p in repository.rglob("*") if p.name != ".lock"], "nothing published"
    (parity,) = recorded
    recommend = [c for c in parity.checks if c.signature == "recommend"]
    assert len(recommend) == 6 and all(c.top_k == TOP_K and c.top_k_mismatched_rows > 0 for c in recommend)
    predict = [c for c in parity.checks if c.signature == "predict"]
    assert len(predict) == 6 and all(c.max_abs_diff <= 1e-4 and not c.top_k for c in predict), "ratings untouched"


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_dense_recommend_equals_eager_rank_on_the_stored_histories(
    backend: str, exported: dict[str, ExportResult], tiny_run: Path
) -> None:
    result = exported["dense"]
    assert next(s for s in result.config.signatures if s.name == "recommend").reads_stored_history
    model = load_checkpoint(tiny_run / "dense" / "checkpoint.pt").model
    histories = _side_histories(result.path)
    users = np.flatnonzero(histories.lengths() > 0)
    assert len(users) > 100
    if backend == "onnx":
        session = ort.InferenceSession(str(result.path / "recommend.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {"user": users})[0]
    else:
        got = torch.jit.load(str(result.path / "model.pt")).recommend(torch.from_numpy(users)).numpy()
    eager = model.rank(users, histories).numpy()
    assert got.shape == eager.shape == (len(users), result.config.num_items)
    np.testing.assert_allclose(got, eager, atol=1e-4, rtol=0)
    assert top_k_mismatches(got, eager, TOP_K, 1e-4) == 0

    # The scores are those of the stored histories: give one user another history and only its row moves.
    row = int(np.argmax(histories.lengths()[users]))
    start, end = histories.offsets[users[row]], histories.offsets[users[row] + 1]
    items = histories.items.copy()
    items[start:end] = (items[start:end] + 1) % result.config.num_items
    moved = model.rank(users, UserHistories(histories.offsets, items, histories.ratings)).numpy()
    assert np.abs(moved[row] - got[row]).max() > 1e-2
    np.testing.assert_allclose(np.delete(moved, row, axis=0), np.delete(got, row, axis=0), atol=1e-4, rtol=0)
