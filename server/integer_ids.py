"""Raw ids that are all decimal integers, looked up from packed ``int64`` request fields.

Mapping 1,000 string ids through a dict costs the server ~100-250 us per Predict call (reading the
repeated string field is most of it); the same pairs sent as packed ``int64`` and looked up in an
array cost ~10 us (``bench/serving_idmap.py``). Catalogues keyed by database integers (MovieLens and
most others) get that fast path; any other catalogue simply does not offer it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from protos.rules import integer_ids

_DENSE_SLACK = 4  # a dense table may hold up to 4 empty slots per id (plus a little) before sorting wins


class IntegerIndex:
    """Maps integer ids to their indices with one array lookup per call.

    Built only when every id has the contract's integer form (``protos.rules.integer_id``: written
    exactly as ``str(int)`` writes an int64, "196", "-3"; not "007", "+5" or " 7"), so that the integer
    and the string name the same id. Ids spanning a small
    range use a dense table; sparse ones (e.g. 64-bit hashes) use a sorted array and binary search.

    Args:
        values: int64 [n] the integer value of each id, in index order, without duplicates.
    """

    def __init__(self, values: np.ndarray) -> None:
        self._low = int(values.min()) if len(values) else 0
        span = int(values.max()) - self._low + 1 if len(values) else 0
        self._dense: np.ndarray | None = None
        if span <= _DENSE_SLACK * len(values) + 4096:
            self._dense = np.full(span, -1, dtype=np.int64)
            self._dense[values - self._low] = np.arange(len(values), dtype=np.int64)
        else:
            self._order = np.argsort(values, kind="stable")
            self._keys = values[self._order]

    @classmethod
    def build(cls, raw_ids: Sequence[str]) -> IntegerIndex | None:
        """The index of ``raw_ids``, or None when one of them has no integer form."""
        values = integer_ids(raw_ids)
        if values is None:
            return None
        return cls(np.array(values, dtype=np.int64))

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Index of each integer id, -1 for ids not in the catalogue: int64 [B] -> int64 [B]."""
        if self._dense is not None:
            offsets = values - self._low  # int64 wrap-around lands outside [0, span) as well
            inside = (offsets >= 0) & (offsets < len(self._dense))
            found = self._dense[np.where(inside, offsets, 0)]
            return np.where(inside, found, -1)
        if not len(self._keys):
            return np.full(len(values), -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._keys, values), len(self._keys) - 1)
        return np.where(self._keys[positions] == values, self._order[positions], -1)
