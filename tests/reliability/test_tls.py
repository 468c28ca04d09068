"""TLS and mutual TLS with certificates generated in the test, against a tiny server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server import tls

from .certs import Pki
from .tiny import serve_tiny

TIMEOUT_S = 5.0


async def _health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
    return response.status


def _secure_channel(target: str, root: bytes, client: tuple[bytes, bytes] | None = None) -> grpc.aio.Channel:
    key, cert = client if client is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(target, credentials)


async def test_tls_server_answers_a_client_that_trusts_its_ca(pki: Pki) -> None:
    credentials = tls.server_credentials(tls.TlsConfig(pki.server.cert_path, pki.server.key_path))
    async with serve_tiny(credentials) as server, _secure_channel(server.target, pki.server_ca.cert_pem) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_tls_server_refuses_plaintext_and_untrusted_clients(pki: Pki) -> None:
    credentials = tls.server_credentials(tls.TlsConfig(pki.server.cert_path, pki.server.key_path))
    async with serve_tiny(credentials) as server:
        async with grpc.aio.insecure_channel(server.target) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _health(plaintext)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        async with _secure_channel(server.target, pki.rogue_ca.cert_pem) as untrusting:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _health(untrusting)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_admits_only_clients_signed_by_the_client_ca(pki: Pki) -> None:
    config = tls.TlsConfig(pki.server.cert_path, pki.server.key_path, client_ca_path=pki.client_ca.cert_path)
    async with serve_tiny(tls.server_credentials(config)) as server:
        good = (pki.client.key_pem, pki.client.cert_pem)
        async with _secure_channel(server.target, pki.server_ca.cert_pem, good) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        rogue = (pki.rogue_client.key_pem, pki.rogue_client.cert_pem)
        for client in (None, rogue):
            async with _secure_channel(server.target, pki.server_ca.cert_pem, client) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await _health(channel)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_missing_tls_file_is_named_in_the_error(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "server.crt"
    with pytest.raises(tls.SecurityConfigError, match=r"TLS certificate file .*nowhere/server\.crt.* does not exist"):
        tls.server_credentials(tls.TlsConfig(missing, pki.server.key_path))
    with pytest.raises(tls.SecurityConfigError, match=r"TLS client CA file .*ca\.pem.* does not exist"):
        tls.server_credentials(
            tls.TlsConfig(pki.server.cert_path, pki.server.key_path, client_ca_path=tmp_path / "ca.pem")
        )
    with pytest.raises(tls.SecurityConfigError, match="is a directory"):
        tls.server_credentials(tls.TlsConfig(pki.server.cert_path, tmp_path))


def test_non_pem_and_mismatched_key_are_refused_before_serving(pki: Pki, tmp_path: Path) -> None:
    der = tmp_path / "server.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + os.urandom(64))
    with pytest.raises(tls.SecurityConfigError, match=r"server\.der.* is not PEM"):
        tls.server_credentials(tls.TlsConfig(der, pki.server.key_path))
    with pytest.raises(tls.SecurityConfigError, match="cannot be used together"):
        tls.server_credentials(tls.TlsConfig(pki.server.cert_path, pki.client.key_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_key_is_named_in_the_error(pki: Pki, tmp_path: Path) -> None:
    key = tmp_path / "locked.key"
    key.write_bytes(pki.server.key_pem)
    key.chmod(0)
    with pytest.raises(tls.SecurityConfigError, match=r"locked\.key.* is not readable"):
        tls.server_credentials(tls.TlsConfig(pki.server.cert_path, key))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.0.0.4", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert tls.is_loopback(host) is loopback
