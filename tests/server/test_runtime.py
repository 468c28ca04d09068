"""Runtimes: what really runs is reported, and a silent fall back from CUDA to the CPU is not silent."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from protos.recsys.v1 import model_config_pb2 as mc
from server.errors import ModelLoadError
from server.repository import VersionFolder, artifact_files, read_config
from server.runtime import SignatureSpec, load_runtime, onnx
from server.signatures import served_signatures


@pytest.fixture(scope="module")
def mf_version(tiny_repository):
    folder = VersionFolder("mf", 1, tiny_repository / "mf" / "1", (0, 0))
    config = read_config(folder)
    specs = [SignatureSpec(s.name, s.inputs, s.output) for s in served_signatures(config)]
    return folder, config, specs


def inputs(signature: str) -> tuple[np.ndarray, ...]:
    users = np.array([0, 1, 2], dtype=np.int64)
    return (users, users) if signature == "predict" else (users,)


def test_both_backends_give_the_same_answers(mf_version):
    folder, config, specs = mf_version
    runtimes = [
        load_runtime(b, artifact_files(config, folder.path, b), specs, device="cpu", intra_op_threads=1)
        for b in ("onnx", "torchscript")
    ]
    assert runtimes[0].providers == ["CPUExecutionProvider"] and runtimes[1].providers == ["cpu"]
    for signature in ("predict", "recommend"):
        a, b = (r.run(signature, inputs(signature)) for r in runtimes)
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_cuda_that_does_not_load_is_a_warning_on_auto_and_an_error_on_cuda(mf_version, monkeypatch, caplog):
    folder, config, specs = mf_version
    files = artifact_files(config, folder.path, "onnx")
    monkeypatch.setattr(onnx, "wants_cuda", lambda device: device != "cpu")
    monkeypatch.setattr(onnx.ort, "get_available_providers", lambda: [onnx.CUDA, onnx.CPU])
    monkeypatch.setattr(onnx.ort, "preload_dlls", lambda: None, raising=False)
    real_session = onnx.ort.InferenceSession
    monkeypatch.setattr(
        onnx.ort, "InferenceSession", lambda path, **kw: real_session(path, **{**kw, "providers": [onnx.CPU]})
    )
    with caplog.at_level(logging.WARNING, logger="server.runtime.onnx"):
        runtime = onnx.OnnxRuntime(files, specs, device="auto", intra_op_threads=1)
    assert runtime.providers == ["CPUExecutionProvider"]
    assert "could not load CUDAExecutionProvider" in caplog.text and "serving on the CPU" in caplog.text
    with pytest.raises(ModelLoadError, match="device 'cuda' requested but onnxruntime could not load"):
        onnx.OnnxRuntime(files, specs, device="cuda", intra_op_threads=1)


def test_torchscript_refuses_cuda_without_a_gpu(mf_version, monkeypatch):
    import torch

    folder, config, specs = mf_version
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    files = artifact_files(config, folder.path, "torchscript")
    with pytest.raises(ModelLoadError, match=r"torch\.cuda\.is_available"):
        load_runtime("torchscript", files, specs, device="cuda", intra_op_threads=1)


def test_missing_format_and_wrong_inputs_are_load_errors(mf_version):
    folder, config, _ = mf_version
    onnx_only = mc.ModelConfig()
    onnx_only.CopyFrom(config)
    del onnx_only.artifacts[:]
    onnx_only.artifacts.extend(a for a in config.artifacts if a.format == mc.ARTIFACT_FORMAT_ONNX)
    with pytest.raises(ModelLoadError, match=r"no torchscript artifact serves.*--backend onnx"):
        artifact_files(onnx_only, folder.path, "torchscript")
    unknown_input = mc.ModelConfig()
    unknown_input.CopyFrom(config)
    unknown_input.signatures[0].inputs[0].name = "user_age"
    unknown_input.signatures[0].inputs[0].kind = mc.TENSOR_KIND_UNSPECIFIED
    with pytest.raises(
        ModelLoadError, match=r"signature 'predict' has inputs \['user_age', 'item'\].*unknown: \['user_age'\]"
    ):
        served_signatures(unknown_input)
