"""A served model version in domain terms: raw ids in, ratings and ranked raw ids out.

This layer maps ids to indices and back (``Catalog``), builds each signature's inputs from its tensors'
kinds (a user's index, the user's stored history, a sent history, the pair's item), falls back to popular
items for unknown users when asked, masks seen items, and takes the top k. It hands arrays to the
:class:`~server.engine.InferenceEngine` and never sees protobuf; the servicer converts protobuf to these
calls and back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protos.recsys.v1 import model_config_pb2 as mc
from server import ranking
from server.batching import DynamicBatcher
from server.catalog import Catalog
from server.engine import InferenceEngine, KindArrays
from server.errors import InvalidInput
from server.retrieval import UserRetrieval
from server.signatures import ServedSignature

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecommendQuery:
    """One Recommend call in domain terms (see ``RecommendRequest`` in service.proto).

    Attributes:
        user_ids: Raw user ids, or empty when histories are given.
        history_items: Per history, raw item ids oldest first (models that read histories).
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
    """The ranked items of one user or history, best first.

    Attributes:
        user_id: the user it is for; empty for a sent history.
        item_ids: raw item ids.
        scores: float32 score of each (what the recommend signature outputs; popularity for a fallback).
        fallback: the user was unknown and these are the most popular items.
    """

    user_id: str
    item_ids: list[str]
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
        engine: Signatures, batchers and runtime.
        limits: Rows per call and message size.
        retrieval: Serves Recommend by user id from a retrieval index instead of scoring every item
            (large catalogues, see ``loader.uses_retrieval_index``); None scores the catalogue.
        inflight: Calls currently using this version; the registry waits for 0 before unloading.
    """

    config: mc.ModelConfig
    catalog: Catalog
    engine: InferenceEngine
    limits: RequestLimits
    retrieval: UserRetrieval | None = None
    inflight: int = field(default=0)

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
    def batchers(self) -> dict[str, DynamicBatcher]:
        """Signature name -> its batcher (for queue-depth metrics)."""
        return self.engine.batchers

    # Inputs by kind ------------------------------------------------------------------------------

    def _user_arrays(self, signature: ServedSignature, users: np.ndarray) -> dict[int, np.ndarray]:
        """The row inputs naming ``users``: their indices, or their stored histories."""
        if not signature.takes_history:
            return {mc.TENSOR_KIND_USER_INDEX: users}
        return self.catalog.stored_histories(users).by_kind()

    def _servable(self, signature: ServedSignature, users: np.ndarray) -> np.ndarray:
        """Mask of known users this signature can serve (those with a stored history, when it needs one)."""
        known = users >= 0
        if signature.needs_stored_history:
            known &= self.catalog.history_counts(np.maximum(users, 0)) > 0
        return known

    def _refuse_without_history(self, ids: Sequence[object], servable: np.ndarray) -> None:
        if not servable.all():
            names = [str(ids[i])[:40] for i in np.flatnonzero(~servable)[:10].tolist()]
            raise InvalidInput(
                f"users {names} have no training history in model {self.label}, and this model reads each user's "
                "history; send their histories instead"
            )

    def _check_rows(self, rows: int, what: str) -> None:
        if rows > self.limits.max_rows:
            raise InvalidInput(
                f"{rows} {what} in one call exceed max_rows_per_request={self.limits.max_rows}; split the call"
            )

    # Predict ---------------------------------------------------------------------------------------

    async def predict(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Predicted rating of each (user, item) pair, in stars, float32 [B].

        Raises:
            InvalidInput: empty, mismatched or oversized lists, or unknown ids (all of them named).
        """
        self._check_pairs(len(user_ids), len(item_ids), "")
        users, items = _encode_pairs(self.catalog.users, user_ids, self.catalog.items, item_ids)
        return await self._predict_indices(user_ids, users, items)

    async def predict_integers(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """:meth:`predict` for pairs sent as integer ids (int64 [B] each; ``catalog.integer_ids``).

        Raises:
            InvalidInput: as :meth:`predict`, or the version's ids are not all integers.
        """
        self._check_pairs(len(user_ids), len(item_ids), "int_")
        self.catalog.check_integer_ids()
        users, items = _encode_pairs(self.catalog.users_from_ints, user_ids, self.catalog.items_from_ints, item_ids)
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
        signature = self.engine.routes.predict_users
        self._refuse_without_history(user_ids, self._servable(signature, users))
        arrays = {**self._user_arrays(signature, users), mc.TENSOR_KIND_ITEM_INDEX: items}
        return await self.engine.run(signature, arrays)

    # Recommend -------------------------------------------------------------------------------------

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
        signature = self.engine.routes.recommend_users
        users, _ = self.catalog.split_known_users(query.user_ids)
        servable = self._servable(signature, users)
        if servable.all():
            return await self._recommend_users(query, query.user_ids, users, candidates)
        if not query.allow_popularity_fallback:
            self._reject_unknown(query.user_ids, users, servable)
        items, item_scores = ranking.popular(
            self.catalog.popularity_order, self.catalog.popularity, query.k, candidates
        )
        popular_ids = self._item_ids(items)
        ranked = [Ranked(user_id, popular_ids, item_scores, fallback=True) for user_id in query.user_ids]
        rows = np.flatnonzero(servable).tolist()
        if rows:
            known_ids = [query.user_ids[row] for row in rows]
            for row, result in zip(
                rows, await self._recommend_users(query, known_ids, users[rows], candidates), strict=True
            ):
                ranked[row] = result
        return ranked

    async def _recommend_users(
        self, query: RecommendQuery, user_ids: Sequence[str], users: np.ndarray, candidates: np.ndarray | None
    ) -> list[Ranked]:
        top = await self._rank_users(users, query.k, query.exclude_seen, candidates)
        return [
            Ranked(user_id, self._item_ids(items), values)
            for user_id, (items, values) in zip(user_ids, top, strict=True)
        ]

    async def _rank_users(
        self, users: np.ndarray, k: int, exclude_seen: bool, candidates: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each user's top-k (item indices, scores), from the retrieval index or by scoring the catalogue.

        The index answers when the version serves from one (``retrieval``, large catalogues); both ways
        leave out seen items and non-candidates and give ``min(k, eligible items)`` per user, scored alike.
        """
        seen = self.catalog.seen_pairs(users) if exclude_seen else None
        if self.retrieval is not None:
            return await self.retrieval.top_k(users, k, seen, candidates)
        signature = self.engine.routes.recommend_users
        scores = await self.engine.run(signature, self._user_arrays(signature, users))
        if seen is not None:
            ranking.mask_pairs(scores, *seen)
        return ranking.top_k(scores, k, candidates)

    async def _recommend_histories(self, query: RecommendQuery, candidates: np.ndarray | None) -> list[Ranked]:
        signature = self.engine.routes.recommend_histories
        if signature is None:
            raise InvalidInput(
                f"model {self.label} does not read histories (its signatures take user ids): send user_ids"
            )
        histories = self.catalog.request_histories(query.history_items, query.history_ratings)
        scores = await self.engine.run(signature, histories.by_kind())
        if query.exclude_seen:
            rows, steps = np.nonzero(np.arange(histories.items.shape[1])[None, :] < histories.lengths[:, None])
            ranking.mask_pairs(scores, rows, histories.items[rows, steps])
        return [
            Ranked("", self._item_ids(items), values) for items, values in ranking.top_k(scores, query.k, candidates)
        ]

    def _item_ids(self, items: np.ndarray) -> list[str]:
        item_ids = self.catalog.item_id_list
        return [item_ids[i] for i in items.tolist()]

    def _check_query(self, query: RecommendQuery) -> None:
        if query.user_ids and query.history_items:
            raise InvalidInput("set either user_ids or histories, not both")
        rows = len(query.user_ids) or len(query.history_items)
        if rows == 0:
            raise InvalidInput("empty request: set user_ids (or histories, for a model that reads them)")
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

    def _reject_unknown(self, ids: Sequence[str], users: np.ndarray, servable: np.ndarray) -> None:
        unknown_rows = np.flatnonzero(users < 0)
        if len(unknown_rows):
            try:
                self.catalog.users([ids[i] for i in unknown_rows.tolist()])
            except InvalidInput as error:
                raise InvalidInput(f"{error}; set allow_popularity_fallback to get popular items for them") from None
        self._refuse_without_history(ids, servable)

    # Lifecycle -------------------------------------------------------------------------------------

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
            for signature in self.engine.signatures.values():
                arrays: KindArrays = {
                    **self._user_arrays(signature, chosen),
                    mc.TENSOR_KIND_USER_INDEX: chosen,
                    mc.TENSOR_KIND_ITEM_INDEX: np.zeros(rows, np.int64),
                }
                self.engine.check_output(signature, self.engine.run_now(signature, arrays), rows)

    async def close(self) -> None:
        """Stops the batchers and releases the runtime."""
        await self.engine.close()


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
