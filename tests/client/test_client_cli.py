"""``python -m client``: the main job's last step prints what the served model says about a user."""

from __future__ import annotations

import pytest

from client.cli import main

ONNX = pytest.mark.parametrize("served", ["onnx"], indirect=True)


@ONNX
def test_prints_recommendations_and_predictions(served, capsys):
    assert main(["--target", served.target, "--model", "dense", "--user", "u3", "--k", "4"]) == 0
    out = capsys.readouterr().out
    assert "model 'dense' v1: onnx on CPUExecutionProvider" in out
    assert "top 4 items for user u3 (seen items excluded)" in out
    assert out.count(" stars") == 3


@ONNX
def test_server_errors_exit_one_with_the_message(served, capsys):
    assert main(["--target", served.target, "--model", "mf", "--user", "u3", "--items", "nope"]) == 1
    assert "INVALID_ARGUMENT: unknown item ids ['nope']" in capsys.readouterr().err
