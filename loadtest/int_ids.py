"""Raw string ids as the integers Predict's ``user_int_ids``/``item_int_ids`` carry, when they all are.

service.proto accepts integer ids only for a model version whose every id is a decimal integer
written exactly as ``str(int)`` would (no sign but ``-``, no leading zeros, no spaces), within
int64: ``"196"`` is 196, but ``"0196"``, ``" 196"`` and ``"+196"`` would not name the same user
once sent as 196, so an id space holding any of them has no integer form.
"""

from __future__ import annotations

import numpy as np


def decimal_int64(ids: np.ndarray) -> np.ndarray | None:
    """The ids as int64 when every one is a canonical decimal integer, else None.

    Args:
        ids: Raw ids, str [n] (a numpy unicode array, as the repository's side files hold them).

    Returns:
        int64 [n] with ``str(values[i]) == ids[i]``, or None if any id is not such an integer.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind != "U":
        return None
    try:
        values = ids.astype(np.int64)
    except (ValueError, OverflowError):  # not digits, or beyond int64
        return None
    if not np.array_equal(values.astype(str), ids):  # "007", "+7", " 7", "٧" parse but are other strings
        return None
    return values
