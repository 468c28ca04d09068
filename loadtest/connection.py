"""How the generator reaches the server: channels, credentials, deadline, and the raw call."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import grpc

from .runner import Call

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Connection:
    """Everything needed to open channels to the server; plain data, so it crosses to generator processes.

    Attributes:
        target: ``HOST:PORT``, already validated (see :func:`loadtest.target.validate_target`).
        channels: Channels per generator process, each on its own TCP connection.
        timeout_s: Deadline of each call, in seconds, so that a hung server cannot hang the test.
        token: Bearer token sent as ``authorization`` metadata, for a server that requires one.
        root_certificates: PEM CA bundle to verify a TLS server; None for a plaintext channel.
    """

    target: str
    channels: int = 1
    timeout_s: float = 10.0
    token: str | None = None
    root_certificates: bytes | None = None

    def __post_init__(self) -> None:
        if self.channels < 1 or self.timeout_s <= 0:
            raise ValueError(f"channels={self.channels} must be >= 1 and timeout={self.timeout_s} s > 0")

    def open(self) -> list[grpc.aio.Channel]:
        """Open the channels (on the running event loop); close each with ``await channel.close()``."""
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if self.channels > 1:
            options.append(("grpc.use_local_subchannel_pool", 1))
        if self.root_certificates is None:
            return [grpc.aio.insecure_channel(self.target, options=options) for _ in range(self.channels)]
        credentials = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
        return [grpc.aio.secure_channel(self.target, credentials, options=options) for _ in range(self.channels)]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """Call metadata: the bearer token, if any."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    def caller(self, channels: list[grpc.aio.Channel], method_path: str) -> Call:
        """A :data:`~loadtest.runner.Call` sending bytes as they are, round-robin over ``channels``.

        Args:
            channels: Channels from :meth:`open`.
            method_path: Full method name, e.g. ``/recsys.v1.RecommenderService/Predict``.

        Returns:
            The call function; it raises ``grpc.aio.AioRpcError`` on a failed call.
        """
        methods = [channel.unary_unary(method_path) for channel in channels]
        metadata, timeout = self.metadata, self.timeout_s

        def call(index: int, payload: bytes) -> Awaitable[bytes]:
            return methods[index % len(methods)](payload, timeout=timeout, metadata=metadata)

        return call
