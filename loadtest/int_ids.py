"""Raw string ids as the integers Predict's ``user_int_ids``/``item_int_ids`` carry, when they all are.

service.proto accepts integer ids only for a model version whose every id has an integer form; the
rule (``protos.rules.integer_id``) is the server's own, so the load tester offers ``--int-ids``
exactly when the server will accept them: ``"196"`` is 196, but ``"0196"``, ``" 196"`` and ``"+196"``
would not name the same user once sent as 196, so an id space holding any of them has no integer form.
"""

from __future__ import annotations

import numpy as np

from protos.rules import integer_ids


def decimal_int64(ids: np.ndarray) -> np.ndarray | None:
    """The ids as int64 when every one has the contract's integer form, else None.

    Args:
        ids: Raw ids, str [n] (a numpy unicode array, as the repository's side files hold them).

    Returns:
        int64 [n] with ``str(values[i]) == ids[i]``, or None if any id is not such an integer.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind != "U":
        return None
    values = integer_ids(ids.tolist())
    return None if values is None else np.array(values, dtype=np.int64)
