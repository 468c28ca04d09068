"""What the synchronous and asyncio clients share: settings and the channel's options."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2

from client.channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    RetryPolicy,
    call_metadata,
    channel_options,
)

_HealthResponse = health_pb2.HealthCheckResponse


class ClientBase:
    """Settings and channel of a client.

    Args:
        target: ``host:port`` of the server.
        credentials: TLS channel credentials; None for a plain-text channel.
        token: Bearer token sent as ``authorization`` metadata with every call.
        timeout: Default deadline of every call, in seconds (10 s; a call's own ``timeout=`` wins); None
            waits forever, which a caller should only choose with its own deadline.
        max_message_bytes: Largest message sent or received.
        options: Extra gRPC channel options.
        retry: How RecommenderService calls that fail with UNAVAILABLE or RESOURCE_EXHAUSTED are retried,
            with exponential backoff, inside the call's deadline (see :class:`client.channel.RetryPolicy`);
            None turns retries off (load testers: a retry would hide the failure being measured).

    Attributes:
        channel: The gRPC channel.
        stub: The generated ``RecommenderServiceStub``, for callers that build their own messages.
        retry: The retry policy in use, or None.

    Raises:
        ValueError: an empty or blank token, or a non-positive message limit.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, int | str]] = (),
        retry: RetryPolicy | None = DEFAULT_RETRY,
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._metadata = call_metadata(token)
        self._timeout = timeout
        self.retry = retry
        self._options = channel_options(max_message_bytes, options, retry)
        self._connect()

    def _connect(self) -> None:
        """Opens ``self.channel`` and the stubs (sync or asyncio)."""
        raise NotImplementedError

    @property
    def call_metadata(self) -> tuple[tuple[str, str], ...] | None:
        """Metadata sent with every call (the bearer token), for callers using ``stub`` or ``channel`` directly."""
        return self._metadata

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    @staticmethod
    def _health_name(status: int) -> str:
        return _HealthResponse.ServingStatus.Name(status)

    @staticmethod
    def _unknown_service(error: grpc.RpcError) -> bool:
        code = getattr(error, "code", None)  # grpc.Call (sync) and grpc.aio.AioRpcError both have it
        return callable(code) and code() == grpc.StatusCode.NOT_FOUND


HEALTH_UNKNOWN = "SERVICE_UNKNOWN"
HealthCheckRequest = health_pb2.HealthCheckRequest
