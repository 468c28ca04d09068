"""Command line and config: env vars mirror flags, flags win, bad values say what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main, parse_config
from server.config import ConfigError, ServerConfig

ROOT = Path(__file__).resolve().parents[2]


def test_flags_set_the_config():
    argv = ["--repository", "/r", "--port", "0", "--backend", "torchscript", "--max-batch-size", "8"]
    config, level = parse_config([*argv, "--reflection", "no"], environ={})
    expected = ServerConfig(repository=Path("/r"), port=0, backend="torchscript", max_batch_size=8, reflection=False)
    assert config == expected
    assert level == "INFO"


def test_environment_mirrors_every_flag_and_the_flag_wins():
    environ = {
        "RECSYS_REPOSITORY": "/from-env",
        "RECSYS_MAX_QUEUE_DELAY_US": "123",
        "RECSYS_POLL_INTERVAL_S": "0.5",
        "RECSYS_PORT": "6000",
        "RECSYS_LOG_LEVEL": "DEBUG",
    }
    config, level = parse_config(["--port", "7000"], environ=environ)
    assert config.repository == Path("/from-env")
    assert (config.max_queue_delay_us, config.poll_interval_s, config.port, level) == (123, 0.5, 7000, "DEBUG")


def test_help_names_each_env_variable(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--help"], environ={})
    text = capsys.readouterr().out
    for variable in ("RECSYS_PORT", "RECSYS_MAX_BATCH_SIZE", "RECSYS_BACKEND", "RECSYS_METRICS_PORT"):
        assert variable in text


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--repository", "r", "--max-queue-rows", "10", "--max-rows-per-request", "20"], {}, "max_queue_rows (10)"),
        (["--repository", "r", "--port", "70000"], {}, "port 70000 is not a port number"),
        (["--repository", "r", "--workers", "0"], {}, "workers must be at least 1"),
        (["--repository", "r", "--max-batch-cells", "0"], {}, "max_batch_cells must be at least 1"),
        (["--repository", "r", "--inline-max-us", "-1"], {}, "inline_max_us must be 0 or more"),
        ([], {"RECSYS_REPOSITORY": "r", "RECSYS_MAX_BATCH_SIZE": "many"}, "RECSYS_MAX_BATCH_SIZE='many'"),
    ],
)
def test_bad_settings_are_named(argv, environ, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(argv, environ=environ)


def test_bad_choice_and_missing_repository_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as caught:
        parse_config(["--repository", "r", "--backend", "tensorrt"], environ={})
    assert caught.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config([], environ={})
    assert "--repository" in capsys.readouterr().err


def test_main_reports_config_errors_without_traceback(capsys):
    assert main(["--repository", "r", "--workers", "0"]) == 2
    assert capsys.readouterr().err.startswith("recsys-serve: error: workers must be at least 1")


def test_missing_repository_exits_non_zero_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "server", "--repository", str(tmp_path / "missing"), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is not a folder; pass --repository" in result.stderr


def test_every_setting_has_one_help_text_that_the_cli_shows(capsys, monkeypatch):
    import dataclasses

    monkeypatch.setenv("COLUMNS", "100000")  # one line per flag: textwrap would split "in-flight"
    with pytest.raises(SystemExit):
        parse_config(["--help"], environ={})
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(ServerConfig):
        assert field.metadata["help"], f"{field.name} has no help text"
        if not field.metadata.get("env_only"):
            assert " ".join(field.metadata["help"].split()) in text, field.name
    assert "RECSYS_AUTH_TOKENS" not in text.split("--auth-token-file")[0], "the env-only token list got a flag"


def test_readme_flag_table_is_the_generated_one():
    from server.cli import flag_table

    readme = (ROOT / "server" / "README.md").read_text()
    copy = readme.split("<!-- flag-table:start -->\n")[1].split("\n<!-- flag-table:end -->")[0]
    assert copy == flag_table(), "server/README.md's flag table is stale: regenerate it (see the README)"


def test_new_flags_and_their_variables(tmp_path):
    environ = {"RECSYS_DRAIN_DELAY_S": "5", "RECSYS_PROCESSES": "3", "RECSYS_TRACING": "console"}
    config, _ = parse_config(["--repository", "r", "--grace-s", "7"], environ=environ)
    assert (config.drain_delay_s, config.processes, config.tracing, config.grace_s) == (5.0, 3, "console", 7.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--processes", "2", "--port", "0"], "processes 2 needs a fixed port"),
        (["--processes", "0"], "processes must be at least 1"),
        (["--drain-delay-s", "-1"], "drain_delay_s must be 0 or more"),
        (["--otlp-endpoint", "http://c:4317"], "only used with tracing 'otlp'"),
    ],
)
def test_new_settings_refuse_bad_values(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(["--repository", "r", *argv], environ={})
