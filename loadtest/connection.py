"""How the generator reaches the server: clients of our typed client package, and the raw hot-path call.

Everything but the measured calls goes through :class:`client.AsyncRecsysClient` (metadata,
discovery). The measured calls use the client's own channel and bearer-token metadata, but send
pre-serialised bytes through a raw ``unary_unary`` method: building or parsing a protobuf message
per call would spend the generator's CPU on work the server is being measured for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import grpc

from client import AsyncRecsysClient
from client.channel import call_metadata

from .runner import Call

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Connection:
    """Everything needed to open clients to the server; plain data, so it crosses to generator processes.

    Attributes:
        target: ``HOST:PORT``, already validated (see :func:`loadtest.target.validate_target`).
        channels: Clients (gRPC channels) per generator process, each on its own TCP connection.
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

    def open(self) -> list[AsyncRecsysClient]:
        """Open the clients (on the running event loop); close each with ``await client.close()``.

        Raises:
            ValueError: If the token is empty or holds whitespace.
        """
        # Several channels with equal arguments would share one TCP connection unless each has its own pool.
        options = [("grpc.use_local_subchannel_pool", 1)] if self.channels > 1 else []
        credentials = None
        if self.root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
        return [
            AsyncRecsysClient(
                self.target,
                credentials=credentials,
                token=self.token,
                timeout=self.timeout_s,
                max_message_bytes=MAX_MESSAGE_BYTES,
                options=options,
                retry=None,  # a retried call would hide the failure or the overload being measured
            )
            for _ in range(self.channels)
        ]

    def caller(self, clients: Sequence[AsyncRecsysClient], method_path: str) -> Call:
        """A :data:`~loadtest.runner.Call` sending bytes as they are, round-robin over the clients' channels.

        Args:
            clients: Clients from :meth:`open`.
            method_path: Full method name, e.g. ``/recsys.v1.RecommenderService/Predict``.

        Returns:
            The call function; it raises ``grpc.aio.AioRpcError`` on a failed call.
        """
        methods = [c.channel.unary_unary(method_path) for c in clients]  # no (de)serialiser: bytes in, bytes out
        # Not clients[0].metadata: AsyncRecsysClient.metadata() (the RPC) shadows the base class's property.
        metadata, timeout = call_metadata(self.token), self.timeout_s

        def call(index: int, payload: bytes) -> Awaitable[bytes]:
            return methods[index % len(methods)](payload, timeout=timeout, metadata=metadata)

        return call


async def close_all(clients: Sequence[AsyncRecsysClient]) -> None:
    """Close every client."""
    for client in clients:
        await client.close()
