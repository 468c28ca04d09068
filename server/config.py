"""Typed configuration of the serving process.

Only the command line (``server.cli``) turns flags and environment variables into a
:class:`ServerConfig`; everything else receives the dataclass, so tests build one directly.

Each field's help text lives once, in its ``metadata["help"]`` (see :func:`setting_help`): the
command line's ``--help``, the flag table of ``server/README.md`` (checked by a test) and this
module's readers all take it from there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("onnx", "torchscript")
DEVICES = ("auto", "cpu", "cuda")
TRACING = ("off", "console", "otlp")
ENV_PREFIX = "RECSYS_"


class ConfigError(ValueError):
    """A server setting is out of range; the message names the setting and what to change."""


def _meta(help_text: str, **hints: Any) -> dict[str, Any]:
    """A field's metadata: its one help text and hints for the command line (``choices``, ``env_only``)."""
    return {"help": help_text, **hints}


def setting_help(name: str) -> str:
    """The help text of one :class:`ServerConfig` field.

    Raises:
        KeyError: ``name`` is not a field of ServerConfig.
    """
    for entry in dataclasses.fields(ServerConfig):
        if entry.name == name:
            return entry.metadata["help"]
    raise KeyError(f"{name!r} is not a ServerConfig field; see `recsys-serve --help`")


@dataclass(frozen=True)
class ServerConfig:
    """How the server finds, loads, batches and serves models.

    Every field is one ``recsys-serve`` flag (``max_batch_size`` is ``--max-batch-size`` and
    ``RECSYS_MAX_BATCH_SIZE``); its help text is the field's ``metadata["help"]``.
    """

    repository: Path = field(
        metadata=_meta(
            "model repository folder (REPOSITORY/<model>/<version>/config.json), as written by recsys-export"
        )
    )
    host: str = field(
        default="127.0.0.1", metadata=_meta("address to bind; 0.0.0.0 accepts connections from other machines")
    )
    port: int = field(
        default=50051,
        metadata=_meta(
            "gRPC port; 0 picks a free one (refused with --processes above 1: the processes share one port)"
        ),
    )
    backend: str = field(default="onnx", metadata=_meta("runtime serving every model", choices=BACKENDS))
    device: str = field(
        default="auto",
        metadata=_meta(
            "auto: a GPU when one is usable, else the CPU; cuda: refuse to serve on the CPU; cpu: never touch a GPU",
            choices=DEVICES,
        ),
    )
    max_batch_size: int = field(
        default=256, metadata=_meta("most rows joined into one runtime call; 1 turns dynamic batching off")
    )
    max_queue_delay_us: int = field(
        default=500, metadata=_meta("longest a row waits for others before its batch runs, in microseconds")
    )
    max_queue_rows: int = field(
        default=65536,
        metadata=_meta(
            "most rows waiting per model signature before calls fail with RESOURCE_EXHAUSTED, so that an "
            "overloaded server sheds load instead of queueing forever"
        ),
    )
    max_rows_per_request: int = field(
        default=16384, metadata=_meta("most pairs per Predict call and users or histories per Recommend call")
    )
    max_message_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_meta(
            "largest gRPC message received or sent, in bytes (explicit, so that big Predict calls are not cut at "
            "gRPC's 4 MiB default)"
        ),
    )
    poll_interval_s: float = field(
        default=2.0,
        metadata=_meta("seconds between scans of the repository for new or removed versions; 0 scans once at start"),
    )
    versions_to_serve: int = field(
        default=1,
        metadata=_meta(
            "how many of the newest ready versions of each model stay loaded; older ones are drained and unloaded"
        ),
    )
    metrics_port: int = field(
        default=0,
        metadata=_meta(
            "port of the Prometheus /metrics endpoint on --host; 0 turns it off (with --processes above 1 the "
            "supervising parent serves it, summing its children)"
        ),
    )
    drain_delay_s: float = field(
        default=0.0,
        metadata=_meta(
            "on SIGTERM, seconds during which health reads NOT_SERVING while calls are still answered, so that "
            "load balancers (Kubernetes endpoints) stop sending before the port closes; then --grace-s applies"
        ),
    )
    grace_s: float = field(
        default=10.0,
        metadata=_meta(
            "on SIGTERM/SIGINT, after the drain delay, seconds in-flight calls get to finish before they are cancelled"
        ),
    )
    processes: int = field(
        default=1,
        metadata=_meta(
            "server processes sharing the port (SO_REUSEPORT), each with its own event loop, batchers and runtime "
            "sessions, supervised by the parent (a crashed one is restarted with a back-off)"
        ),
    )
    workers: int = field(
        default=2, metadata=_meta("threads running inference (ONNX Runtime and torch release the GIL there)")
    )
    batches_in_flight: int = field(
        default=1,
        metadata=_meta(
            "batches of one model signature running at the same time; more than one overlaps Python work with "
            "inference at the cost of smaller batches"
        ),
    )
    intra_op_threads: int = field(
        default=1, metadata=_meta("threads one runtime call may use; 0 lets the runtime decide")
    )
    inline_max_us: int = field(
        default=200,
        metadata=_meta(
            "batches that took less than this (microseconds) last time run on the event loop, skipping the "
            "thread hand-off (~100-200 us of loop wake-ups); 0 always uses the worker threads"
        ),
    )
    max_batch_cells: int = field(
        default=65536,
        metadata=_meta(
            "most users x catalogue items scored in one Recommend runtime call; larger requests run in chunks, "
            "bounding the model's intermediate memory"
        ),
    )
    retrieval_min_items: int = field(
        default=-1,
        metadata=_meta(
            "serve Recommend by user id from a version's retrieval index from this many catalogue items; "
            "-1 takes each version's own retrieval_index.min_num_items; above every catalogue: always exact"
        ),
    )
    reflection: bool = field(
        default=True, metadata=_meta("offer gRPC server reflection (for grpcurl-style tools, no .proto needed)")
    )
    tracing: str = field(
        default="off",
        metadata=_meta(
            "OpenTelemetry spans, one per RecommenderService call: off, console (stdout) or otlp (an OTLP/gRPC "
            "collector, see --otlp-endpoint and the standard OTEL_* variables); needs the 'tracing' extra",
            choices=TRACING,
        ),
    )
    otlp_endpoint: str = field(
        default="",
        metadata=_meta(
            "OTLP/gRPC collector for --tracing otlp, e.g. http://otel-collector:4317; empty uses "
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4317)"
        ),
    )
    tls_cert: Path | None = field(
        default=None, metadata=_meta("PEM certificate chain to serve TLS with (with --tls-key); plain text without")
    )
    tls_key: Path | None = field(default=None, metadata=_meta("PEM private key of --tls-cert, unencrypted"))
    tls_client_ca: Path | None = field(
        default=None, metadata=_meta("PEM CA bundle: require client certificates signed by it (mutual TLS)")
    )
    auth_token_file: Path | None = field(
        default=None,
        metadata=_meta(
            "file of accepted bearer tokens, one per line (tokens can also come from "
            f"{ENV_PREFIX}AUTH_TOKENS, comma-separated; never from a flag); without either, calls are not authenticated"
        ),
    )
    auth_tokens: frozenset[str] = field(
        default=frozenset(),
        repr=False,
        metadata=_meta(
            f"accepted bearer tokens, comma-separated, from {ENV_PREFIX}AUTH_TOKENS only (a flag would show them "
            "to every local user in the process list); never printed",
            env_only=True,
        ),
    )
    allow_unauthenticated_health: bool = field(
        default=False,
        metadata=_meta(
            "leave the health service open when tokens are required, for load balancers that cannot send one"
        ),
    )

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
        for name in ("backend", "device", "tracing"):
            choices = _field(name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} {getattr(self, name)!r} is not one of {list(choices)}")
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
            "processes",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        floors = {
            "max_queue_delay_us": 0,
            "poll_interval_s": 0,
            "grace_s": 0,
            "drain_delay_s": 0,
            "intra_op_threads": 0,
            "inline_max_us": 0,
            "retrieval_min_items": -1,  # -1: each version's own threshold
        }
        for name, floor in floors.items():
            if getattr(self, name) < floor:
                raise ConfigError(f"{name} must be {floor} or more, got {getattr(self, name)}")
        self._validate_combinations()

    def _validate_combinations(self) -> None:
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
        if self.processes > 1 and self.port == 0:
            raise ConfigError(
                f"processes {self.processes} needs a fixed port: with port 0 each process would pick its own; "
                "pass --port (e.g. --port 50051)"
            )
        if self.otlp_endpoint and self.tracing != "otlp":
            raise ConfigError(
                f"otlp_endpoint {self.otlp_endpoint!r} is only used with tracing 'otlp' (got {self.tracing!r}); "
                "pass --tracing otlp or drop --otlp-endpoint"
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


def _field(name: str) -> dataclasses.Field[Any]:
    return next(entry for entry in dataclasses.fields(ServerConfig) if entry.name == name)
