"""Transport security: TLS server credentials from PEM files, and binding the port with or without them.

:func:`server_credentials` builds TLS credentials, with client-certificate verification (mutual TLS)
against a CA bundle when one is configured, after checking the files with the standard ``ssl``
module so that a bad certificate or key stops the server at start instead of failing handshakes.
:func:`is_loopback` tells the application when plain text is only reachable from this machine.

This module takes paths; it never reads ``os.environ`` itself.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from server.setting_files import SecurityConfigError, read_setting_file


@dataclass(frozen=True)
class TlsConfig:
    """Where the server's TLS material lives.

    Attributes:
        cert_path: PEM certificate chain the server presents (leaf first).
        key_path: PEM private key of that certificate, unencrypted (gRPC cannot prompt for a passphrase).
        client_ca_path: PEM bundle of CAs that sign client certificates. When set, every client must
            present a certificate signed by one of them (mutual TLS); when None, any client may connect.
    """

    cert_path: Path
    key_path: Path
    client_ca_path: Path | None = None


def read_pem(path: Path, what: str) -> bytes:
    """Reads a PEM file and checks that it holds at least one PEM block.

    Args:
        path: File to read.
        what: What the file is for (e.g. "TLS certificate"), used in error messages.

    Returns:
        The file's bytes.

    Raises:
        SecurityConfigError: The file is missing, unreadable, empty or not PEM; the message names it.
    """
    data = read_setting_file(path, what)
    if b"-----BEGIN " not in data:
        raise SecurityConfigError(
            f"{what} file {str(path)!r} is not PEM (no '-----BEGIN' line): convert it, e.g. "
            f"'openssl x509 -inform der -in FILE -out FILE.pem'"
        )
    return data


def _refuse_passphrase() -> bytes:
    """Password callback for ssl: an encrypted key must fail instead of prompting on a terminal."""
    return b""


def _check_tls_files(config: TlsConfig) -> None:
    """Loads the files with the standard ``ssl`` module so that a bad pair fails now, with a clear message.

    gRPC itself only reports a mismatched key or a malformed certificate at the first handshake, as
    a generic failure on the client side; checking here makes the server refuse to start instead.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(config.cert_path), str(config.key_path), password=_refuse_passphrase)
    except ssl.SSLError as exc:
        raise SecurityConfigError(
            f"TLS certificate {str(config.cert_path)!r} and key {str(config.key_path)!r} cannot be used together "
            f"({exc.reason or exc}): the key must be the unencrypted PEM private key of that certificate"
        ) from exc
    if config.client_ca_path is not None:
        try:
            context.load_verify_locations(cafile=str(config.client_ca_path))
        except ssl.SSLError as exc:
            raise SecurityConfigError(
                f"TLS client CA file {str(config.client_ca_path)!r} holds no usable certificate "
                f"({exc.reason or exc}): give a PEM bundle of the CAs that sign client certificates"
            ) from exc


def server_credentials(config: TlsConfig) -> grpc.ServerCredentials:
    """Builds gRPC server credentials for TLS, or mutual TLS when a client CA is configured.

    Args:
        config: Certificate, key and optional client CA paths.

    Returns:
        Credentials for ``server.add_secure_port``.

    Raises:
        SecurityConfigError: A file is missing, unreadable or not PEM, or the key does not match the
            certificate; the message names the file.
    """
    certificate = read_pem(config.cert_path, "TLS certificate")
    key = read_pem(config.key_path, "TLS private key")
    client_ca = None if config.client_ca_path is None else read_pem(config.client_ca_path, "TLS client CA")
    _check_tls_files(config)
    return grpc.ssl_server_credentials(
        [(key, certificate)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Binds ``address`` on the server with TLS when credentials are given, in plaintext otherwise.

    Args:
        server: The not yet started server.
        address: ``host:port``; port 0 picks a free port.
        credentials: From :func:`server_credentials`, or None for plaintext.

    Returns:
        The port really bound.

    Raises:
        SecurityConfigError: The address could not be bound.
    """
    port = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if port == 0:
        raise SecurityConfigError(f"could not listen on {address!r}: is the port in use or the host not local?")
    return port


def is_loopback(host: str) -> bool:
    """Tells whether ``host`` only accepts connections from this machine.

    Args:
        host: Host name or IP literal (IPv6 with or without brackets).

    Returns:
        True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
