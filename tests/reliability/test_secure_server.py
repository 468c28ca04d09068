"""TLS, mutual TLS and token authentication on the real server, configured the way operators do it.

The server runs as ``python -m server`` with ``--tls-*`` flags, a token file and the
``RECSYS_AUTH_TOKENS`` variable; no flag accepts a token value.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.recsys.v1 import service_pb2, service_pb2_grpc
from server import cli

from .certs import Pki
from .procs import ROOT, server_process

TIMEOUT_S = 10.0
FILE_TOKEN = "file-token-0123456789abcdef"
ENV_TOKEN = "env-token-ABCDEFGHIJKLMNOP"


def _predict(channel: grpc.Channel, token: str | None) -> grpc.StatusCode:
    stub = service_pb2_grpc.RecommenderServiceStub(channel)
    request = service_pb2.PredictRequest(model=service_pb2.ModelSpec(name="mf"), user_ids=["u0"], item_ids=["i0"])
    metadata = None if token is None else (("authorization", f"Bearer {token}"),)
    try:
        response = stub.Predict(request, metadata=metadata, timeout=TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code()
    assert len(response.ratings) == 1
    return grpc.StatusCode.OK


def _health(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="mf"), timeout=TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _secure(target: str, pki: Pki, client: bool) -> grpc.Channel:
    key, chain = (pki.client.key_pem, pki.client.cert_pem) if client else (None, None)
    credentials = grpc.ssl_channel_credentials(pki.server_ca.cert_pem, private_key=key, certificate_chain=chain)
    return grpc.secure_channel(target, credentials)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# one token per line\n{FILE_TOKEN}\n")
    path.chmod(0o600)
    return path


def test_mutual_tls_and_tokens_from_file_and_environment(
    tiny_repository: Path, tmp_path: Path, pki: Pki, token_file: Path
) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "mf").symlink_to(tiny_repository / "mf", target_is_directory=True)
    args = [
        *("--tls-cert", str(pki.server.cert_path), "--tls-key", str(pki.server.key_path)),
        *("--tls-client-ca", str(pki.client_ca.cert_path), "--auth-token-file", str(token_file)),
        *("--allow-unauthenticated-health", "true"),
    ]
    with server_process(repository, tmp_path, args, env={"RECSYS_AUTH_TOKENS": ENV_TOKEN}, wait_for=()) as process:
        with _secure(process.target, pki, client=True) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            assert _health(channel) in (grpc.StatusCode.OK,)
            assert _predict(channel, FILE_TOKEN) == grpc.StatusCode.OK
            assert _predict(channel, ENV_TOKEN) == grpc.StatusCode.OK
            assert _predict(channel, None) == grpc.StatusCode.UNAUTHENTICATED
            assert _predict(channel, "wrong-token") == grpc.StatusCode.UNAUTHENTICATED
        with _secure(process.target, pki, client=False) as no_client_certificate:
            assert _predict(no_client_certificate, FILE_TOKEN) == grpc.StatusCode.UNAVAILABLE
        with grpc.insecure_channel(process.target) as plaintext:
            assert _predict(plaintext, FILE_TOKEN) == grpc.StatusCode.UNAVAILABLE
        assert FILE_TOKEN not in process.log() and ENV_TOKEN not in process.log()


def test_health_needs_a_token_unless_opened(tiny_repository: Path, tmp_path: Path, token_file: Path) -> None:
    args = ["--auth-token-file", str(token_file)]
    with (
        server_process(tiny_repository, tmp_path, args, wait_for=()) as process,
        grpc.insecure_channel(process.target) as channel,
    ):
        grpc.channel_ready_future(channel).result(timeout=30)
        assert _health(channel) == grpc.StatusCode.UNAUTHENTICATED
        assert _predict(channel, None) == grpc.StatusCode.UNAUTHENTICATED


def _serve_exit(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env, check=False)


def test_unusable_security_settings_stop_the_server_with_the_path_named(tiny_repository: Path, tmp_path: Path) -> None:
    missing = tmp_path / "absent.crt"
    done = _serve_exit(["--repository", str(tiny_repository), "--tls-cert", str(missing), "--tls-key", str(missing)])
    assert done.returncode != 0 and "absent.crt" in done.stderr, done.stderr[-2000:]
    done = _serve_exit(["--repository", str(tiny_repository), "--auth-token-file", str(tmp_path / "no-tokens")])
    assert done.returncode != 0 and "no-tokens" in done.stderr, done.stderr[-2000:]


def test_no_flag_takes_a_token_value(tiny_repository: Path) -> None:
    parser = cli.build_parser({})
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--tls-cert", "--tls-key", "--tls-client-ca", "--auth-token-file"} <= flags
    assert not [f for f in flags if "token" in f and f not in ("--auth-token-file",)], flags
    with pytest.raises(SystemExit):
        cli.parse_config(["--repository", str(tiny_repository), "--auth-tokens", "secret"], environ={})


def test_tokens_come_from_the_environment_and_stay_out_of_reprs(tiny_repository: Path) -> None:
    config, _ = cli.parse_config(["--repository", str(tiny_repository)], environ={"RECSYS_AUTH_TOKENS": "a1,b2"})
    assert set(config.auth_tokens) == {"a1", "b2"}
    assert "a1" not in repr(config) and "b2" not in repr(config)


def test_binds_loopback_unless_all_interfaces_are_asked_for(tiny_repository: Path) -> None:
    base = ["--repository", str(tiny_repository)]
    assert cli.parse_config(base, environ={})[0].host == "127.0.0.1"
    assert cli.parse_config([*base, "--listen-all-interfaces"], environ={})[0].host == "0.0.0.0"
    assert cli.parse_config([*base, "--host", "::1"], environ={})[0].host == "::1"
    with pytest.raises(SystemExit):
        cli.parse_config([*base, "--listen-all-interfaces", "--host", "10.0.0.1"], environ={})
