"""Channel settings shared by the synchronous and the asyncio client: message limits, retries, deadlines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT_S = 10.0
RETRIED_SERVICE = "recsys.v1.RecommenderService"
_MAX_ATTEMPTS_LIMIT = 5  # gRPC silently caps maxAttempts at 5

ChannelOptions = list[tuple[str, int | str]]


@dataclass(frozen=True)
class RetryPolicy:
    """How the channel retries a failed RecommenderService call (gRPC's own ``retryPolicy``).

    gRPC retries inside the call's deadline, waiting a random time up to ``initial_backoff_s``, then up to
    ``backoff_multiplier`` times longer each attempt, never above ``max_backoff_s``. Retry throttling
    stops retrying once most recent calls failed, so that an overloaded server (RESOURCE_EXHAUSTED) is not
    hit by a retry storm.

    Attributes:
        max_attempts: Attempts per call, the first included (2..5; gRPC allows no more than 5).
        initial_backoff_s: Upper bound of the wait before the first retry, in seconds.
        max_backoff_s: Upper bound of any wait between attempts, in seconds.
        backoff_multiplier: Growth of the bound from one retry to the next.
        retryable_codes: Status code names worth retrying: the server is restarting, loading a version or
            shedding load. INVALID_ARGUMENT or NOT_FOUND would fail the same way again.
        throttle_max_tokens: gRPC retry throttling's ``maxTokens``: retries stop while fewer than half of
            these tokens are left (each failure takes one, each success gives back ``throttle_token_ratio``).
        throttle_token_ratio: Tokens a successful call gives back.

    Raises:
        ValueError: a setting out of range (the message names it).
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")
    throttle_max_tokens: int = 10
    throttle_token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= _MAX_ATTEMPTS_LIMIT:
            raise ValueError(
                f"max_attempts must be 2..{_MAX_ATTEMPTS_LIMIT}, got {self.max_attempts}; "
                "pass retry=None for no retries"
            )
        for name in ("initial_backoff_s", "max_backoff_s", "backoff_multiplier", "throttle_token_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.retryable_codes:
            raise ValueError("retryable_codes is empty; pass retry=None to turn retries off")

    def service_config(self) -> str:
        """The ``grpc.service_config`` JSON that applies this policy to every RecommenderService method."""
        policy = {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s}s",
            "maxBackoff": f"{self.max_backoff_s}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_codes),
        }
        return json.dumps(
            {
                "methodConfig": [{"name": [{"service": RETRIED_SERVICE}], "retryPolicy": policy}],
                "retryThrottling": {"maxTokens": self.throttle_max_tokens, "tokenRatio": self.throttle_token_ratio},
            }
        )


DEFAULT_RETRY = RetryPolicy()


def channel_options(
    max_message_bytes: int,
    extra: Sequence[tuple[str, int | str]] = (),
    retry: RetryPolicy | None = DEFAULT_RETRY,
) -> ChannelOptions:
    """Channel options: explicit message size limits (gRPC's default receive limit is 4 MiB) and retries.

    Args:
        max_message_bytes: Largest message sent or received.
        extra: More options, appended after the client's own.
        retry: Retry policy; None turns gRPC's retries off altogether.

    Raises:
        ValueError: ``max_message_bytes`` is not positive.
    """
    if max_message_bytes < 1:
        raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
    options: ChannelOptions = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    if retry is None:
        options.append(("grpc.enable_retries", 0))
    else:
        options += [("grpc.enable_retries", 1), ("grpc.service_config", retry.service_config())]
    return [*options, *extra]


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
