"""The signatures an exported model offers, as ``recsys.v1.Signature`` messages built from its declaration.

Each architecture declares its signatures (``trainer.architecture``): inputs and output by
``TensorKind``. This module turns a declaration into the contract: tensor names from the kinds
(``protos.tensors``), dtypes and shapes (``-1`` marks a dynamic dimension: the batch everywhere, the
history length T for histories), and a description for people.

``recommend`` returns scores over the whole catalogue, [B, num_items], not an in-graph top-k: what to
rank varies per request (exclude the user's seen items, or rank only a candidate subset), so the server
masks the scores and then takes the top k with numpy, which over ~1.7k items costs microseconds.
"""

from __future__ import annotations

from protos.recsys.v1 import model_config_pb2 as mc
from protos.tensors import INPUT_NAMES, OUTPUT_NAMES
from trainer.architecture import Architecture, SignatureDeclaration

_INT64, _FLOAT32 = mc.DATA_TYPE_INT64, mc.DATA_TYPE_FLOAT32

# kind -> (dtype, rank, description)
_TENSORS: dict[int, tuple[int, int, str]] = {
    mc.TENSOR_KIND_USER_INDEX: (_INT64, 1, "user index, one per row"),
    mc.TENSOR_KIND_ITEM_INDEX: (_INT64, 1, "item index to rate, one per row"),
    mc.TENSOR_KIND_HISTORY_ITEMS: (
        _INT64,
        2,
        "item index of each history event, oldest first, right-padded with 0",
    ),
    mc.TENSOR_KIND_HISTORY_RATINGS: (_FLOAT32, 2, "rating of each history event in stars, right-padded with 0"),
    mc.TENSOR_KIND_HISTORY_LENGTHS: (
        _INT64,
        1,
        "number of real events per row, 1 <= length <= T <= max_history_length",
    ),
    mc.TENSOR_KIND_RATING: (_FLOAT32, 1, "predicted rating in stars, clipped to the rating scale"),
    mc.TENSOR_KIND_RATING_SCORES: (_FLOAT32, 2, "unclipped predicted rating in stars of every catalogue item"),
    mc.TENSOR_KIND_RANKING_SCORES: (
        _FLOAT32,
        2,
        "ranking score of every catalogue item (higher ranks first; no unit, only the order within a row counts)",
    ),
}


def torchscript_method(signature: str) -> str:
    """The ``model.pt`` method serving a signature: ``forward`` for ``predict``, else the signature's name."""
    return "forward" if signature == "predict" else signature


def tensor_spec(kind: int, num_items: int, *, stored_user: bool = False) -> mc.TensorSpec:
    """The contract's spec of one tensor of a kind (name, dtype, shape, description)."""
    dtype, rank, description = _TENSORS[kind]
    name = INPUT_NAMES.get(kind) or OUTPUT_NAMES[kind]
    shape = [-1] if rank == 1 else ([-1, num_items] if kind in OUTPUT_NAMES else [-1, -1])
    if stored_user and kind == mc.TENSOR_KIND_USER_INDEX:
        description += "; scores the user's stored history, so it must have one"
    return mc.TensorSpec(name=name, dtype=dtype, shape=shape, description=description, kind=kind)


def signature_message(declaration: SignatureDeclaration, num_items: int) -> mc.Signature:
    """One declared signature as the contract's message."""
    stored = declaration.reads_stored_history
    return mc.Signature(
        name=declaration.name,
        inputs=[tensor_spec(kind, num_items, stored_user=stored) for kind in declaration.inputs],
        outputs=[tensor_spec(declaration.output, num_items)],
        reads_stored_history=stored,
    )


def build_signatures(architecture: Architecture, num_items: int) -> list[mc.Signature]:
    """Every signature of an architecture, in declaration order.

    Args:
        architecture: the declaration.
        num_items: catalogue size, the fixed second dimension of score outputs.
    """
    return [signature_message(declaration, num_items) for declaration in architecture.signatures]
