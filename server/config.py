"""Typed configuration of the serving process.

Only the command line (``server.cli``) turns flags and environment variables into a
:class:`ServerConfig`; everything else receives the dataclass, so tests build one directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("onnx", "torchscript")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A server setting is out of range; the message names the setting and what to change."""


@dataclass(frozen=True)
class ServerConfig:
    """How the server finds, loads, batches and serves models.

    Attributes:
        repository: Model repository folder (``REPOSITORY/<model>/<version>/config.json``).
        host: Address to bind; ``0.0.0.0`` to accept connections from other machines.
        port: gRPC port; 0 picks a free one (``RunningServer.port`` tells which).
        backend: Runtime for every model: ``onnx`` (ONNX Runtime) or ``torchscript``.
        device: ``auto`` uses a GPU when one is usable, else the CPU; ``cuda`` refuses to
            serve a model on the CPU; ``cpu`` never touches a GPU.
        max_batch_size: Most rows joined into one runtime call; 1 or less turns batching off.
        max_queue_delay_us: Longest a row waits for others before its batch runs, in microseconds.
        max_queue_rows: Most rows waiting per model signature; beyond that calls fail with
            RESOURCE_EXHAUSTED so that an overloaded server sheds load instead of queueing forever.
        max_rows_per_request: Most pairs per Predict call and users or histories per Recommend call.
        max_message_bytes: Largest gRPC message received or sent, in bytes (set explicitly so that
            big Predict calls are not cut at gRPC's 4 MiB default).
        poll_interval_s: Seconds between two scans of the repository for new or removed versions;
            0 scans once at start only.
        versions_to_serve: How many of the newest ready versions of each model stay loaded;
            older ones are drained and unloaded.
        metrics_port: Port of the Prometheus ``/metrics`` endpoint on ``host``; 0 turns it off.
        grace_s: On shutdown, seconds that in-flight calls get to finish before they are cancelled.
        workers: Threads running inference (ONNX Runtime and torch release the GIL there).
        batches_in_flight: Batches of one model signature running at the same time; more than one
            overlaps Python work with inference at the cost of smaller batches.
        intra_op_threads: Threads one runtime call may use; 0 lets the runtime decide.
        inline_max_us: A batch whose size took less than this many microseconds last time runs on
            the event loop instead of a worker thread, saving the hand-off (~100-200 us of loop
            wake-ups); 0 always uses the worker threads.
        max_batch_cells: Most users x catalogue items one Recommend runtime call scores; batches stop
            there and a larger request runs in chunks, bounding the model's intermediate memory.
        retrieval_min_items: Catalogue size from which Recommend by user id is served from a version's
            retrieval index (when it has one) instead of scoring every item; -1 takes each version's own
            ``retrieval_index.min_num_items``. Set it above every catalogue to always score exactly.
        reflection: Offer gRPC server reflection so that grpcurl-style tools need no .proto files.
        tls_cert: PEM certificate chain to serve TLS with; None serves plain text.
        tls_key: PEM private key of ``tls_cert`` (unencrypted).
        tls_client_ca: PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).
        auth_token_file: File of accepted bearer tokens, one per line; with ``auth_tokens`` empty and
            no file, calls are not authenticated.
        auth_tokens: Accepted bearer tokens given directly (the CLI reads them from the
            ``RECSYS_AUTH_TOKENS`` environment variable, never from a flag); never printed.
        allow_unauthenticated_health: Leave the health service open when authentication is on, for
            load balancers that cannot send a token.
    """

    repository: Path
    host: str = "127.0.0.1"
    port: int = 50051
    backend: str = "onnx"
    device: str = "auto"
    max_batch_size: int = 256
    max_queue_delay_us: int = 500
    max_queue_rows: int = 65536
    max_rows_per_request: int = 16384
    max_message_bytes: int = 64 * 1024 * 1024
    poll_interval_s: float = 2.0
    versions_to_serve: int = 1
    metrics_port: int = 0
    grace_s: float = 10.0
    workers: int = 2
    batches_in_flight: int = 1
    intra_op_threads: int = 1
    inline_max_us: int = 200
    max_batch_cells: int = 65536
    retrieval_min_items: int = -1
    reflection: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    auth_token_file: Path | None = None
    auth_tokens: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    allow_unauthenticated_health: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "repository", Path(self.repository))
        for name in ("tls_cert", "tls_key", "tls_client_ca", "auth_token_file"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "auth_tokens", frozenset(self.auth_tokens))
        self.validate()

    def validate(self) -> None:
        """Checks every setting.

        Raises:
            ConfigError: a setting is out of range; the message names the flag and its limits.
        """
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {list(BACKENDS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is not one of {list(DEVICES)}")
        for name in ("port", "metrics_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise ConfigError(f"{name} {value} is not a port number (0..65535)")
        positive = (
            "max_rows_per_request",
            "max_message_bytes",
            "versions_to_serve",
            "workers",
            "batches_in_flight",
            "max_batch_cells",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        floors = {
            "max_queue_delay_us": 0,
            "poll_interval_s": 0,
            "grace_s": 0,
            "intra_op_threads": 0,
            "inline_max_us": 0,
            "retrieval_min_items": -1,  # -1: each version's own threshold
        }
        for name, floor in floors.items():
            if getattr(self, name) < floor:
                raise ConfigError(f"{name} must be {floor} or more, got {getattr(self, name)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together: give both to serve TLS, or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key as well")
        if self.max_queue_rows < self.max_rows_per_request:
            raise ConfigError(
                f"max_queue_rows ({self.max_queue_rows}) is below max_rows_per_request "
                f"({self.max_rows_per_request}): the largest allowed request could never be queued; "
                "raise max_queue_rows or lower max_rows_per_request"
            )

    @property
    def authenticated(self) -> bool:
        """Whether callers must present a bearer token."""
        return bool(self.auth_tokens) or self.auth_token_file is not None

    @property
    def address(self) -> str:
        """``host:port`` as gRPC expects it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def replace(self, **changes: object) -> ServerConfig:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)
