"""A bare gRPC server of the recsys.v1 API: the transport ceiling, and a test double.

Two modes:

* ``ceiling`` answers every ``RecommenderService`` method with an empty message without parsing the
  request. Driven by the same generator as the real server, it measures what gRPC, asyncio and
  the loopback network alone cost on this machine: no server can beat it, so the benchmark quotes
  the real server as a fraction of it.
* ``fake`` parses requests and answers well-formed responses over a made-up catalogue (user and
  item ids ``"1"``..``"N"``, also accepted as the integers 1..N), optionally after a fixed delay,
  one call at a time, failing on purpose with chosen status codes, or returning wrong answers. The
  load tester's own tests drive it.

Run it as a separate process with ``python -m loadtest.fake_server --mode ceiling --port 50099``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from protos.recsys.v1 import model_config_pb2, service_pb2, service_pb2_grpc

_LOGGER = logging.getLogger(__name__)
SERVICE_NAME = "recsys.v1.RecommenderService"
METHODS = ("Predict", "Recommend", "ListModels", "GetModelMetadata")
CORRUPTIONS = ("none", "count", "nan", "order")


@dataclass(frozen=True)
class FakeServerConfig:
    """Behaviour of the fake server.

    Attributes:
        mode: ``ceiling`` (empty answers, requests not parsed) or ``fake`` (well-formed answers).
        delay_s: Time each call takes before it answers, in seconds (asyncio sleep: no CPU used).
        serial: Serve one call at a time, so a delay becomes a queue (a stalled server).
        fail_codes: Status of successive Predict/Recommend calls, cycled, e.g. ``("OK", "UNAVAILABLE")``.
        corrupt: Wrong answers on purpose: ``count`` (one row short), ``nan`` (NaN scores),
            ``order`` (scores ascending).
        model_name: The only model served.
        num_users: Users ``"1"``..``str(num_users)``.
        num_items: Items ``"1"``..``str(num_items)``; item ``"1"`` is the most popular.
        token: When set, every call must carry ``authorization: Bearer <token>`` (else UNAUTHENTICATED).
        integer_ids: Accept Predict's ``user_int_ids``/``item_int_ids`` and say so in the metadata, as the real
            server does for decimal ids; False acts like a server that does not (INVALID_ARGUMENT).
    """

    mode: str = "fake"
    delay_s: float = 0.0
    serial: bool = False
    fail_codes: tuple[str, ...] = ("OK",)
    corrupt: str = "none"
    model_name: str = "fake"
    num_users: int = 50
    num_items: int = 40
    token: str | None = None
    integer_ids: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("ceiling", "fake"):
            raise ValueError(f"fake server mode {self.mode!r}: choose 'ceiling' or 'fake'")
        if self.corrupt not in CORRUPTIONS:
            raise ValueError(f"fake server corrupt={self.corrupt!r}: choose one of {CORRUPTIONS}")
        if not self.fail_codes:
            raise ValueError("fake server fail_codes is empty: give at least ('OK',)")
        for code in self.fail_codes:
            if code not in grpc.StatusCode.__members__:
                raise ValueError(f"fake server fail code {code!r} is not a grpc.StatusCode name, e.g. UNAVAILABLE")


@dataclass
class _Behaviour:
    config: FakeServerConfig
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    codes: Any = None

    def __post_init__(self) -> None:
        self.codes = itertools.cycle(self.config.fail_codes)

    async def run(self, context: grpc.aio.ServicerContext, answer: Callable[[], Any]) -> Any:
        code = grpc.StatusCode[next(self.codes)]
        if self.config.serial:
            async with self.lock:
                await self._delay()
        else:
            await self._delay()
        if code is not grpc.StatusCode.OK:
            await context.abort(code, f"fake server failing on purpose with {code.name}")
        return answer()

    async def _delay(self) -> None:
        if self.config.delay_s > 0:
            await asyncio.sleep(self.config.delay_s)


class FakeRecommender(service_pb2_grpc.RecommenderServiceServicer):
    """Well-formed answers over a made-up catalogue; see :class:`FakeServerConfig`."""

    def __init__(self, config: FakeServerConfig) -> None:
        self._config = config
        self._behaviour = _Behaviour(config)
        self._users = {str(i) for i in range(1, config.num_users + 1)}
        self._items = [str(i) for i in range(1, config.num_items + 1)]
        self._item_set = set(self._items)
        self._int_users = range(1, config.num_users + 1)
        self._int_items = range(1, config.num_items + 1)

    def _spec(self) -> service_pb2.ModelSpec:
        return service_pb2.ModelSpec(name=self._config.model_name, version=1)

    async def _check_model(self, spec: service_pb2.ModelSpec, context: grpc.aio.ServicerContext) -> None:
        if self._config.token is not None:
            sent = dict(context.invocation_metadata() or ()).get("authorization")
            if sent != f"Bearer {self._config.token}":
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if spec.name != self._config.model_name:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {spec.name!r}; serving only fake")

    async def Predict(
        self, request: service_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.PredictResponse:
        """Rates each pair 3.5 (NaN or one short when corrupting), after the configured behaviour.

        Pairs come as strings or as integers (``user_int_ids``/``item_int_ids``), never both, as in service.proto.
        """
        await self._check_model(request.model, context)
        pairs, problem = self._pairs(request)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        rows = pairs - (self._config.corrupt == "count")
        value = math.nan if self._config.corrupt == "nan" else 3.5
        return await self._behaviour.run(
            context, lambda: service_pb2.PredictResponse(model=self._spec(), ratings=[value] * rows)
        )

    def _pairs(self, request: service_pb2.PredictRequest) -> tuple[int, str]:
        """Number of pairs, and what is wrong with them ("" when nothing)."""
        users, items, known_users, known_items = request.user_ids, request.item_ids, self._users, self._item_set
        if request.user_int_ids or request.item_int_ids:
            if users or items:
                return 0, "set user_ids/item_ids or user_int_ids/item_int_ids, not both"
            if not self._config.integer_ids:
                return 0, f"model {self._config.model_name!r} does not take integer ids: send user_ids/item_ids"
            users, items, known_users, known_items = (
                request.user_int_ids,
                request.item_int_ids,
                self._int_users,
                self._int_items,
            )
        unknown = [u for u in users if u not in known_users] + [i for i in items if i not in known_items]
        if unknown or len(users) != len(items) or not users:
            return 0, f"bad pairs: {len(users)} users, {len(items)} items; unknown ids {unknown[:5]}"
        return len(users), ""

    async def Recommend(
        self, request: service_pb2.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RecommendResponse:
        """Ranks items "1".."k" for every user (fallback flagged for unknown users when allowed)."""
        await self._check_model(request.model, context)
        if not 1 <= request.k <= len(self._items):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"k={request.k} outside 1..{len(self._items)}")
        results = [self._result(user, request) for user in request.user_ids]
        if self._config.corrupt == "count":
            results = results[:-1]
        return await self._behaviour.run(
            context, lambda: service_pb2.RecommendResponse(model=self._spec(), results=results)
        )

    def _result(self, user: str, request: service_pb2.RecommendRequest) -> service_pb2.RecommendResult:
        fallback = user not in self._users
        if fallback and not request.allow_popularity_fallback:
            return service_pb2.RecommendResult(user_id=user)
        scores = [float(len(self._items) - rank) for rank in range(request.k)]
        if self._config.corrupt == "order":
            scores.reverse()
        if self._config.corrupt == "nan":
            scores[0] = math.nan
        return service_pb2.RecommendResult(
            user_id=user, item_ids=self._items[: request.k], scores=scores, fallback=fallback
        )

    async def GetModelMetadata(
        self, request: service_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetModelMetadataResponse:
        """Describes the fake model: an MF config over the made-up catalogue."""
        await self._check_model(request.model, context)
        config = model_config_pb2.ModelConfig(
            name=self._config.model_name,
            version=1,
            architecture=model_config_pb2.ARCHITECTURE_MF,
            num_users=self._config.num_users,
            num_items=self._config.num_items,
            rating_scale=model_config_pb2.RatingScale(min=1.0, max=5.0),
        )
        return service_pb2.GetModelMetadataResponse(
            status=service_pb2.ModelVersionStatus(version=1, state=service_pb2.VERSION_STATE_READY),
            config=config,
            backend="fake",
            integer_ids=self._config.integer_ids,
        )

    async def ListModels(
        self, request: service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListModelsResponse:
        """Lists the one fake model, ready."""
        status = service_pb2.ModelVersionStatus(version=1, state=service_pb2.VERSION_STATE_READY)
        return service_pb2.ListModelsResponse(
            models=[service_pb2.ModelStatus(name=self._config.model_name, versions=[status])]
        )


def _ceiling_handler() -> grpc.GenericRpcHandler:
    async def empty(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    handler = grpc.unary_unary_rpc_method_handler(empty, request_deserializer=None, response_serializer=None)
    return grpc.method_handlers_generic_handler(SERVICE_NAME, dict.fromkeys(METHODS, handler))


async def start_fake_server(config: FakeServerConfig, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, int]:
    """Start a fake or ceiling server on the running event loop.

    Args:
        config: Its behaviour.
        host: Interface to bind; keep the loopback default outside a deliberate experiment.
        port: TCP port, 0 for any free one.

    Returns:
        The started ``grpc.aio.Server`` (stop it with ``await server.stop(None)``) and its port.

    Raises:
        RuntimeError: If the port cannot be bound.
    """
    server = grpc.aio.server()
    if config.mode == "ceiling":
        server.add_generic_rpc_handlers((_ceiling_handler(),))
    else:
        service_pb2_grpc.add_RecommenderServiceServicer_to_server(FakeRecommender(config), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind {host}:{port}: the port is taken or the address is not local")
    await server.start()
    return server, bound


async def _serve(config: FakeServerConfig, host: str, port: int, ready: Callable[[int], Awaitable[None]]) -> None:
    server, bound = await start_fake_server(config, host, port)
    await ready(bound)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(None)


def main(argv: list[str] | None = None) -> None:
    """Serve a ceiling or fake server until interrupted; prints ``listening on PORT`` once ready."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.fake_server",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--mode", choices=("ceiling", "fake"), default="ceiling", help="what to answer")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 for any free one")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="time each call takes, in milliseconds")
    parser.add_argument("--serial", action="store_true", help="serve one call at a time (a stalled server)")
    parser.add_argument("--fail-codes", default="OK", help="comma list of status codes cycled over calls")
    parser.add_argument("--model", default="fake", help="name of the only model served")
    args = parser.parse_args(argv)
    config = FakeServerConfig(
        mode=args.mode,
        delay_s=args.delay_ms / 1e3,
        serial=args.serial,
        fail_codes=tuple(c.strip().upper() for c in args.fail_codes.split(",")),
        model_name=args.model,
    )

    async def ready(port: int) -> None:
        print(f"listening on {port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, args.host, args.port, ready))


if __name__ == "__main__":
    main()
