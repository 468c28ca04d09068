"""Signature declarations shared by models that take a user index (MF, dense, the GCN)."""

from __future__ import annotations

from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import SignatureDeclaration
from trainer.models._base import as_index

USER, ITEM = mc.TENSOR_KIND_USER_INDEX, mc.TENSOR_KIND_ITEM_INDEX


def user_index_signatures(*, ranking_reads_stored_history: bool = False) -> tuple[SignatureDeclaration, ...]:
    """``predict`` (user, item -> rating) and ``recommend`` (user -> ranking scores), checked against ``rate``/``rank``.

    Args:
        ranking_reads_stored_history: the ranking head's user vectors are computed from each user's stored
            history at export (so users without one cannot be ranked).
    """
    return (
        SignatureDeclaration(
            "predict",
            (USER, ITEM),
            mc.TENSOR_KIND_RATING,
            lambda model, inputs, histories: model.rate(as_index(inputs["user"]), as_index(inputs["item"]), histories),
        ),
        SignatureDeclaration(
            "recommend",
            (USER,),
            mc.TENSOR_KIND_RANKING_SCORES,
            lambda model, inputs, histories: model.rank(as_index(inputs["user"]), histories),
            reads_stored_history=ranking_reads_stored_history,
        ),
    )
