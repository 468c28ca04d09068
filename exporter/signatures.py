"""The signatures an exported model offers, per architecture, as ``recsys.v1.Signature`` messages.

Every model offers ``predict`` and ``recommend``. Names follow docs/interfaces.md: inputs ``user``,
``item``, ``history_items``, ``history_ratings``, ``lengths``; outputs ``rating`` (predict) and
``scores`` (recommend). ``-1`` marks a dynamic dimension: the batch everywhere, and the history length
T for the LSTM.

The LSTM's ``predict`` and ``recommend`` read a history. It also offers ``predict_user`` and
``recommend_user``, which take a user index like MF's and score that user's stored training history
(the most recent ``max_history_length`` events of the side files, the ones the server would read),
encoded once at export: a request naming a known user then costs a table lookup instead of an LSTM
pass. The history signatures stay, for histories sent in requests.

``recommend`` returns unclipped scores over the whole catalogue, [B, num_items], not an in-graph
top-k: what to rank varies per request (exclude the user's seen items, or rank only a candidate
subset), so the server masks the scores and then takes the top k with numpy, which over ~1.7k items
costs microseconds. An in-graph top-k would have to take the mask as an input or over-fetch and
re-rank, and would tie every artifact to one k.
"""

from __future__ import annotations

from protos.recsys.v1 import model_config_pb2 as pb

ARCHITECTURES: dict[str, int] = {
    "mf": pb.ARCHITECTURE_MF,
    "dense": pb.ARCHITECTURE_DENSE,
    "lstm": pb.ARCHITECTURE_LSTM,
    "gcn": pb.ARCHITECTURE_GCN,
}
"""Architecture names the exporter knows, mapped to the contract's enum."""

SIGNATURE_NAMES: tuple[str, ...] = ("predict", "recommend", "predict_user", "recommend_user")
"""Every signature name, in the order configs list them and parity checks them."""

STORED_HISTORY_SIGNATURES: dict[str, str] = {"predict_user": "predict", "recommend_user": "recommend"}
"""The LSTM's signatures over stored histories encoded at export -> the eager method each reproduces."""

_INT64, _FLOAT32 = pb.DATA_TYPE_INT64, pb.DATA_TYPE_FLOAT32


def _spec(name: str, dtype: int, shape: list[int], description: str) -> pb.TensorSpec:
    return pb.TensorSpec(name=name, dtype=dtype, shape=shape, description=description)


def _history_inputs() -> list[pb.TensorSpec]:
    return [
        _spec("history_items", _INT64, [-1, -1], "item index of each history event, oldest first, right-padded with 0"),
        _spec("history_ratings", _FLOAT32, [-1, -1], "rating of each history event in stars, right-padded with 0"),
        _spec("lengths", _INT64, [-1], "number of real events per row, 1 <= length <= T <= max_history_length"),
    ]


def eager_method(signature: str) -> str:
    """The trained model's method a signature reproduces: ``predict`` or ``recommend``."""
    return STORED_HISTORY_SIGNATURES.get(signature, signature)


def torchscript_method(signature: str) -> str:
    """The ``model.pt`` method serving a signature: ``forward`` for ``predict``, else the signature's name."""
    return "forward" if signature == "predict" else signature


def build_signatures(architecture: str, num_items: int) -> list[pb.Signature]:
    """The signatures of an architecture.

    Args:
        architecture: ``mf``, ``dense``, ``lstm`` or ``gcn``.
        num_items: catalogue size, the fixed second dimension of ``scores``.

    Returns:
        ``[predict, recommend]``, and for the LSTM ``predict_user`` and ``recommend_user`` after them.

    Raises:
        ValueError: unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    if architecture != "lstm":
        return _predict_and_recommend("", [_spec("user", _INT64, [-1], "user index, one per row")], num_items)
    stored_user = _spec(
        "user", _INT64, [-1], "user index, one per row; scores the user's stored history, so it must have one"
    )
    return [
        *_predict_and_recommend("", _history_inputs(), num_items),
        *_predict_and_recommend("_user", [stored_user], num_items),
    ]


def _predict_and_recommend(suffix: str, row_inputs: list[pb.TensorSpec], num_items: int) -> list[pb.Signature]:
    """``predict<suffix>`` (``row_inputs`` + ``item`` -> ``rating``) and ``recommend<suffix>`` (-> ``scores``)."""
    item = _spec("item", _INT64, [-1], "item index to rate, one per row")
    rating = _spec("rating", _FLOAT32, [-1], "predicted rating in stars, clipped to the rating scale")
    scores = _spec("scores", _FLOAT32, [-1, num_items], "unclipped predicted rating in stars of every catalogue item")
    return [
        pb.Signature(name=f"predict{suffix}", inputs=[*row_inputs, item], outputs=[rating]),
        pb.Signature(name=f"recommend{suffix}", inputs=row_inputs, outputs=[scores]),
    ]
