"""Tensor names and kinds of the model contract (``model_config.proto``), in one place for every stage.

The exporter names each signature's tensors after their kind; a server reading a version exported
before kinds existed infers the kind from the name. Imports nothing of ours.
"""

from __future__ import annotations

from protos.recsys.v1 import model_config_pb2 as mc

INPUT_NAMES: dict[int, str] = {
    mc.TENSOR_KIND_USER_INDEX: "user",
    mc.TENSOR_KIND_ITEM_INDEX: "item",
    mc.TENSOR_KIND_HISTORY_ITEMS: "history_items",
    mc.TENSOR_KIND_HISTORY_RATINGS: "history_ratings",
    mc.TENSOR_KIND_HISTORY_LENGTHS: "lengths",
}
"""Input kind -> the tensor's name in ONNX graphs and TorchScript arguments."""

OUTPUT_NAMES: dict[int, str] = {
    mc.TENSOR_KIND_RATING: "rating",
    mc.TENSOR_KIND_RATING_SCORES: "scores",
    mc.TENSOR_KIND_RANKING_SCORES: "scores",
}
"""Output kind -> the tensor's name."""

HISTORY_KINDS: frozenset[int] = frozenset(
    {mc.TENSOR_KIND_HISTORY_ITEMS, mc.TENSOR_KIND_HISTORY_RATINGS, mc.TENSOR_KIND_HISTORY_LENGTHS}
)
"""Inputs that together carry a right-padded history."""

SCORE_KINDS: frozenset[int] = frozenset({mc.TENSOR_KIND_RATING_SCORES, mc.TENSOR_KIND_RANKING_SCORES})
"""Outputs with one value per catalogue item, [B, num_items]."""

_LEGACY_KINDS: dict[str, int] = {
    **{name: kind for kind, name in INPUT_NAMES.items()},
    "rating": mc.TENSOR_KIND_RATING,
    "scores": mc.TENSOR_KIND_RATING_SCORES,
}


def kind_of(spec: mc.TensorSpec) -> int:
    """The kind of a tensor: its ``kind`` field, or for versions exported before kinds, the one its name implies.

    Before ranking heads, every ``scores`` output was an unclipped rating (``RATING_SCORES``).

    Returns:
        A ``TensorKind`` value; ``TENSOR_KIND_UNSPECIFIED`` for an unknown legacy name.
    """
    if spec.kind != mc.TENSOR_KIND_UNSPECIFIED:
        return spec.kind
    return _LEGACY_KINDS.get(spec.name, mc.TENSOR_KIND_UNSPECIFIED)
