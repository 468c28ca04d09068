"""Building, starting and gracefully stopping the gRPC server.

:class:`RunningServer` is the handle tests and the CLI share: ``await start()`` binds the port,
loads the repository, then starts serving (so a client that can connect finds the models that were
there at start ready; later versions load in the background); ``await stop()`` stops accepting
(new calls get UNAVAILABLE), lets in-flight calls finish within the grace period, then unloads
every model. :func:`serve` runs one until SIGTERM or SIGINT, draining first for
``config.drain_delay_s`` seconds: health reads NOT_SERVING while calls are still answered, so that a
load balancer (Kubernetes removing the pod from its endpoints) stops sending before the port closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.recsys.v1 import service_pb2
from server import oip, request_guard, security
from server.config import ConfigError, ServerConfig
from server.health import SERVICE_NAME, HealthReporter
from server.metrics import Metrics
from server.registry import ModelRegistry
from server.servicer import RecommenderService

_LOGGER = logging.getLogger(__name__)


def grpc_options(config: ServerConfig) -> list[tuple[str, int]]:
    """Channel options of the server: explicit message limits; port sharing only between our own processes.

    With ``processes`` 1 SO_REUSEPORT stays off, so that a second server on a taken port fails at
    once instead of silently sharing it; with more, the supervised children share it on purpose.
    """
    return [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 1 if config.processes > 1 else 0),
    ]


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    return security.server_credentials(security.TlsConfig(config.tls_cert, config.tls_key, config.tls_client_ca))


def _auth_interceptors(config: ServerConfig) -> list[grpc.aio.ServerInterceptor]:
    tokens = set(config.auth_tokens)
    if config.auth_token_file is not None:
        tokens |= security.load_token_file(config.auth_token_file)
    return security.interceptors(tokens, allow_unauthenticated_health=config.allow_unauthenticated_health)


def _tracing_interceptors(config: ServerConfig) -> list[grpc.aio.ServerInterceptor]:
    """The span-per-call interceptor when ``--tracing`` asks for one (first, so rejected calls get spans too)."""
    if config.tracing == "off":
        return []
    try:
        from server import tracing  # the optional 'tracing' extra: imported only when asked for
    except ImportError as error:
        raise ConfigError(
            f"--tracing {config.tracing} needs OpenTelemetry ({error.name} is missing): "
            "pip install 'recsys-serve[tracing]', or pass --tracing off"
        ) from None
    return [tracing.interceptor_from_config(config)]


class RunningServer:
    """One server: gRPC endpoint, model registry, metrics and health.

    Args:
        config: What to serve and how.
        interceptors: Extra ``grpc.aio.ServerInterceptor`` s (tracing, ...), run after the token check
            that ``config.auth_tokens`` / ``auth_token_file`` turn on.
        credentials: TLS credentials for the port; None uses ``config.tls_cert`` / ``tls_key`` if set,
            else plain text.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.config = config
        self._interceptors = list(interceptors)
        self._credentials = credentials
        self.metrics = Metrics(multiprocess=config.processes > 1)
        self.health = HealthReporter()
        self._executor: ThreadPoolExecutor | None = None
        self.registry: ModelRegistry | None = None
        self._server: grpc.aio.Server | None = None
        self.port: int = 0
        self._stopped = asyncio.Event()
        self._tracing: list[grpc.aio.ServerInterceptor] = []

    @property
    def target(self) -> str:
        """``host:port`` that clients connect to."""
        return self.config.replace(port=self.port or self.config.port).address

    async def start(self) -> None:
        """Binds the port, loads every model in the repository, then starts serving.

        Raises:
            SecurityConfigError: the port cannot be bound, or the TLS or token files are unusable.
            FileNotFoundError: the repository folder does not exist.
        """
        config = self.config
        if not config.repository.is_dir():
            raise FileNotFoundError(f"model repository {config.repository} is not a folder; pass --repository")
        credentials = self._credentials or _tls_credentials(config)
        self._tracing = _tracing_interceptors(config)
        interceptors = self._tracing + _auth_interceptors(config) + self._interceptors
        if credentials is None and not security.is_loopback(config.host):
            _LOGGER.warning("serving plain text on %s: pass --tls-cert and --tls-key to encrypt", config.host)
        if not config.authenticated and not security.is_loopback(config.host):
            _LOGGER.warning(
                "no authentication on %s: anyone who reaches it can call every model; "
                "set --auth-token-file or RECSYS_AUTH_TOKENS",
                config.host,
            )
        self._executor = ThreadPoolExecutor(config.workers, thread_name_prefix="inference")
        self.registry = ModelRegistry(config, self._executor, self.metrics, on_change=self._health_changed)
        self.metrics.track_queues(self.registry.queue_depths)
        self._server = grpc.aio.server(interceptors=interceptors, options=grpc_options(config))
        request_guard.add_guarded_service(
            service_pb2.DESCRIPTOR.services_by_name["RecommenderService"],
            RecommenderService(self.registry, self.metrics, config.backend),
            self._server,
        )
        oip_service = oip.add_to_server(self._server, self.registry, self.metrics, config.backend)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self._server)
        if config.reflection:
            names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
            names += (oip_service,)
            reflection.enable_server_reflection(names, self._server)
        self._health_changed()
        # One process binds first, so that a taken port fails before minutes of loading. A supervised
        # child binds after loading: its listening socket joins the shared port's SO_REUSEPORT group
        # at once, and connections the kernel hands it would wait in its backlog while it loads.
        shared_port = config.processes > 1
        if not shared_port:
            self.port = security.bind(self._server, config.address, credentials)
        if config.metrics_port:
            self.metrics.serve(config.host, config.metrics_port)
        _LOGGER.info("loading %s (backend %s) before serving on %s", config.repository, config.backend, self.target)
        await self.registry.start()
        if shared_port:
            self.port = security.bind(self._server, config.address, credentials)
        await self._server.start()
        serving = sorted(self.registry.ready_models())
        _LOGGER.info(
            "serving %s on %s: %d of %d models ready %s",
            SERVICE_NAME,
            self.target,
            len(serving),
            len(self.registry.models()),
            serving,
        )

    def _health_changed(self) -> None:
        if self.registry is not None:
            self.health.update(set(self.registry.models()), self.registry.ready_models())

    async def drain(self, delay_s: float | None = None) -> None:
        """Turns every health status NOT_SERVING, then keeps answering calls for ``delay_s`` seconds.

        Kubernetes and gRPC load balancers notice NOT_SERVING (or the pod's removal from the
        endpoints) only after a while; closing the port at once would fail the calls they still send.

        Args:
            delay_s: Seconds to keep serving; defaults to ``config.drain_delay_s``.
        """
        delay = self.config.drain_delay_s if delay_s is None else delay_s
        await self.health.shut_down()
        if delay > 0 and not self._stopped.is_set():
            _LOGGER.info("draining: health NOT_SERVING, still answering calls for %.1fs", delay)
            await asyncio.sleep(delay)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stops accepting calls, lets running ones finish within the grace period, unloads models.

        Args:
            grace_s: Seconds in-flight calls get; defaults to ``config.grace_s``.
        """
        if self._stopped.is_set():
            return
        grace = self.config.grace_s if grace_s is None else grace_s
        await self.health.shut_down()
        if self._server is not None:
            _LOGGER.info("shutting down: finishing in-flight calls within %.1fs", grace)
            await self._server.stop(grace)
        if self.registry is not None:
            await self.registry.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self.metrics.stop()
        for interceptor in self._tracing:
            interceptor.close()  # flushes the spans still queued for export
        self._stopped.set()
        _LOGGER.info("server stopped")

    async def wait_stopped(self) -> None:
        """Returns once :meth:`stop` has finished."""
        await self._stopped.wait()

    async def __aenter__(self) -> RunningServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve(
    config: ServerConfig,
    *,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> None:
    """Runs a server until one of ``signals``, then drains and shuts it down gracefully.

    Args:
        config: What to serve and how.
        signals: Signals that start the shutdown (a supervised child listens to SIGTERM only: its
            parent forwards Ctrl-C once, instead of each child seeing it twice).
        interceptors: Extra server interceptors (tracing).
    """
    server = RunningServer(config, interceptors=interceptors)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in signals:
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        await server.start()
        await stop_requested.wait()
        _LOGGER.info("signal received")
        await server.drain()
    finally:
        await server.stop()
        for signum in signals:
            loop.remove_signal_handler(signum)
