"""Typed serving errors and the one place that maps them to gRPC status codes.

Everything below the servicer raises these exceptions with a message that names the field,
the value, the limit and the model; :func:`status_of` turns any exception into the status
the caller sees. Anything unexpected becomes INTERNAL with a generic message, and its
traceback is logged here, once.
"""

from __future__ import annotations

import logging

import grpc

_LOGGER = logging.getLogger(__name__)


class ServingError(Exception):
    """Base of the errors a caller can act on; ``code`` is the gRPC status they get."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(ServingError):
    """The request itself is wrong (unknown ids, empty, out of range): fix it, do not retry."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ModelNotFound(ServingError):
    """No such model or version in the repository."""

    code = grpc.StatusCode.NOT_FOUND


class ModelNotReady(ServingError):
    """The version exists but is loading, broken or unloading: retry later or pick another version."""

    code = grpc.StatusCode.UNAVAILABLE


class ServerShuttingDown(ServingError):
    """The server stopped accepting work: retry on another replica."""

    code = grpc.StatusCode.UNAVAILABLE


class QueueFull(ServingError):
    """The model's batching queue holds ``max_queue_rows`` already: retry with backoff."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ServingError):
    """The caller's deadline passed before the rows were computed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelLoadError(Exception):
    """A model version cannot be loaded; the message becomes its UNAVAILABLE reason."""


INTERNAL_MESSAGE = "internal server error; the server log has the traceback"
MAX_DETAILS_CHARS = 1000
"""Status details travel as metadata, which clients limit (8 KiB by default): messages are cut here."""


def status_of(error: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
    """The status code and message a caller gets for ``error``.

    Args:
        error: What the handler raised.
        method: RPC name, used only to log unexpected errors.

    Returns:
        ``(code, details)`` with details cut to ``MAX_DETAILS_CHARS``; a generic INTERNAL message
        for anything that is not a :class:`ServingError` (whose traceback is logged), so internals
        never leak to callers.
    """
    if isinstance(error, ServingError):
        details = str(error)
        if len(details) > MAX_DETAILS_CHARS:
            details = details[: MAX_DETAILS_CHARS - 15] + "… (truncated)"
        return error.code, details
    _LOGGER.error("unexpected error in %s", method, exc_info=error)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
