from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter.errors import ExportError
from exporter.inputs import ModelShape, random_inputs
from exporter.onnx_export import export_onnx, verify_onnx
from exporter.signatures import build_signatures
from trainer import Checkpoint, load_checkpoint
from trainer.architecture import get as declared
from trainer.data.interactions import UserHistories

LSTM = declared("lstm")


def _histories(checkpoint: Checkpoint) -> UserHistories:
    return UserHistories(checkpoint.history_offsets, checkpoint.history_items, checkpoint.history_ratings)


def _serving(checkpoint: Checkpoint) -> torch.nn.Module:
    return checkpoint.model.serving_module(_histories(checkpoint))


@pytest.fixture(scope="module")
def lstm(tiny_run: Path) -> tuple[Checkpoint, ModelShape]:
    checkpoint = load_checkpoint(tiny_run / "lstm" / "checkpoint.pt")
    model = checkpoint.model
    shape = ModelShape("lstm", len(checkpoint.user_ids), model.num_items, 1.0, 5.0, model.max_history_length)
    return checkpoint, shape


def _dims(path: Path, name: str) -> list[str | int]:
    value = next(v for v in onnx.load(str(path)).graph.input if v.name == name)
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_lstm_exported_repeatedly_in_one_process_keeps_t_symbolic(
    lstm: tuple[Checkpoint, ModelShape], tmp_path: Path
) -> None:
    # The trap: with torch.export-based ONNX export, the second LSTM export in a process froze T.
    checkpoint, shape = lstm
    histories = _histories(checkpoint)
    serving = _serving(checkpoint)
    generator = torch.Generator().manual_seed(0)
    signatures = {s.name: s for s in build_signatures(LSTM, shape.num_items)}
    for round_, (name, example_t) in enumerate([("predict", 4), ("recommend", 7), ("predict", 3), ("recommend", 2)]):
        declaration = LSTM.signature(name)
        path = tmp_path / f"{round_}-{name}.onnx"
        export_onnx(serving, signatures[name], random_inputs(shape, declaration, 3, example_t, generator), path)
        assert _dims(path, "history_items") == ["batch", "history_length"], f"export {round_} froze a dim"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch, length in [(1, 1), (5, shape.max_history_length)]:
            inputs = random_inputs(shape, declaration, batch, length, generator)
            got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
            expected = declaration.eager(checkpoint.model, inputs, histories).numpy()
            assert got.shape == expected.shape == ((batch,) if name == "predict" else (batch, shape.num_items))
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_leaves_the_serving_module_in_eval_mode(lstm: tuple[Checkpoint, ModelShape], tmp_path: Path) -> None:
    # Regression: the recommend wrapper restored training mode recursively, turning dropout on.
    checkpoint, shape = lstm
    serving = _serving(checkpoint)
    signature = build_signatures(LSTM, shape.num_items)[1]
    assert signature.name == "recommend"
    inputs = random_inputs(shape, LSTM.signature("recommend"), 4, 5, torch.Generator().manual_seed(0))
    export_onnx(serving, signature, inputs, tmp_path / "recommend.onnx")
    assert not any(module.training for module in serving.modules())
    torch.testing.assert_close(serving.recommend(*inputs.values()), checkpoint.model.recommend(*inputs.values()))


def _plain_export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path, **kwargs: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, **kwargs)


def test_verify_rejects_a_batch_dim_that_came_out_fixed(tiny_run: Path, tmp_path: Path) -> None:
    serving = _serving(load_checkpoint(tiny_run / "mf" / "checkpoint.pt"))
    path = tmp_path / "predict.onnx"
    _plain_export(
        serving,
        (torch.tensor([0, 1]), torch.tensor([2, 3])),
        path,
        input_names=["user", "item"],
        output_names=["rating"],
    )
    with pytest.raises(ExportError, match=r"predict.onnx: user dim 0 came out fixed at 2"):
        verify_onnx(path, build_signatures(declared("mf"), 10)[0])


def test_verify_rejects_misnamed_inputs(tiny_run: Path, tmp_path: Path) -> None:
    serving = _serving(load_checkpoint(tiny_run / "mf" / "checkpoint.pt"))
    path = tmp_path / "predict.onnx"
    _plain_export(serving, (torch.tensor([0, 1]), torch.tensor([2, 3])), path, input_names=["u", "i"])
    with pytest.raises(ExportError, match=r"inputs are \['u', 'i'\], expected \['user', 'item'\]"):
        verify_onnx(path, build_signatures(declared("mf"), 10)[0])


def test_verify_rejects_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "predict.onnx"
    path.write_bytes(b"\x00not a model")
    with pytest.raises(ExportError, match=r"predict\.onnx: onnx\.checker failed"):
        verify_onnx(path, build_signatures(declared("mf"), 10)[0])
