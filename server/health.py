"""The standard ``grpc.health.v1`` service, kept in step with the registry.

Service names, so that load balancers and ``grpc_health_probe`` need no knowledge of ours:

* ``""`` (overall) and ``recsys.v1.RecommenderService``: SERVING while at least one model
  version is ready, NOT_SERVING before that and from the start of a shutdown;
* ``<model name>`` (e.g. ``mf``): SERVING while that model has a ready version, NOT_SERVING
  while it is loading, broken or removed. Names never seen are answered NOT_FOUND by the servicer;
* ``liveness``: SERVING from the start until a shutdown starts, whatever the models do. It is for
  Kubernetes' liveness probe: a server whose repository is broken is alive (restarting it would not
  help), so only readiness (``""``) should depend on the models.
"""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from protos.recsys.v1 import service_pb2

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["RecommenderService"].full_name
LIVENESS_SERVICE = "liveness"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthReporter:
    """Owns the health servicer and applies registry snapshots to it in order."""

    def __init__(self) -> None:
        self.servicer = health_aio.HealthServicer()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._known: set[str] = set()

    def update(self, known: set[str], ready: set[str]) -> None:
        """Schedules the statuses for this snapshot (callable from synchronous code on the loop)."""
        task = asyncio.get_running_loop().create_task(self._apply(set(known), set(ready)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, known: set[str], ready: set[str]) -> None:
        async with self._lock:
            overall = _SERVING if ready else _NOT_SERVING
            await self.servicer.set(LIVENESS_SERVICE, _SERVING)
            await self.servicer.set("", overall)
            await self.servicer.set(SERVICE_NAME, overall)
            for name in known | self._known:
                await self.servicer.set(name, _SERVING if name in ready else _NOT_SERVING)
            self._known |= known

    async def shut_down(self) -> None:
        """Marks every service NOT_SERVING for good (the start of a graceful shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.servicer.enter_graceful_shutdown()
