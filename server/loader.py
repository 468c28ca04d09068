"""Loading one version folder into a :class:`ServedModel` (blocking: run it in a thread)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor

from server.batching import BatchingSettings, BatchObserver
from server.catalog import Catalog
from server.config import ServerConfig
from server.engine import InferenceEngine
from server.model import RequestLimits, ServedModel
from server.repository import VersionFolder, artifact_files, load_side_files, read_config
from server.runtime import SignatureSpec, load_runtime
from server.signatures import served_signatures

_LOGGER = logging.getLogger(__name__)


def batching_settings(config: ServerConfig) -> BatchingSettings:
    """The batcher settings every loaded version gets from the server config."""
    return BatchingSettings(
        max_batch_size=config.max_batch_size,
        max_queue_delay_us=config.max_queue_delay_us,
        max_queue_rows=config.max_queue_rows,
        batches_in_flight=config.batches_in_flight,
        inline_max_us=config.inline_max_us,
        max_batch_cells=config.max_batch_cells,
    )


def load_version(
    folder: VersionFolder,
    config: ServerConfig,
    executor: Executor,
    observers: dict[str, BatchObserver] | None = None,
) -> ServedModel:
    """Reads, checks, loads and warms up one model version.

    Every file is checked against the SHA-256 in ``config.json`` before it is opened.

    Args:
        folder: The version folder found by ``repository.scan``.
        config: Backend, device, batching and limits.
        executor: Thread pool the version's batchers run inference in.
        observers: Signature name -> receiver of batch statistics (metrics).

    Returns:
        A version ready to serve.

    Raises:
        ModelLoadError: anything wrong with the folder's files; the message is the version's reason.
    """
    started = time.perf_counter()
    model_config = read_config(folder)
    files = artifact_files(model_config, folder.path, config.backend)
    signatures = served_signatures(model_config)
    specs = [SignatureSpec(s.name, s.inputs, s.output) for s in signatures]
    label = f"{folder.name!r} v{folder.version}"
    catalog = Catalog(model_config, load_side_files(model_config, folder.path), label)
    runtime = load_runtime(config.backend, files, specs, device=config.device, intra_op_threads=config.intra_op_threads)
    engine = InferenceEngine(
        signatures, runtime, batching_settings(config), executor, catalog.num_items, label, observers
    )
    limits = RequestLimits(config.max_rows_per_request, config.max_message_bytes)
    model = ServedModel(model_config, catalog, engine, limits)
    model.warm_up(max(1, min(config.max_batch_size, 64)))
    _LOGGER.info(
        "loaded model %s (%d users, %d items) on %s %s in %.2fs",
        label,
        catalog.num_users,
        catalog.num_items,
        config.backend,
        runtime.providers,
        time.perf_counter() - started,
    )
    return model
