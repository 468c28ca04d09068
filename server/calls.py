"""The one wrapper every RPC handler runs in: times the call, counts it, and turns exceptions into statuses.

Shared by ``recsys.v1`` (``server/servicer.py``) and the Open Inference Protocol (``server/oip``), so that
both APIs map the same errors to the same codes and count calls in the same metrics. Handlers raise;
they never abort themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from server.errors import DeadlineExceeded, status_of
from server.metrics import Metrics

Response = TypeVar("Response")


def check_deadline(context: grpc.aio.ServicerContext) -> None:
    """Raise DeadlineExceeded when the caller's deadline has already passed."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed before it reached the model; allow more time")


async def serve_call(
    metrics: Metrics,
    method: str,
    model_name: str,
    context: grpc.aio.ServicerContext,
    handler: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``handler`` for one call of ``method`` on ``model_name``, recording its status and latency.

    Raises:
        asyncio.CancelledError: the call was cancelled (counted as CANCELLED or DEADLINE_EXCEEDED).
    """
    started = time.perf_counter()
    try:
        check_deadline(context)
        response = await handler()
    except asyncio.CancelledError:
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0
        code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
        metrics.record_request(method, model_name, code, time.perf_counter() - started)
        raise
    except Exception as error:  # the one place errors become statuses
        code, details = status_of(error, method)
        label = "" if code == grpc.StatusCode.NOT_FOUND else model_name
        metrics.record_request(method, label, code, time.perf_counter() - started)
        await context.abort(code, details)
    metrics.record_request(method, model_name, grpc.StatusCode.OK, time.perf_counter() - started)
    return response
