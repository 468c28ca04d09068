"""Integer id lookup: which catalogues offer it, and that it finds exactly what string ids find."""

from __future__ import annotations

import numpy as np
import pytest

from server.integer_ids import IntegerIndex


@pytest.mark.parametrize(
    "raw_ids",
    [
        ["1", "2", "007"],  # leading zero: "7" and "007" would be different ids
        ["1", "+2"],
        ["1", " 2"],
        ["1", "2.0"],
        ["u1", "u2"],
        ["1", str(2**63)],  # outside int64
        ["1", "1_000"],  # int() accepts underscores; the string is not canonical
    ],
)
def test_non_canonical_ids_offer_no_integer_index(raw_ids):
    assert IntegerIndex.build(raw_ids) is None


@pytest.mark.parametrize(
    "raw_ids",
    [
        [str(v) for v in (196, 186, 22, 244, 1, -3)],  # dense range, negative included
        [str(v) for v in (2**62, -(2**63), 5, 2**63 - 1, 17)],  # sparse: 64-bit hashes
    ],
)
def test_lookup_matches_the_string_index_and_rejects_unknown(raw_ids):
    index = IntegerIndex.build(raw_ids)
    assert index is not None
    values = np.array([int(r) for r in raw_ids], dtype=np.int64)
    np.testing.assert_array_equal(index.lookup(values[::-1]), np.arange(len(raw_ids))[::-1])
    strangers = np.array([0, 2, -(2**63) + 1, 2**63 - 2, 10**12], dtype=np.int64)
    strangers = strangers[~np.isin(strangers, values)]
    np.testing.assert_array_equal(index.lookup(strangers), np.full(len(strangers), -1))


def test_extreme_values_do_not_wrap_into_a_dense_table():
    index = IntegerIndex.build(["10", "11", "12"])
    extremes = np.array([2**63 - 1, -(2**63), 10 - 2**63, 9, 13], dtype=np.int64)
    np.testing.assert_array_equal(index.lookup(extremes), [-1, -1, -1, -1, -1])
