"""Which signature answers which call, decided from the tensors' kinds alone (never the architecture).

Three calls reach a model: ratings of (user, item) pairs named by id (Predict), the catalogue ranked for
users named by id (Recommend), and the catalogue ranked for histories sent in the request (Recommend with
histories). :func:`route` picks, for each, the signature whose inputs the server can build for it:

- user index (``USER_INDEX``): the user's index;
- history (``HISTORY_*``): the user's stored history (Predict/Recommend by id) or the sent history;
- item index (``ITEM_INDEX``): the pair's item.

Preferences, in order: for ranking, ``RANKING_SCORES`` over ``RATING_SCORES`` (what versions exported before
ranking heads rank by); then a user-index signature over one that needs the stored history fed through it
(the stored states were encoded at export, so they cost a lookup instead of a pass over the history).
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.recsys.v1 import model_config_pb2 as mc
from protos.tensors import HISTORY_KINDS, SCORE_KINDS, kind_of
from server.errors import ModelLoadError

_ROW_KINDS = frozenset({mc.TENSOR_KIND_USER_INDEX, *HISTORY_KINDS})
_INPUT_KINDS = frozenset({*_ROW_KINDS, mc.TENSOR_KIND_ITEM_INDEX})
_OUTPUT_KINDS = frozenset({mc.TENSOR_KIND_RATING, *SCORE_KINDS})


@dataclass(frozen=True)
class ServedSignature:
    """One signature as the server calls it.

    Attributes:
        name: signature name (the runtime's key).
        inputs: input tensor names, in call order.
        input_kinds: ``TensorKind`` of each input.
        output: output tensor name.
        output_kind: ``TensorKind`` of the output.
        reads_stored_history: rows are users represented by their stored history (see model_config.proto).
    """

    name: str
    inputs: tuple[str, ...]
    input_kinds: tuple[int, ...]
    output: str
    output_kind: int
    reads_stored_history: bool

    @property
    def takes_history(self) -> bool:
        """Whether the rows are histories (built from stored or sent events) rather than user indices."""
        return mc.TENSOR_KIND_HISTORY_ITEMS in self.input_kinds

    @property
    def needs_stored_history(self) -> bool:
        """Whether a user named by id must have a stored history to be served by this signature."""
        return self.reads_stored_history or self.takes_history

    @property
    def scores_catalogue(self) -> bool:
        """Whether the output has one score per catalogue item, [B, num_items]."""
        return self.output_kind in SCORE_KINDS


@dataclass(frozen=True)
class Routes:
    """The signature serving each call; None where the version cannot answer that call.

    Attributes:
        predict_users: Predict for pairs named by id.
        recommend_users: Recommend for users named by id.
        recommend_histories: Recommend for histories sent in the request.
    """

    predict_users: ServedSignature
    recommend_users: ServedSignature
    recommend_histories: ServedSignature | None


def served_signatures(config: mc.ModelConfig) -> list[ServedSignature]:
    """Every signature of a config with one output and inputs of kinds this server can build.

    Versions exported before ``reads_stored_history`` existed mark their stored-history signatures only by
    name (``predict_user``, ``recommend_user``): that legacy rule lives here and nowhere else.

    Raises:
        ModelLoadError: a signature has an input or output of an unknown kind, or several outputs.
    """
    signatures = []
    for signature in config.signatures:
        kinds = tuple(kind_of(spec) for spec in signature.inputs)
        outputs = [kind_of(spec) for spec in signature.outputs]
        unknown = [spec.name for spec, kind in zip(signature.inputs, kinds, strict=True) if kind not in _INPUT_KINDS]
        if unknown or len(outputs) != 1 or outputs[0] not in _OUTPUT_KINDS:
            raise ModelLoadError(
                f"signature {signature.name!r} has inputs {[s.name for s in signature.inputs]} -> outputs "
                f"{[s.name for s in signature.outputs]} that this server cannot build or read (unknown: "
                f"{unknown or [s.name for s in signature.outputs]}); upgrade the server or re-export"
            )
        legacy_stored = not config.architecture_name and signature.name.endswith("_user")
        signatures.append(
            ServedSignature(
                name=signature.name,
                inputs=tuple(spec.name for spec in signature.inputs),
                input_kinds=kinds,
                output=signature.outputs[0].name,
                output_kind=outputs[0],
                reads_stored_history=signature.reads_stored_history or legacy_stored,
            )
        )
    return signatures


def route(signatures: list[ServedSignature]) -> Routes:
    """Choose the signature of each call (see the module docstring).

    Raises:
        ModelLoadError: the version has no signature for Predict or for Recommend by user id.
    """

    def best(candidates: list[ServedSignature]) -> ServedSignature | None:
        ranked = sorted(
            candidates,
            key=lambda s: (s.output_kind != mc.TENSOR_KIND_RANKING_SCORES, s.takes_history),
        )
        return ranked[0] if ranked else None

    def is_user_rows(s: ServedSignature) -> bool:
        row_kinds = set(s.input_kinds) & _ROW_KINDS
        return row_kinds in ({mc.TENSOR_KIND_USER_INDEX}, set(HISTORY_KINDS))

    pairs = [
        s
        for s in signatures
        if s.output_kind == mc.TENSOR_KIND_RATING and mc.TENSOR_KIND_ITEM_INDEX in s.input_kinds and is_user_rows(s)
    ]
    rankings = [s for s in signatures if s.scores_catalogue and mc.TENSOR_KIND_ITEM_INDEX not in s.input_kinds]
    predict_users = best(pairs)
    recommend_users = best([s for s in rankings if is_user_rows(s)])
    if predict_users is None or recommend_users is None:
        raise ModelLoadError(
            f"the version offers no signature for {'Predict' if predict_users is None else 'Recommend'} "
            f"(signatures: {[s.name for s in signatures]})"
        )
    sent = best([s for s in rankings if set(s.input_kinds) == set(HISTORY_KINDS)])
    return Routes(predict_users, recommend_users, sent)
