"""Ranking losses: plain functions of query vectors, item vectors and the positives of each query.

Every ranking head here is a dot product, ``score(q, i) = <q, w_i> + b_i``, so a loss needs the queries
(one per user or history step), the item table and the weighted positives; it scores the whole catalogue
(``softmax``) or only sampled items (``sampled_softmax``, ``bpr``). All fit implicit feedback.

- ``softmax``: the multinomial likelihood of Liang et al. ("Variational Autoencoders for Collaborative
  Filtering", WWW 2018), ``-sum_i t_i log softmax(s)_i / sum_i t_i`` per query: every unrated item is a
  negative, exactly. Costs a [R, num_items] product; the default below ~100K items.
- ``sampled_softmax``: cross-entropy of each positive against ``K`` uniform negatives (Jean et al., 2015),
  for catalogues too large to score whole.
- ``bpr``: Bayesian personalised ranking, ``-log sigmoid(s_pos - s_neg)`` (Rendle et al., UAI 2009).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Positives:
    """The weighted positives of a batch of queries.

    Attributes:
        rows: int64 [n] query row of each positive.
        items: int64 [n] item index of each positive.
        weights: float32 [n] weight of each positive (> 0).
    """

    rows: torch.Tensor
    items: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class Towers:
    """What a ranking head computes for one batch: queries, the item table and its own L2 penalty.

    Attributes:
        queries: float32 [R, d], one per user or history step.
        item_vectors: float32 [num_items, d].
        item_bias: float32 [num_items].
        penalty: scalar, the head's squared norms of the rows the batch touches (the loop weighs it by ``l2``).
    """

    queries: torch.Tensor
    item_vectors: torch.Tensor
    item_bias: torch.Tensor
    penalty: torch.Tensor


def softmax_loss(towers: Towers, positives: Positives) -> torch.Tensor:
    """Weighted multinomial log-likelihood over the whole catalogue, averaged over queries with a positive."""
    scores = towers.queries @ towers.item_vectors.t() + towers.item_bias
    log_probs = F.log_softmax(scores, dim=-1)[positives.rows, positives.items]
    rows = towers.queries.size(0)
    zeros = torch.zeros(rows, dtype=log_probs.dtype, device=log_probs.device)
    total = zeros.index_add(0, positives.rows, log_probs * positives.weights)
    mass = zeros.index_add(0, positives.rows, positives.weights)
    has = mass > 0
    return -(total[has] / mass[has]).mean()


def _pair_scores(towers: Towers, positives: Positives, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    queries = towers.queries[positives.rows]
    positive = (queries * towers.item_vectors[positives.items]).sum(-1) + towers.item_bias[positives.items]
    negative = torch.einsum("nd,nkd->nk", queries, towers.item_vectors[negatives]) + towers.item_bias[negatives]
    return positive, negative


def sampled_softmax_loss(towers: Towers, positives: Positives, negatives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each positive against its sampled negatives (int64 [n, K]), weighted."""
    positive, negative = _pair_scores(towers, positives, negatives)
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    nll = -F.log_softmax(logits, dim=1)[:, 0]
    return (nll * positives.weights).sum() / positives.weights.sum()


def bpr_loss(towers: Towers, positives: Positives, negatives: torch.Tensor) -> torch.Tensor:
    """BPR on each (positive, first negative) pair, weighted: negatives int64 [n, >= 1]."""
    positive, negative = _pair_scores(towers, positives, negatives[:, :1])
    nll = -F.logsigmoid(positive - negative[:, 0])
    return (nll * positives.weights).sum() / positives.weights.sum()
