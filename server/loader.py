"""Loading one version folder into a :class:`ServedModel` (blocking: run it in a thread)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from protos.recsys.v1 import model_config_pb2 as mc
from server.batching import BatchingSettings, BatchObserver
from server.catalog import Catalog
from server.config import ServerConfig
from server.engine import InferenceEngine
from server.errors import ModelLoadError
from server.model import RequestLimits, ServedModel
from server.repository import VersionFolder, artifact_files, checked_file, load_side_files, read_config
from server.retrieval import RetrievalIndex, UserRetrieval, set_search_threads
from server.runtime import SignatureSpec, load_runtime
from server.signatures import served_signatures

_RANKING_TABLES = frozenset(
    {
        mc.SIDE_FILE_KIND_RANKING_USER_VECTORS,
        mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS,
        mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS,
    }
)

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


def uses_retrieval_index(model_config: mc.ModelConfig, config: ServerConfig) -> bool:
    """Whether Recommend by user id is served from the version's index: it has one and the catalogue is large.

    Large means at least the server's ``retrieval_min_items``, or, when that is -1, the version's own
    ``retrieval_index.min_num_items``.
    """
    if not model_config.HasField("retrieval_index"):
        return False
    threshold = config.retrieval_min_items
    if threshold < 0:
        threshold = model_config.retrieval_index.min_num_items
    return model_config.num_items >= threshold


def load_user_retrieval(
    model_config: mc.ModelConfig, folder: Path, side_files: dict[int, np.ndarray], executor: Executor
) -> UserRetrieval:
    """The version's retrieval index over its (already checked, memory-mapped) ranking tables.

    Raises:
        ModelLoadError: the index file fails its check, faiss is missing, or the tables are absent or disagree.
    """
    described = model_config.retrieval_index
    missing = [mc.SideFileKind.Name(kind) for kind in sorted(_RANKING_TABLES) if kind not in side_files]
    if missing:
        raise ModelLoadError(f"config.json has a retrieval_index but no side files {missing}; re-export the version")
    index_path = checked_file(folder, described.path, described.sha256)
    paths = {side.kind: folder / side.path for side in model_config.side_files}
    index = RetrievalIndex.load(
        index_path, paths[mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS], paths[mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS]
    )
    return UserRetrieval(index, side_files[mc.SIDE_FILE_KIND_RANKING_USER_VECTORS], described.signature, executor)


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
    indexed = uses_retrieval_index(model_config, config)
    skip = frozenset() if indexed else _RANKING_TABLES  # the exact path reads its tables from the artifact
    side_files = load_side_files(model_config, folder.path, mmap=indexed, skip=skip)
    catalog = Catalog(model_config, side_files, label)
    runtime = load_runtime(config.backend, files, specs, device=config.device, intra_op_threads=config.intra_op_threads)
    engine = InferenceEngine(
        signatures, runtime, batching_settings(config), executor, catalog.num_items, label, observers
    )
    limits = RequestLimits(config.max_rows_per_request, config.max_message_bytes)
    retrieval = None
    if indexed:
        set_search_threads(config.intra_op_threads)
        retrieval = load_user_retrieval(model_config, folder.path, side_files, executor)
    if retrieval is not None and retrieval.signature != engine.routes.recommend_users.name:
        _LOGGER.warning(
            "model %s: its retrieval index stands in for %r but Recommend by user id runs %r; scoring exactly",
            label,
            retrieval.signature,
            engine.routes.recommend_users.name,
        )
        retrieval = None
    model = ServedModel(model_config, catalog, engine, limits, retrieval=retrieval)
    model.warm_up(max(1, min(config.max_batch_size, 64)))
    _LOGGER.info(
        "loaded model %s (%d users, %d items) on %s %s%s in %.2fs",
        label,
        catalog.num_users,
        catalog.num_items,
        config.backend,
        runtime.providers,
        f", Recommend by user id from a {model_config.retrieval_index.kind} index" if indexed else "",
        time.perf_counter() - started,
    )
    return model
