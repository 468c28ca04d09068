import json

import pytest
from PIL import Image

from loadtest.cli import main


@pytest.mark.parametrize("method", ["predict", "recommend"])
def test_cli_writes_table_json_and_plot(fake_server, tmp_path, capsys, method):
    server = fake_server()
    out_json, out_png = tmp_path / "out" / "result.json", tmp_path / "out" / "sweep.png"
    status = main(
        [
            "--target", server.target, "--model", "fake", "--method", method, "--concurrency", "1,4",
            "--requests", "40", "--warmup", "0.1", "--k", "5", "--json", str(out_json), "--plot", str(out_png),
            "--quiet",
        ]
    )  # fmt: skip
    assert status == 0
    table = capsys.readouterr().out
    assert "| fake | c=1 |" in table and "| fake | c=4 |" in table
    data = json.loads(out_json.read_text())
    assert [s["concurrency"] for s in data["steps"]] == [1, 4]
    assert all(s["calls"] == 40 and s["latency"]["p99_ms"] > 0 for s in data["steps"])
    assert data["server"]["backend"] == "fake" and data["config"]["workload"]["method"] == method
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_cli_exit_status_reports_failed_calls(fake_server, capsys):
    # Discovering the ids takes two calls (OK, OK); the eight measured calls then alternate two by two.
    server = fake_server(fail_codes=("OK", "OK", "UNAVAILABLE", "UNAVAILABLE"))
    args = ["--target", server.target, "--model", "fake", "--concurrency", "2", "--requests", "8", "--warmup", "0"]
    assert main([*args, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "UNAVAILABLE:4" in out and "4 calls failed" in out


def test_cli_explains_an_unknown_model(fake_server, capsys):
    server = fake_server()
    assert main(["--target", server.target, "--model", "nope", "--requests", "5", "--quiet"]) == 2
    assert "NOT_FOUND" in capsys.readouterr().err


def test_cli_sends_the_bearer_token_from_a_file(fake_server, tmp_path, capsys):
    server = fake_server(token="s3cret-token")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    args = ["--target", server.target, "--model", "fake", "--concurrency", "2", "--requests", "6", "--quiet"]
    assert main([*args, "--token-file", str(token_file)]) == 0
    assert "| fake | c=2 | " in capsys.readouterr().out
    assert main(args) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
