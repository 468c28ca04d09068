"""One load test end to end: find the model's ids, build the requests, run the sweep."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from client import AsyncRecsysClient
from protos.recsys.v1 import model_config_pb2

from .report import StepReport
from .sweep import SweepConfig, run_sweep
from .workload import IdSpace, WorkloadError, WorkloadSpec, build_workload, discover_id_space, load_id_space

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadTestConfig:
    """A whole load test.

    Attributes:
        sweep: Target, steps and bounds.
        workload: What each request asks.
        repository: Model repository the server serves, to read the exact ids and histories; None
            discovers ids through the server.
    """

    sweep: SweepConfig
    workload: WorkloadSpec
    repository: Path | None = None


@dataclass
class LoadTestResult:
    """What a load test found.

    Attributes:
        steps: One report per step.
        server: What the server says about the model (backend, providers, batching), from GetModelMetadata.
        id_source: Where the request ids came from.
        requests_built: Distinct pre-built requests.
    """

    steps: list[StepReport]
    server: dict[str, Any] = field(default_factory=dict)
    id_source: str = ""
    requests_built: int = 0


async def describe_model(client: AsyncRecsysClient, spec: WorkloadSpec) -> dict[str, Any]:
    """Ask the server how it serves the model (backend, providers, batching) for the report header.

    Args:
        client: A client of the server.
        spec: The workload (model name and version).

    Returns:
        Plain facts for the report.

    Raises:
        WorkloadError: If the server cannot be reached or does not know the model.
    """
    try:
        meta = await client.metadata(spec.model, spec.version)
    except grpc.aio.AioRpcError as error:
        raise WorkloadError(
            f"GetModelMetadata for model {spec.model!r} failed with {error.code().name}: {error.details()}. "
            "Is the server running at the target, and is the model name right?"
        ) from error
    return {
        "model": meta.config.name,
        "version": meta.config.version or meta.status.version,
        "architecture": model_config_pb2.Architecture.Name(meta.config.architecture).removeprefix("ARCHITECTURE_"),
        "state": meta.status.state,
        "backend": meta.backend,
        "execution_providers": meta.execution_providers,
        "batching": {
            "max_batch_size": meta.max_batch_size,
            "max_queue_delay_us": meta.max_queue_delay_us,
            "max_queue_rows": meta.max_queue_rows,
        },
        "num_users": meta.config.num_users,
        "num_items": meta.config.num_items,
        "integer_ids": meta.integer_ids,
    }


async def run_loadtest(config: LoadTestConfig, ids: IdSpace | None = None) -> LoadTestResult:
    """Discover the model, build the requests and run the sweep.

    Args:
        config: The load test.
        ids: A known id space (skips reading the repository or asking the server).

    Returns:
        The result.

    Raises:
        WorkloadError: If the server or the model cannot be reached, the ids cannot be found, or integer ids
            are asked of a model that does not take them.
    """
    connection = config.sweep.connection
    try:
        [client] = dataclasses.replace(connection, channels=1).open()
    except ValueError as error:
        raise WorkloadError(f"cannot connect to {connection.target}: {error}") from error
    try:
        server = await describe_model(client, config.workload)
        if config.workload.int_ids and not server["integer_ids"]:
            raise WorkloadError(
                f"model {server['model']!r} v{server['version']} does not take integer ids (GetModelMetadata says "
                "integer_ids is false: its ids are not all decimal integers, or the server predates them): "
                "drop --int-ids"
            )
        if ids is None and config.repository is not None:
            ids = load_id_space(config.repository, config.workload.model, config.workload.version)
        elif ids is None:
            ids = await discover_id_space(client, config.workload.model, config.workload.version)
    finally:
        await client.close()
    workload = build_workload(config.workload, ids)
    _LOGGER.info("built %d requests from ids of %s", len(workload.payloads), ids.source)
    steps = await run_sweep(config.sweep, workload, ids)
    return LoadTestResult(steps=steps, server=server, id_source=ids.source, requests_built=len(workload.payloads))
