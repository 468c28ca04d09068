"""The requests a load test sends: real ids of the model, a realistic skew, built before the clock starts.

Ids come from the model repository's side files when the user gives ``--repository`` (the exact id
space, item popularity and each user's training history, which the sanity check needs for
``exclude_seen``). Without it they are discovered through the server with our client: ``GetModelMetadata`` gives the
catalogue sizes, a popularity-fallback ``Recommend`` lists every raw item id (most popular first),
and user ids are probed as ``"1".."N"`` (the MovieLens convention), failing with a clear message
when the server rejects them.

Users and items are drawn from a Zipf law over a popularity ranking (exponent ``skew``; 0 is
uniform): a few heavy users and blockbuster items, a long tail, as in real traffic. Every message
is serialised once, up front, so that sending costs the generator no protobuf work. With ``int_ids``
the same pairs go as packed integers (``user_int_ids``/``item_int_ids``), which only a model whose
ids are all decimal integers accepts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format

from client import AsyncRecsysClient, predict_request, recommend_request
from protos.recsys.v1 import model_config_pb2, service_pb2

from .int_ids import decimal_int64

_LOGGER = logging.getLogger(__name__)
METHODS = {"predict": "/recsys.v1.RecommenderService/Predict", "recommend": "/recsys.v1.RecommenderService/Recommend"}
_PROBE_USER = "\x00recsys-loadtest-probe"
_MAX_POOL_ROWS = 250_000
_SIDE_FILES = {
    model_config_pb2.SIDE_FILE_KIND_USER_IDS: "user_ids.npy",
    model_config_pb2.SIDE_FILE_KIND_ITEM_IDS: "item_ids.npy",
    model_config_pb2.SIDE_FILE_KIND_ITEM_POPULARITY: "item_popularity.npy",
    model_config_pb2.SIDE_FILE_KIND_HISTORY_OFFSETS: "history_offsets.npy",
    model_config_pb2.SIDE_FILE_KIND_HISTORY_ITEMS: "history_items.npy",
    model_config_pb2.SIDE_FILE_KIND_HISTORY_RATINGS: "history_ratings.npy",
}


class WorkloadError(RuntimeError):
    """The ids of the model cannot be found, or the workload settings are impossible."""


@dataclass(frozen=True)
class IdSpace:
    """The raw ids a model knows, with what makes traffic realistic and answers checkable.

    Attributes:
        user_ids: Raw user id of each user index, str [num_users].
        item_ids: Raw item id of each item index, str [num_items].
        item_popularity: Training ratings per item, float [num_items]; None if unknown.
        history_offsets: CSR offsets of each user's training items, int64 [num_users + 1]; None if unknown.
        history_items: Item index of each training rating, int64 [n]; None if unknown.
        history_ratings: The matching ratings in stars, float32 [n]; None if unknown.
        max_history_length: Most events an LSTM reads per history (0 when not an LSTM or unknown).
        rating_scale: ``(min, max)`` of predicted ratings in stars; None if unknown.
        source: Where the ids came from, for the report.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    item_popularity: np.ndarray | None = None
    history_offsets: np.ndarray | None = None
    history_items: np.ndarray | None = None
    history_ratings: np.ndarray | None = None
    max_history_length: int = 0
    rating_scale: tuple[float, float] | None = None
    source: str = ""

    def seen_items(self, user_index: int) -> np.ndarray | None:
        """Item indices the user rated in training, or None when histories are unknown."""
        if self.history_offsets is None or self.history_items is None:
            return None
        return self.history_items[self.history_offsets[user_index] : self.history_offsets[user_index + 1]]

    def recent_history(self, user_index: int) -> tuple[list[str], list[float]]:
        """The user's most recent ``max_history_length`` training events: raw item ids and ratings, oldest first.

        Raises:
            WorkloadError: histories, their ratings or the history length are unknown (no repository given).
        """
        if self.history_offsets is None or self.history_items is None or self.history_ratings is None:
            raise WorkloadError("sending histories needs the model's training histories: pass --repository PATH")
        if self.max_history_length < 1:
            raise WorkloadError("the model reads no histories (max_history_length is 0): histories are for LSTM models")
        end = int(self.history_offsets[user_index + 1])
        start = max(int(self.history_offsets[user_index]), end - self.max_history_length)
        items = self.item_ids[self.history_items[start:end]].tolist()
        return items, self.history_ratings[start:end].astype(float).tolist()

    def user_order(self) -> np.ndarray:
        """User indices, most active first (by history length) when known, else in index order."""
        if self.history_offsets is None:
            return np.arange(len(self.user_ids))
        return np.argsort(-np.diff(self.history_offsets), kind="stable")

    def item_order(self) -> np.ndarray:
        """Item indices, most popular first when known, else in index order."""
        if self.item_popularity is None:
            return np.arange(len(self.item_ids))
        return np.argsort(-np.asarray(self.item_popularity, dtype=np.float64), kind="stable")

    def integer_ids(self) -> tuple[np.ndarray, np.ndarray] | None:
        """User and item ids as int64 [num_users], [num_items] when all are decimal integers, else None."""
        users, items = decimal_int64(self.user_ids), decimal_int64(self.item_ids)
        return None if users is None or items is None else (users, items)


@dataclass(frozen=True)
class WorkloadSpec:
    """What each request asks.

    Attributes:
        method: ``predict`` or ``recommend``.
        model: Model name.
        version: Model version, 0 for the newest ready one.
        rows_per_request: (user, item) pairs per Predict call, or users per Recommend call.
        k: Items per user asked of Recommend.
        exclude_seen: Ask Recommend to leave out the user's training items.
        pool_size: Distinct pre-built requests, sent round-robin (capped to keep ~250k rows in memory).
        skew: Zipf exponent of user and item popularity; 0 draws uniformly.
        seed: Seed of the draws, so two runs send the same requests.
        int_ids: Predict only: send the pairs as integer ids (``user_int_ids``/``item_int_ids``); the same
            seed draws the same pairs as with string ids.
        histories: Recommend only (LSTM): send each drawn user's most recent training history instead of
            the user id, as a client does for a user the model never saw; the server then runs the
            LSTM over it on every call rather than reading a state encoded at export.
    """

    method: str = "predict"
    model: str = ""
    version: int = 0
    rows_per_request: int = 1
    k: int = 10
    exclude_seen: bool = True
    pool_size: int = 1024
    skew: float = 1.0
    seed: int = 0
    int_ids: bool = False
    histories: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise WorkloadError(f"method {self.method!r}: choose one of {sorted(METHODS)}")
        if not self.model:
            raise WorkloadError("no model name: pass --model NAME (see ListModels)")
        if self.rows_per_request < 1 or self.pool_size < 1 or self.k < 1:
            raise WorkloadError(
                f"rows_per_request={self.rows_per_request}, pool_size={self.pool_size} and k={self.k} must be >= 1"
            )
        if self.skew < 0:
            raise WorkloadError(f"skew={self.skew} must be >= 0 (0 is uniform)")
        if self.int_ids and self.method != "predict":
            raise WorkloadError("integer ids (--int-ids) exist for Predict only: drop it or use --method predict")
        if self.histories and self.method != "recommend":
            raise WorkloadError("histories (--histories) are sent by Recommend only: use --method recommend")


@dataclass(frozen=True)
class Workload:
    """Serialized requests ready to send.

    Attributes:
        spec: What they ask.
        method_path: Full gRPC method name, e.g. ``/recsys.v1.RecommenderService/Predict``.
        payloads: Serialized request messages, sent round-robin.
    """

    spec: WorkloadSpec
    method_path: str
    payloads: list[bytes]

    def parse_request(self, index: int) -> service_pb2.PredictRequest | service_pb2.RecommendRequest:
        """Decode payload ``index`` back into its message (for checking answers)."""
        message = service_pb2.PredictRequest if self.spec.method == "predict" else service_pb2.RecommendRequest
        return message.FromString(self.payloads[index % len(self.payloads)])


def _version_dir(repository: Path, model: str, version: int) -> Path:
    model_dir = repository / model
    if version > 0:
        path = model_dir / str(version)
        if not path.is_dir():
            raise WorkloadError(f"no version folder {path}: check --model, --version and --repository")
        return path
    versions = sorted((int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()), reverse=True)
    if not versions:
        raise WorkloadError(f"no version of model {model!r} under {model_dir}: check --model and --repository")
    return model_dir / str(versions[0])


def load_id_space(repository: Path, model: str, version: int = 0) -> IdSpace:
    """Read a model's ids, popularity and histories from its repository side files.

    Args:
        repository: Root of the model repository the server serves.
        model: Model name (folder under the repository).
        version: Version folder, 0 for the highest one.

    Returns:
        The id space, with popularity and histories when the files exist.

    Raises:
        WorkloadError: If the version folder or its id files are missing.
    """
    folder = _version_dir(Path(repository), model, version)
    names = dict(_SIDE_FILES)
    scale = None
    max_history_length = 0
    config_path = folder / "config.json"
    if config_path.is_file():
        config = json_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig(), ignore_unknown_fields=True)
        names.update({side.kind: side.path for side in config.side_files if side.kind in names})
        if config.HasField("rating_scale"):
            scale = (float(config.rating_scale.min), float(config.rating_scale.max))
        max_history_length = int(config.max_history_length)

    def load(kind: int, required: bool = False) -> np.ndarray | None:
        path = folder / names[kind]
        if not path.is_file():
            if required:
                raise WorkloadError(f"{path} is missing: is {folder} a complete exported model version?")
            return None
        return np.load(path, allow_pickle=False)

    return IdSpace(
        user_ids=load(model_config_pb2.SIDE_FILE_KIND_USER_IDS, required=True),
        item_ids=load(model_config_pb2.SIDE_FILE_KIND_ITEM_IDS, required=True),
        item_popularity=load(model_config_pb2.SIDE_FILE_KIND_ITEM_POPULARITY),
        history_offsets=load(model_config_pb2.SIDE_FILE_KIND_HISTORY_OFFSETS),
        history_items=load(model_config_pb2.SIDE_FILE_KIND_HISTORY_ITEMS),
        history_ratings=load(model_config_pb2.SIDE_FILE_KIND_HISTORY_RATINGS),
        max_history_length=max_history_length,
        rating_scale=scale,
        source=f"repository {folder}",
    )


async def discover_id_space(client: AsyncRecsysClient, model: str, version: int = 0) -> IdSpace:
    """Learn a model's ids from the server alone (no repository at hand).

    Args:
        client: A client of the server (its default deadline bounds each discovery call).
        model: Model name.
        version: Model version, 0 for the newest ready one.

    Returns:
        The id space, items ranked by popularity, without histories.

    Raises:
        WorkloadError: If a call fails, e.g. because the user ids are not ``"1".."N"``.
    """
    num_users = 0
    try:
        config = (await client.metadata(model, version)).config
        num_users = int(config.num_users)
        fallback = await client.recommend(
            model, [_PROBE_USER], k=int(config.num_items), allow_popularity_fallback=True, version=version
        )
        items = np.array(fallback.results[0].item_ids)
        popularity = np.asarray(fallback.results[0].scores, dtype=np.float32)
        users = np.array([str(i) for i in range(1, num_users + 1)])
        await client.predict(model, [users[0], users[-1]], [items[0], items[-1]], version=version)
    except grpc.aio.AioRpcError as error:
        hint = "pass --repository PATH of the repository the server serves"
        if error.code() is grpc.StatusCode.INVALID_ARGUMENT:
            hint = f"the server does not know users '1'..'{num_users}' and does not expose raw user ids: {hint}"
        raise WorkloadError(
            f"discovering the ids of model {model!r} failed with {error.code().name} ({error.details()}); {hint}"
        ) from error
    scale = (
        (float(config.rating_scale.min), float(config.rating_scale.max)) if config.HasField("rating_scale") else None
    )
    order = np.argsort(items, kind="stable")  # any order will do: popularity travels with each item
    return IdSpace(
        user_ids=users,
        item_ids=items[order],
        item_popularity=popularity[order],
        rating_scale=scale,
        source=f"server (GetModelMetadata + popularity fallback, users probed as '1'..'{len(users)}')",
    )


def zipf_probabilities(n: int, skew: float) -> np.ndarray:
    """Probability of each rank ``r`` (0 = most popular) proportional to ``1 / (r + 1) ** skew``."""
    weights = 1.0 / np.power(np.arange(1, n + 1, dtype=np.float64), skew)
    return weights / weights.sum()


def build_workload(spec: WorkloadSpec, ids: IdSpace) -> Workload:
    """Draw and serialize the pool of requests.

    Args:
        spec: What each request asks.
        ids: The model's id space.

    Returns:
        The workload, ``min(spec.pool_size, 250000 // rows_per_request)`` (at least 8) distinct requests.

    Raises:
        WorkloadError: If the id space is empty, ``k`` exceeds the catalogue, or integer ids are asked of an
            id space that has none.
    """
    if len(ids.user_ids) == 0 or len(ids.item_ids) == 0:
        raise WorkloadError(f"model {spec.model!r} has no users or no items ({ids.source})")
    if spec.method == "recommend" and spec.k > len(ids.item_ids):
        raise WorkloadError(f"k={spec.k} exceeds the catalogue of {len(ids.item_ids)} items: lower --k")
    user_ids, item_ids = ids.user_ids, ids.item_ids
    if spec.int_ids:
        integer = ids.integer_ids()
        if integer is None:
            raise WorkloadError(
                f"model {spec.model!r} has ids that are not all decimal integers ({ids.source}), so it cannot take "
                "integer ids: drop --int-ids"
            )
        user_ids, item_ids = integer
    rng = np.random.default_rng(spec.seed)
    pool = max(8, min(spec.pool_size, _MAX_POOL_ROWS // spec.rows_per_request))
    rows = pool * spec.rows_per_request
    user_indices = ids.user_order()[
        rng.choice(len(ids.user_ids), rows, p=zipf_probabilities(len(ids.user_ids), spec.skew))
    ]
    user_rows = user_ids[user_indices].reshape(pool, spec.rows_per_request)  # rows go to predict_request as arrays
    if spec.method == "predict":
        item_p = zipf_probabilities(len(ids.item_ids), spec.skew)
        items = item_ids[ids.item_order()[rng.choice(len(ids.item_ids), rows, p=item_p)]]
        item_rows = items.reshape(pool, spec.rows_per_request)
        payloads = [
            predict_request(spec.model, u, i, version=spec.version).SerializeToString()
            for u, i in zip(user_rows, item_rows, strict=True)
        ]
    elif spec.histories:
        index_rows = user_indices.reshape(pool, spec.rows_per_request)
        payloads = [
            recommend_request(
                spec.model,
                histories=[ids.recent_history(int(user)) for user in row],
                k=spec.k,
                exclude_seen=spec.exclude_seen,
                version=spec.version,
            ).SerializeToString()
            for row in index_rows
        ]
    else:
        payloads = [
            recommend_request(
                spec.model, u.tolist(), k=spec.k, exclude_seen=spec.exclude_seen, version=spec.version
            ).SerializeToString()
            for u in user_rows
        ]
    return Workload(spec=spec, method_path=METHODS[spec.method], payloads=payloads)
