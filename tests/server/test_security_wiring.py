"""The server config turns on the reliability layer: TLS from PEM files, bearer tokens, decode guard."""

from __future__ import annotations

import datetime as dt
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from client import RecsysClient
from server.cli import parse_config
from server.config import ConfigError


def self_signed(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_and_tokens_from_config(tmp_path, copy_repository, start_server):
    repository = copy_repository(tmp_path / "repo", models=("mf",))
    cert, key = self_signed(tmp_path)
    thread = start_server(
        repository, tls_cert=cert, tls_key=key, auth_tokens={"s3cret"}, allow_unauthenticated_health=True
    )
    tls = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with RecsysClient(thread.target, credentials=tls, token="s3cret", timeout=10) as client:
        assert client.predict("mf", ["u1"], ["i1"]).ratings.shape == (1,)
    with RecsysClient(thread.target, credentials=tls, timeout=10) as anonymous:
        assert anonymous.health() == "SERVING", "health stays open for load balancers"
        with pytest.raises(grpc.RpcError) as caught:
            anonymous.predict("mf", ["u1"], ["i1"])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with RecsysClient(thread.target, token="s3cret", timeout=3) as plaintext, pytest.raises(grpc.RpcError):
        plaintext.predict("mf", ["u1"], ["i1"])


@pytest.mark.parametrize("served", ["onnx"], indirect=True)
def test_undecodable_request_is_invalid_argument(served):
    with grpc.insecure_channel(served.target) as channel:
        call = channel.unary_unary("/recsys.v1.RecommenderService/Predict")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_tokens_come_from_the_environment_only(tmp_path):
    config, _ = parse_config(["--repository", "r"], environ={"RECSYS_AUTH_TOKENS": "tok-1, tok-2"})
    assert config.auth_tokens == {"tok-1", "tok-2"} and config.authenticated
    assert "tok-1" not in repr(config)
    with pytest.raises(SystemExit):
        parse_config(["--repository", "r", "--auth-tokens", "a"], environ={})
    with pytest.raises(ConfigError, match="holds no token"):
        parse_config(["--repository", "r"], environ={"RECSYS_AUTH_TOKENS": " , "})
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        parse_config(["--repository", "r", "--tls-cert", str(tmp_path / "c.pem")], environ={})
