"""A loaded model version and the domain logic of Predict and Recommend (raw ids in, arrays out).

A version holds its config, catalogue, runtime and batchers. The servicer converts protos; the
registry decides which versions exist; this module knows how to answer one request with one version.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protos.recsys.v1 import model_config_pb2 as mc
from server import ranking
from server.batching import BatchingSettings, BatchObserver, DynamicBatcher, Inputs
from server.catalog import Catalog, Histories
from server.errors import InvalidInput, ModelLoadError
from server.runtime import Runtime, SignatureSpec

_LOGGER = logging.getLogger(__name__)

_PAIR_INPUTS = {"predict": {"user", "item"}, "recommend": {"user"}}
_SEQUENCE_INPUTS = {
    "predict": {"history_items", "history_ratings", "lengths", "item"},
    "recommend": {"history_items", "history_ratings", "lengths"},
    "predict_user": _PAIR_INPUTS["predict"],
    "recommend_user": _PAIR_INPUTS["recommend"],
}
# The LSTM's signatures over stored histories encoded at export -> the call they answer.
_STORED_HISTORY = {"predict_user": "predict", "recommend_user": "recommend"}


def signature_specs(config: mc.ModelConfig) -> list[SignatureSpec]:
    """The signatures of a config this server runs, checked against its architecture.

    Every model has ``predict`` and ``recommend``. LSTM versions exported with their stored histories
    encoded also have ``predict_user`` and ``recommend_user`` (user index in, as for MF), which then
    answer calls that name users; older LSTM versions answer those by running ``predict``/``recommend``
    over the stored histories. Signatures of other names are ignored.

    Raises:
        ModelLoadError: a signature's inputs are not those its architecture takes.
    """
    expected = _SEQUENCE_INPUTS if config.architecture == mc.ARCHITECTURE_LSTM else _PAIR_INPUTS
    specs = []
    for signature in config.signatures:
        if signature.name not in expected:
            continue
        inputs = tuple(tensor.name for tensor in signature.inputs)
        if set(inputs) != expected[signature.name] or len(signature.outputs) != 1:
            raise ModelLoadError(
                f"signature {signature.name!r} takes {list(inputs)} -> {[o.name for o in signature.outputs]}, "
                f"but a {mc.Architecture.Name(config.architecture)} model takes {sorted(expected[signature.name])} "
                "-> one output"
            )
        specs.append(SignatureSpec(signature.name, inputs, signature.outputs[0].name))
    return specs


@dataclass(frozen=True)
class RecommendQuery:
    """One Recommend call in domain terms (see ``RecommendRequest`` in service.proto).

    Attributes:
        user_ids: Raw user ids, or empty when histories are given.
        history_items: Per history, raw item ids oldest first (LSTM only).
        history_ratings: Per history, the matching ratings in stars.
        k: Items per result.
        exclude_seen: Leave out the items the user rated in training (or the history's items).
        candidates: Raw item ids to rank instead of the whole catalogue; empty for all.
        allow_popularity_fallback: Answer unknown users with popular items instead of failing.
    """

    user_ids: Sequence[str] = ()
    history_items: Sequence[Sequence[str]] = ()
    history_ratings: Sequence[Sequence[float]] = ()
    k: int = 10
    exclude_seen: bool = True
    candidates: Sequence[str] = ()
    allow_popularity_fallback: bool = False


@dataclass(frozen=True)
class Ranked:
    """The ranked items of one user or history: item indices and scores, best first."""

    user_id: str
    items: np.ndarray
    scores: np.ndarray
    fallback: bool = False


@dataclass(frozen=True)
class RequestLimits:
    """Per-call limits (see ``ServerConfig``).

    Attributes:
        max_rows: Most pairs per Predict call and users or histories per Recommend call.
        max_message_bytes: Largest message the server sends; a Recommend whose answer would be
            larger is refused up front with a message, instead of failing when it is sent.
    """

    max_rows: int = 16384
    max_message_bytes: int = 64 * 1024 * 1024


@dataclass
class ServedModel:
    """One model version loaded for serving.

    Attributes:
        config: The exported config.
        catalog: Ids, histories and popularity.
        runtime: The backend running the signatures.
        batchers: Signature name -> its dynamic batcher.
        limits: Rows per call and message size.
        inflight: Calls currently using this version; the registry waits for 0 before unloading.
    """

    config: mc.ModelConfig
    catalog: Catalog
    runtime: Runtime
    specs: dict[str, SignatureSpec]
    batchers: dict[str, DynamicBatcher]
    limits: RequestLimits
    inflight: int = field(default=0)

    @classmethod
    def create(
        cls,
        config: mc.ModelConfig,
        catalog: Catalog,
        runtime: Runtime,
        settings: BatchingSettings,
        executor: Executor,
        limits: RequestLimits,
        observers: dict[str, BatchObserver] | None = None,
    ) -> ServedModel:
        """Wires a loaded runtime to one batcher per signature.

        ``observers`` are looked up by signature name; a stored-history signature without its own
        observer reports to the one of the call it answers (``predict_user`` to ``predict``), so the
        metrics of Predict and Recommend calls keep their rows whichever signature computed them.
        """
        specs = {spec.name: spec for spec in signature_specs(config)}
        label = f"{config.name!r} v{config.version}"
        observers = observers or {}
        batchers = {
            name: DynamicBatcher(
                functools.partial(runtime.run, name),
                settings,
                executor,
                name=f"{label} {name}",
                observer=observers.get(name, observers.get(_STORED_HISTORY.get(name, name))),
                row_cost=catalog.num_items if _STORED_HISTORY.get(name, name) == "recommend" else 1,
            )
            for name in specs
        }
        return cls(config, catalog, runtime, specs, batchers, limits)

    @property
    def name(self) -> str:
        """Model name."""
        return self.config.name

    @property
    def version(self) -> int:
        """Version number."""
        return int(self.config.version)

    @property
    def label(self) -> str:
        """How messages name this version: ``'mf' v3``."""
        return self.catalog.label

    @property
    def sequential(self) -> bool:
        """Whether the model reads histories (the LSTM) rather than user indices."""
        return self.config.architecture == mc.ARCHITECTURE_LSTM

    def _inputs(self, signature: str, arrays: dict[str, np.ndarray]) -> Inputs:
        return tuple(arrays[name] for name in self.specs[signature].inputs)

    def _history_arrays(self, histories: Histories) -> dict[str, np.ndarray]:
        return {"history_items": histories.items, "history_ratings": histories.ratings, "lengths": histories.lengths}

    def _user_signature(self, call: str) -> str:
        """The signature answering ``call`` (``predict`` or ``recommend``) for users named by id.

        The LSTM's ``predict_user``/``recommend_user`` when the version has them; else ``call`` itself,
        which for an LSTM then reads the users' stored histories.
        """
        stored = f"{call}_user"
        return stored if stored in self.specs else call

    def _user_arrays(self, signature: str, users: np.ndarray) -> dict[str, np.ndarray]:
        """The inputs naming ``users`` to ``signature``: their indices, or their stored histories."""
        if "user" in self.specs[signature].inputs:
            return {"user": users}
        return self._history_arrays(self.catalog.stored_histories(users))

    async def _run_for_users(self, call: str, users: np.ndarray, **extra: np.ndarray) -> np.ndarray:
        signature = self._user_signature(call)
        arrays = {**self._user_arrays(signature, users), **extra}
        return await self.batchers[signature].submit(self._inputs(signature, arrays))

    def _check_rows(self, rows: int, what: str) -> None:
        if rows > self.limits.max_rows:
            raise InvalidInput(
                f"{rows} {what} in one call exceed max_rows_per_request={self.limits.max_rows}; split the call"
            )

    def _without_history(self, ids: Sequence[object], users: np.ndarray) -> None:
        empty = self.catalog.history_counts(users) == 0
        if empty.any():
            names = [str(ids[i])[:40] for i in np.flatnonzero(empty)[:10].tolist()]
            raise InvalidInput(
                f"users {names} have no training history in model {self.label}, so the LSTM has nothing to read; "
                "send their histories instead"
            )

    async def predict(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Predicted rating of each (user, item) pair, in stars, float32 [B].

        Raises:
            InvalidInput: empty, mismatched or oversized lists, or unknown ids (all of them named).
        """
        self._check_pairs(len(user_ids), len(item_ids), "")
        users, items = self._encode_pairs(self.catalog.users, user_ids, self.catalog.items, item_ids)
        return await self._predict_indices(user_ids, users, items)

    async def predict_integers(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """:meth:`predict` for pairs sent as integer ids (int64 [B] each; ``catalog.integer_ids``).

        Raises:
            InvalidInput: as :meth:`predict`, or the version's ids are not all integers.
        """
        self._check_pairs(len(user_ids), len(item_ids), "int_")
        self.catalog.check_integer_ids()
        users, items = self._encode_pairs(
            self.catalog.users_from_ints, user_ids, self.catalog.items_from_ints, item_ids
        )
        return await self._predict_indices(user_ids, users, items)

    def _check_pairs(self, users: int, items: int, kind: str) -> None:
        if users != items:
            raise InvalidInput(
                f"user_{kind}ids has {users} ids but item_{kind}ids has {items}; send one of each per pair"
            )
        if users == 0:
            raise InvalidInput("empty request: send at least one (user_id, item_id) pair")
        self._check_rows(users, "pairs")

    async def _predict_indices(self, user_ids: Sequence[object], users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.sequential:
            self._without_history(user_ids, users)
        return await self._run_for_users("predict", users, item=items)

    @staticmethod
    def _encode_pairs(
        encode_users: Callable[[Any], np.ndarray],
        user_ids: Any,
        encode_items: Callable[[Any], np.ndarray],
        item_ids: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both id lists as indices; when both hold unknown ids, one error names them all."""
        try:
            users = encode_users(user_ids)
        except InvalidInput as user_error:
            try:
                encode_items(item_ids)
            except InvalidInput as item_error:
                raise InvalidInput(f"{user_error}; {item_error}") from None
            raise
        return users, encode_items(item_ids)

    async def recommend(self, query: RecommendQuery) -> list[Ranked]:
        """The top-k items of each user or history, best first.

        Raises:
            InvalidInput: empty or ambiguous request, k out of range, too many rows, unknown ids,
                bad histories, or histories sent to a model that does not read them.
        """
        self._check_query(query)
        candidates = np.unique(self.catalog.items(query.candidates, "candidate item")) if query.candidates else None
        if query.history_items:
            return await self._recommend_histories(query, candidates)
        users, known = self.catalog.split_known_users(query.user_ids)
        if self.sequential:
            known &= self.catalog.history_counts(np.maximum(users, 0)) > 0
        if known.all():
            return await self._recommend_users(query, query.user_ids, users, candidates)
        if not query.allow_popularity_fallback:
            self._reject_unknown(query.user_ids, users)
        catalog = self.catalog
        items, item_scores = ranking.popular(catalog.popularity_order, catalog.popularity, query.k, candidates)
        ranked = [Ranked(user_id, items, item_scores, fallback=True) for user_id in query.user_ids]
        known_rows = np.flatnonzero(known).tolist()
        if known_rows:
            known_ids = [query.user_ids[row] for row in known_rows]
            results = await self._recommend_users(query, known_ids, users[known_rows], candidates)
            for row, result in zip(known_rows, results, strict=True):
                ranked[row] = result
        return ranked

    async def _recommend_users(
        self, query: RecommendQuery, user_ids: Sequence[str], users: np.ndarray, candidates: np.ndarray | None
    ) -> list[Ranked]:
        scores = await self._run_for_users("recommend", users)
        if query.exclude_seen:
            ranking.mask_pairs(scores, *self.catalog.seen_pairs(users))
        top = ranking.top_k(scores, query.k, candidates)
        return [Ranked(user_id, items, values) for user_id, (items, values) in zip(user_ids, top, strict=True)]

    def _check_query(self, query: RecommendQuery) -> None:
        if query.user_ids and query.history_items:
            raise InvalidInput("set either user_ids or histories, not both")
        rows = len(query.user_ids) or len(query.history_items)
        if rows == 0:
            raise InvalidInput("empty request: set user_ids (or histories for an LSTM model)")
        self._check_rows(rows, "users or histories")
        if not 1 <= query.k <= self.catalog.num_items:
            raise InvalidInput(f"k={query.k} is outside 1..{self.catalog.num_items} (the items of model {self.label})")
        width = min(query.k, len(query.candidates) or self.catalog.num_items)
        estimate = rows * (width * (self.catalog.max_item_id_chars + 6) + 16)
        if estimate > self.limits.max_message_bytes:
            raise InvalidInput(
                f"the answer would take about {estimate / 2**20:.1f} MiB ({rows} rows x {width} items), above "
                f"max_message_bytes={self.limits.max_message_bytes}; ask for fewer users or a smaller k"
            )
        if query.history_items and not self.sequential:
            raise InvalidInput(
                f"histories are only read by LSTM models; model {self.label} is "
                f"{mc.Architecture.Name(self.config.architecture)}: send user_ids"
            )

    def _reject_unknown(self, ids: Sequence[str], users: np.ndarray) -> None:
        unknown_rows = np.flatnonzero(users < 0)
        if len(unknown_rows):
            try:
                self.catalog.users([ids[i] for i in unknown_rows.tolist()])
            except InvalidInput as error:
                raise InvalidInput(f"{error}; set allow_popularity_fallback to get popular items for them") from None
        self._without_history(ids, np.maximum(users, 0))

    async def _recommend_histories(self, query: RecommendQuery, candidates: np.ndarray | None) -> list[Ranked]:
        histories = self.catalog.request_histories(query.history_items, query.history_ratings)
        inputs = self._inputs("recommend", self._history_arrays(histories))
        scores = await self.batchers["recommend"].submit(inputs)
        if query.exclude_seen:
            rows, steps = np.nonzero(np.arange(histories.items.shape[1])[None, :] < histories.lengths[:, None])
            ranking.mask_pairs(scores, rows, histories.items[rows, steps])
        return [Ranked("", items, item_scores) for items, item_scores in ranking.top_k(scores, query.k, candidates)]

    def warm_up(self, batch_size: int, rounds: int = 3) -> None:
        """Runs every signature ``rounds`` times at batch size 1 and ``batch_size``; checks the output shapes.

        Called before the version is marked READY, so that the first caller does not pay for lazy
        initialisation (TorchScript's profiling executor optimises a graph only after it has run it
        twice: the first calls took 5-27 ms instead of 0.1-1 ms on the tiny models), and so that a
        model that answers with the wrong shape never serves.

        Raises:
            ModelLoadError: an output does not have the documented shape.
        """
        users = np.flatnonzero(self.catalog.history_counts(np.arange(self.catalog.num_users)) > 0)
        if not len(users):
            users = np.zeros(1, np.int64)
        for rows in sorted({1, max(1, batch_size)}) * rounds:
            chosen = np.resize(users, rows).astype(np.int64)
            items = np.zeros(rows, np.int64)
            for signature in self.specs:
                arrays = {**self._user_arrays(signature, chosen), "item": items}
                output = self.runtime.run(signature, self._inputs(signature, arrays))
                call = _STORED_HISTORY.get(signature, signature)
                expected = {"predict": (rows,), "recommend": (rows, self.catalog.num_items)}[call]
                if output.shape != expected or output.dtype != np.float32:
                    raise ModelLoadError(
                        f"warm-up: {signature} returned {output.dtype}{list(output.shape)}, "
                        f"expected float32{list(expected)}"
                    )

    async def close(self) -> None:
        """Stops the batchers and releases the runtime."""
        for batcher in self.batchers.values():
            await batcher.close()
        self.runtime.close()
