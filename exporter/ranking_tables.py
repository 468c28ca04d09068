"""The frozen ranking tables behind Recommend by user id, found in the serving module and saved as side files.

Every ranking head of this project freezes at export into a
:class:`~trainer.models.heads.FrozenDotRanking` (``score(u, i) = <z_u, w_i> + b_i``), but where it sits
differs: ``PairServing.ranking`` serves ``recommend`` for MF, dense and the GCN, ``LSTMServing.stored_ranking``
serves ``recommend_user``. The exporter finds it without knowing the architecture: it takes the declared
signature that ranks the catalogue for a user index (the one a server routes Recommend by user id to), walks
the serving module's submodules for a ``FrozenDotRanking`` and keeps the one whose output equals that
signature's method on a probe of users. Its three tables become the ``RANKING_*`` side files that a retrieval
index is built over and re-scored from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from exporter.signatures import torchscript_method
from protos.recsys.v1 import model_config_pb2 as mc
from trainer.architecture import Architecture, SignatureDeclaration
from trainer.models.heads import FrozenDotRanking

_PROBE_USERS = 64
_PROBE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class RankingTables:
    """The tables a user-index ranking signature scores with: ``scores = users[u] @ items.T + item_bias``.

    Attributes:
        signature: the signature they stand for (``recommend``, ``recommend_user``).
        reads_stored_history: rows of users without a stored history are zeros (see the signature).
        user_vectors: float32 [num_users, d].
        item_vectors: float32 [num_items, d].
        item_bias: float32 [num_items].
    """

    signature: str
    reads_stored_history: bool
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    item_bias: np.ndarray

    @property
    def dim(self) -> int:
        """Vector size d."""
        return int(self.user_vectors.shape[1])

    def side_file_arrays(self) -> dict[int, np.ndarray]:
        """``SideFileKind`` -> array of the three tables."""
        return {
            mc.SIDE_FILE_KIND_RANKING_USER_VECTORS: self.user_vectors,
            mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS: self.item_vectors,
            mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS: self.item_bias,
        }

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Exact ranking scores of some users, float32 [len(users), num_items] (what the signature returns)."""
        return self.user_vectors[users] @ self.item_vectors.T + self.item_bias


def user_index_ranking(architecture: Architecture) -> SignatureDeclaration | None:
    """The declared signature ranking the catalogue for a user index (input ``USER_INDEX`` only), or None."""
    for declaration in architecture.signatures:
        if declaration.inputs == (mc.TENSOR_KIND_USER_INDEX,) and declaration.output == mc.TENSOR_KIND_RANKING_SCORES:
            return declaration
    return None


@torch.no_grad()
def find_ranking_tables(serving: nn.Module, architecture: Architecture, num_users: int) -> RankingTables | None:
    """The frozen tables serving Recommend by user id, or None when that signature is not a frozen dot product.

    Args:
        serving: the module the artifacts are exported from (``model.serving_module(histories)``).
        architecture: its declaration.
        num_users: user indices of the version.

    Returns:
        The tables of the ``FrozenDotRanking`` whose scores equal the user-index ranking signature's on a
        probe of users, copied to NumPy float32.
    """
    declaration = user_index_ranking(architecture)
    if declaration is None:
        return None
    method = getattr(serving, torchscript_method(declaration.name), None)
    if method is None:
        return None
    probe = torch.arange(min(num_users, _PROBE_USERS), dtype=torch.int64)
    expected = method(probe)
    for module in serving.modules():
        if not isinstance(module, FrozenDotRanking) or module.user_vectors.shape[0] != num_users:
            continue
        got = module(probe)
        if got.shape == expected.shape and torch.allclose(got, expected, rtol=_PROBE_TOLERANCE, atol=_PROBE_TOLERANCE):
            return RankingTables(
                signature=declaration.name,
                reads_stored_history=declaration.reads_stored_history,
                user_vectors=_array(module.user_vectors),
                item_vectors=_array(module.item_vectors),
                item_bias=_array(module.item_bias),
            )
    return None


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy().astype(np.float32, copy=False))
