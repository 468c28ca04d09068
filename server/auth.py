"""Caller authentication: bearer tokens, checked in constant time by a server interceptor.

:class:`BearerTokenInterceptor` checks the ``authorization: Bearer <token>`` metadata of every call
against a configured set of tokens and answers UNAUTHENTICATED otherwise. Tokens come from a file
(:func:`load_token_file`) or from the value of an environment variable that the CLI reads
(:func:`parse_token_list`): never from a command-line flag, which any local user could read in the
process list.

This module takes values and paths; it never reads ``os.environ`` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from server.setting_files import SecurityConfigError, read_setting_file

_LOGGER = logging.getLogger(__name__)

HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"
"""Methods of the standard health service, left open by ``allow_unauthenticated_health``."""

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750 ``b64token`` characters: what can travel in an ``authorization`` header unchanged."""

_TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def parse_token_list(text: str, source: str, *, separator: str | None = None) -> frozenset[str]:
    """Parses bearer tokens from a token file's text or an environment variable's value.

    With ``separator=None`` the text holds one token per line; blank lines and lines starting with
    ``#`` are skipped. With a separator (``","`` for the ``RECSYS_AUTH_TOKENS`` variable) the text is
    split on it and blank entries are skipped. Surrounding whitespace is ignored.

    Args:
        text: The text to parse.
        source: Where the text came from (a path or variable name), used in error messages.
        separator: None for line-oriented files, else the separator between tokens.

    Returns:
        The distinct tokens.

    Raises:
        SecurityConfigError: A token holds characters that cannot travel in an ``authorization``
            header; the message gives its position, never the token itself.
    """
    entries = text.splitlines() if separator is None else text.split(separator)
    tokens: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        token = entry.strip()
        if not token or (separator is None and token.startswith("#")):
            continue
        if not _TOKEN_RE.fullmatch(token):
            where = f"line {position}" if separator is None else f"entry {position}"
            raise SecurityConfigError(
                f"token at {where} of {source} holds characters other than A-Z a-z 0-9 - . _ ~ + / "
                f"(and trailing =): {_TOKEN_HINT}"
            )
        tokens.add(token)
    return frozenset(tokens)


def load_token_file(path: Path) -> frozenset[str]:
    """Reads bearer tokens from a file, one per line, ``#`` comments and blank lines allowed.

    Logs a warning when other users may read the file.

    Args:
        path: The token file.

    Returns:
        The distinct tokens, at least one.

    Raises:
        SecurityConfigError: The file is missing, unreadable, not UTF-8, holds no token or a malformed
            one; the message names the file.
    """
    data = read_setting_file(path, "auth token")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SecurityConfigError(f"auth token file {str(path)!r} is not UTF-8 text: {_TOKEN_HINT}") from exc
    tokens = parse_token_list(text, repr(str(path)))
    if not tokens:
        raise SecurityConfigError(
            f"auth token file {str(path)!r} holds no token (only blank or '#' lines): add one per line; {_TOKEN_HINT}"
        )
    if stat.S_IMODE(Path(path).stat().st_mode) & 0o077:
        _LOGGER.warning("auth token file %s is readable by other users: chmod 600 it", path)
    return tokens


def resolve_tokens(
    token_file: Path | None, env_value: str | None, env_name: str = "RECSYS_AUTH_TOKENS"
) -> frozenset[str]:
    """Gathers the tokens of a token file and of an environment variable's value (comma-separated).

    Args:
        token_file: Token file path, or None.
        env_value: The variable's value as the CLI read it, or None when unset.
        env_name: The variable's name, for error messages.

    Returns:
        The union of both sources; empty when neither is given (authentication off).

    Raises:
        SecurityConfigError: A source is given but unusable, or the variable is set but holds no token.
    """
    tokens: set[str] = set()
    if token_file is not None:
        tokens |= load_token_file(token_file)
    if env_value is not None:
        from_env = parse_token_list(env_value, f"${env_name}", separator=",")
        if not from_env:
            raise SecurityConfigError(
                f"${env_name} is set but holds no token: unset it to turn authentication off, "
                f"or give comma-separated tokens; {_TOKEN_HINT}"
            )
        tokens |= from_env
    return frozenset(tokens)


def _digest(token: bytes) -> bytes:
    """Fixed-length digest, so that comparing digests leaks neither the content nor the length of tokens."""
    return hashlib.sha256(token).digest()


def _deny_handler(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    """A handler of the same streaming shape as ``handler`` that fails every call with ``code``.

    Requests stay raw bytes (no deserializer), so an unauthenticated caller's payload is never parsed.
    """

    async def deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, details)

    request_streaming = handler is not None and handler.request_streaming
    response_streaming = handler is not None and handler.response_streaming
    if request_streaming and response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Lets a call through only when it carries ``authorization: Bearer <token>`` with a configured token.

    Each token is compared through a SHA-256 digest with :func:`hmac.compare_digest`, against every
    configured token, so the time taken tells nothing about how much of a guess was right. A failed
    call gets UNAUTHENTICATED before its request is parsed or any model is touched; the message never
    repeats the token.

    Args:
        tokens: Accepted tokens; at least one.
        allow_unauthenticated_health: Leave ``grpc.health.v1.Health/*`` open, for load balancers and
            orchestrators that probe health without credentials.
    """

    def __init__(self, tokens: Iterable[str], *, allow_unauthenticated_health: bool = False) -> None:
        tokens = sorted(set(tokens))
        if any(not _TOKEN_RE.fullmatch(token) for token in tokens):
            raise SecurityConfigError(
                f"a configured token holds characters other than A-Z a-z 0-9 - . _ ~ + / =: {_TOKEN_HINT}"
            )
        self._digests = tuple(_digest(token.encode("ascii")) for token in tokens)
        if not self._digests:
            raise SecurityConfigError(
                "token authentication needs at least one token: give --auth-token-file or $RECSYS_AUTH_TOKENS"
            )
        self._open_prefixes: tuple[str, ...] = (HEALTH_METHOD_PREFIX,) if allow_unauthenticated_health else ()
        self._denials: dict[tuple[bool, bool, str], grpc.RpcMethodHandler] = {}

    def _token_accepted(self, token: str) -> bool:
        """Constant-time membership test over every configured token."""
        try:
            candidate = _digest(token.encode("ascii"))
        except UnicodeEncodeError:
            return False
        accepted = False
        for digest in self._digests:
            accepted |= hmac.compare_digest(candidate, digest)
        return accepted

    def check(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
        """Checks a call's metadata.

        Args:
            metadata: The call's invocation metadata.

        Returns:
            None when the call is authenticated, else the reason to send back with UNAUTHENTICATED.
        """
        values = [value for key, value in metadata or () if key == "authorization"]
        if not values:
            return "missing credentials: send metadata 'authorization: Bearer <token>'"
        if len(values) > 1:
            return "more than one 'authorization' metadata entry: send exactly one 'authorization: Bearer <token>'"
        value = values[0]
        if isinstance(value, bytes):
            return "the 'authorization' metadata must be text: send 'authorization: Bearer <token>'"
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "unsupported authorization scheme: send 'authorization: Bearer <token>'"
        if not self._token_accepted(token.strip()):
            return "invalid bearer token: use a token the server is configured with"
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Passes authenticated (or open) calls on, answers the others UNAUTHENTICATED."""
        method = handler_call_details.method
        if self._open_prefixes and method.startswith(self._open_prefixes):
            return await continuation(handler_call_details)
        reason = self.check(handler_call_details.invocation_metadata)
        handler = await continuation(handler_call_details)
        if reason is None:
            return handler
        key = (
            handler is not None and handler.request_streaming,
            handler is not None and handler.response_streaming,
            reason,
        )
        denial = self._denials.get(key)
        if denial is None:
            denial = self._denials[key] = _deny_handler(handler, grpc.StatusCode.UNAUTHENTICATED, reason)
        return denial


def interceptors(
    tokens: Iterable[str] = (), *, allow_unauthenticated_health: bool = False
) -> list[grpc.aio.ServerInterceptor]:
    """The security interceptors to install: token authentication when tokens are configured.

    Args:
        tokens: Accepted bearer tokens; empty turns authentication off (and installs nothing, so
            unauthenticated servers keep grpc's interceptor-free fast path).
        allow_unauthenticated_health: Leave the health service open when authentication is on.

    Returns:
        Interceptors for ``grpc.aio.server(interceptors=...)``.
    """
    tokens = frozenset(tokens)
    if not tokens:
        return []
    return [BearerTokenInterceptor(tokens, allow_unauthenticated_health=allow_unauthenticated_health)]
