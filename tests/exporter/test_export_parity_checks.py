"""exporter.parity on hand-made scores: the top-10 comparison up to ties, and the failure it raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exporter.errors import ParityError
from exporter.inputs import ModelShape
from exporter.parity import TOP_K, check_parity, top_k_mismatches
from protos.recsys.v1 import model_config_pb2 as pb
from trainer.architecture import Architecture, SignatureDeclaration
from trainer.data.interactions import UserHistories
from trainer.models.mf import MatrixFactorization

TOLERANCE = 1e-4


def _descending(rows: int, items: int, gap: float) -> np.ndarray:
    """Scores where item 0 ranks first, then 1, ..., each ``gap`` below the previous; rows are shifted copies."""
    row = 0.5 - gap * np.arange(items)
    return (row[None, :] + 0.01 * np.arange(rows)[:, None]).astype(np.float32)


def test_identical_scores_have_no_mismatch() -> None:
    scores = np.random.default_rng(0).standard_normal((5, 40)).astype(np.float32)
    assert top_k_mismatches(scores, scores.copy(), 10, TOLERANCE) == 0


def test_near_ties_may_swap() -> None:
    expected = _descending(3, 30, gap=0.5 * TOLERANCE)  # neighbours within the tolerance of each other
    got = expected.copy()
    got[:, [0, 1]] = got[:, [1, 0]]  # the artifact ranks item 1 above item 0
    got[:, [7, 8]] = got[:, [8, 7]]
    assert top_k_mismatches(got, expected, 10, TOLERANCE) == 0


def test_a_clearly_lower_item_in_the_top_10_counts_per_row() -> None:
    expected = _descending(4, 30, gap=0.01)
    got = expected.copy()
    got[1, 25] = 1.0  # row 1: an item the eager model ranks 26th comes first
    got[3, 9], got[3, 10] = got[3, 10], got[3, 9]  # row 3: the 11th item swaps into the top 10
    assert top_k_mismatches(got, expected, 10, TOLERANCE) == 2
    assert top_k_mismatches(got, expected, 9, TOLERANCE) == 1, "below the cut, the 10th/11th swap is out of view"


def test_the_order_inside_the_top_10_counts_not_only_the_set() -> None:
    expected = _descending(2, 30, gap=0.01)
    got = expected.copy()
    got[0, :10] = got[0, :10][::-1]  # same ten items, reversed
    assert top_k_mismatches(got, expected, 10, TOLERANCE) == 1


def test_a_cut_beyond_the_catalogue_compares_every_item() -> None:
    expected = _descending(2, 4, gap=0.01)
    got = expected.copy()
    got[1, [2, 3]] = got[1, [3, 2]]  # the last two of four items swap
    assert top_k_mismatches(got, expected, 10, TOLERANCE) == 1


@pytest.mark.parametrize("got_shape", [(5, 29), (5,), (3, 30), (0, 30), (7, 30)])
def test_a_shape_mismatch_counts_every_row(got_shape: tuple[int, ...]) -> None:
    expected = _descending(5, 30, gap=0.01)
    got = np.zeros(got_shape, np.float32)
    assert top_k_mismatches(got, expected, 10, TOLERANCE) == 5, "every row of the batch"


def _architecture(eager_table: torch.Tensor) -> Architecture:
    """One ``recommend`` signature whose eager computation reads a fixed score table."""
    recommend = SignatureDeclaration(
        "recommend",
        (pb.TENSOR_KIND_USER_INDEX,),
        pb.TENSOR_KIND_RANKING_SCORES,
        lambda model, inputs, histories: eager_table[inputs["user"]],
    )
    return Architecture("hand-made", MatrixFactorization, (recommend,))


def _check(eager_table: torch.Tensor, artifact_table: np.ndarray) -> pb.Parity:
    num_users, num_items = eager_table.shape
    shape = ModelShape("hand-made", num_users, num_items, 1.0, 5.0)
    histories = UserHistories(np.zeros(num_users + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    runner = {(pb.ARTIFACT_FORMAT_ONNX, "recommend"): lambda inputs: artifact_table[inputs["user"].numpy()]}
    return check_parity(None, _architecture(eager_table), shape, runner, histories=histories, batch_sizes=(1, 7))


def test_values_within_tolerance_in_another_order_fail_naming_the_top_10() -> None:
    eager = _descending(6, 30, gap=1.5 * TOLERANCE)  # neighbours 1.5 tolerances apart: no ties
    artifact = eager.copy()
    artifact[:, 0] -= 0.9 * TOLERANCE  # every value within the tolerance, but item 1 now ranks first
    artifact[:, 1] += 0.9 * TOLERANCE
    with pytest.raises(
        ParityError,
        match=r"parity failed: onnx recommend at batch 1 orders the top 10 differently from the eager model in 1 rows",
    ):
        _check(torch.from_numpy(eager), artifact)


def test_parity_records_the_top_10_of_score_outputs() -> None:
    eager = _descending(6, 30, gap=0.5 * TOLERANCE)
    artifact = eager.copy()
    artifact[:, [0, 1]] = artifact[:, [1, 0]]  # a swap of near-ties passes
    parity = _check(torch.from_numpy(eager), artifact)
    assert [(c.batch_size, c.top_k, c.top_k_mismatched_rows) for c in parity.checks] == [(1, TOP_K, 0), (7, TOP_K, 0)]
    assert 0 < parity.max_abs_diff <= TOLERANCE
