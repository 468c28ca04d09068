"""Channel settings shared by the synchronous and the asyncio client."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

ChannelOptions = list[tuple[str, int | str]]


def channel_options(max_message_bytes: int, extra: Sequence[tuple[str, int | str]] = ()) -> ChannelOptions:
    """Channel options with explicit message size limits (gRPC's default receive limit is 4 MiB).

    Raises:
        ValueError: ``max_message_bytes`` is not positive.
    """
    if max_message_bytes < 1:
        raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        *extra,
    ]


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """Per-call metadata carrying ``authorization: Bearer <token>``, or None without a token.

    Raises:
        ValueError: the token is empty or holds whitespace (it would never be accepted).
    """
    if token is None:
        return None
    if not token or any(ch.isspace() for ch in token):
        raise ValueError("token must be a non-empty string without whitespace")
    return (("authorization", f"Bearer {token}"),)
