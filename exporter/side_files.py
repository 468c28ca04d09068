"""Side files: the id maps, training histories, popularity and ranking tables the server reads, as .npy.

Plain ``.npy`` arrays, never pickles, so ``np.load(path, allow_pickle=False)`` reads them in any
process without trusting the file. Ids are numpy unicode arrays (dtype ``<U``), not object arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from exporter.errors import ExportInputError
from exporter.files import sha256_file
from protos.recsys.v1 import model_config_pb2 as mc

SIDE_FILE_NAMES: dict[int, str] = {
    mc.SIDE_FILE_KIND_USER_IDS: "user_ids.npy",
    mc.SIDE_FILE_KIND_ITEM_IDS: "item_ids.npy",
    mc.SIDE_FILE_KIND_ITEM_POPULARITY: "item_popularity.npy",
    mc.SIDE_FILE_KIND_HISTORY_OFFSETS: "history_offsets.npy",
    mc.SIDE_FILE_KIND_HISTORY_ITEMS: "history_items.npy",
    mc.SIDE_FILE_KIND_HISTORY_RATINGS: "history_ratings.npy",
    mc.SIDE_FILE_KIND_RANKING_USER_VECTORS: "ranking_user_vectors.npy",
    mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS: "ranking_item_vectors.npy",
    mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS: "ranking_item_bias.npy",
}


def _id_array(ids: Sequence[str], what: str) -> np.ndarray:
    array = np.asarray([str(raw) for raw in ids], dtype=np.str_)
    if array.ndim != 1 or array.size == 0:
        raise ExportInputError(f"checkpoint has no {what}: re-train and save the checkpoint again")
    if np.unique(array).size != array.size:
        raise ExportInputError(f"checkpoint {what} contain duplicates: each index needs a distinct raw id")
    return array


def side_file_arrays(
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    item_popularity: np.ndarray,
    history_offsets: np.ndarray,
    history_items: np.ndarray,
    history_ratings: np.ndarray,
) -> dict[int, np.ndarray]:
    """Validate a checkpoint's side data and convert it to the dtypes of the contract.

    Args:
        user_ids: raw id of each user index.
        item_ids: raw id of each item index.
        item_popularity: training ratings per item, [num_items].
        history_offsets: CSR offsets, [num_users + 1].
        history_items: item index of each training rating, oldest first per user.
        history_ratings: the matching ratings in stars.

    Returns:
        SideFileKind -> array (str, float32 or int64).

    Raises:
        ExportInputError: sizes that do not fit together, naming the arrays at fault.
    """
    users, items = _id_array(user_ids, "user ids"), _id_array(item_ids, "item ids")
    arrays = {
        mc.SIDE_FILE_KIND_USER_IDS: users,
        mc.SIDE_FILE_KIND_ITEM_IDS: items,
        mc.SIDE_FILE_KIND_ITEM_POPULARITY: np.asarray(item_popularity, dtype=np.float32).reshape(-1),
        mc.SIDE_FILE_KIND_HISTORY_OFFSETS: np.asarray(history_offsets, dtype=np.int64).reshape(-1),
        mc.SIDE_FILE_KIND_HISTORY_ITEMS: np.asarray(history_items, dtype=np.int64).reshape(-1),
        mc.SIDE_FILE_KIND_HISTORY_RATINGS: np.asarray(history_ratings, dtype=np.float32).reshape(-1),
    }
    offsets = arrays[mc.SIDE_FILE_KIND_HISTORY_OFFSETS]
    history = arrays[mc.SIDE_FILE_KIND_HISTORY_ITEMS]
    problems = []
    if arrays[mc.SIDE_FILE_KIND_ITEM_POPULARITY].size != items.size:
        problems.append(
            f"item_popularity has {arrays[mc.SIDE_FILE_KIND_ITEM_POPULARITY].size} entries, not {items.size}"
        )
    if offsets.size != users.size + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        problems.append(f"history_offsets must rise from 0 in {users.size + 1} entries")
    elif offsets[-1] != history.size or arrays[mc.SIDE_FILE_KIND_HISTORY_RATINGS].size != history.size:
        problems.append("history_offsets, history_items and history_ratings disagree in length")
    elif history.size and (history.min() < 0 or history.max() >= items.size):
        problems.append(f"history_items hold indices outside [0, {items.size})")
    if problems:
        raise ExportInputError(f"checkpoint side data is inconsistent: {'; '.join(problems)}")
    return arrays


def write_side_files(arrays: dict[int, np.ndarray], folder: Path) -> list[mc.SideFile]:
    """Save each array as ``folder/<name>.npy`` and describe it with its SHA-256.

    Args:
        arrays: SideFileKind -> array, from :func:`side_file_arrays`, plus the ranking tables
            (``RankingTables.side_file_arrays``) when the version has them.
        folder: the version's staging folder.

    Returns:
        One ``SideFile`` per array, in :data:`SIDE_FILE_NAMES` order.
    """
    described = []
    for kind, name in SIDE_FILE_NAMES.items():
        if kind not in arrays:
            continue
        path = folder / name
        np.save(path, arrays[kind], allow_pickle=False)
        described.append(mc.SideFile(kind=kind, path=name, sha256=sha256_file(path)))
    return described
