"""Id lookups, history gathering and top-k selection, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.recsys.v1 import model_config_pb2 as mc
from server.catalog import Catalog
from server.errors import InvalidInput, ModelLoadError
from server.ranking import mask_pairs, popular, top_k

# user 0 rated items 2, 0, 3 (oldest first); user 1 rated item 1; user 2 rated nothing
SIDE = {
    mc.SIDE_FILE_KIND_USER_IDS: np.array(["a", "b", "c"]),
    mc.SIDE_FILE_KIND_ITEM_IDS: np.array(["x", "y", "z", "w"]),
    mc.SIDE_FILE_KIND_ITEM_POPULARITY: np.array([1, 1, 1, 1], dtype=np.float32),
    mc.SIDE_FILE_KIND_HISTORY_OFFSETS: np.array([0, 3, 4, 4]),
    mc.SIDE_FILE_KIND_HISTORY_ITEMS: np.array([2, 0, 3, 1]),
    mc.SIDE_FILE_KIND_HISTORY_RATINGS: np.array([5, 4, 3, 2], dtype=np.float32),
}


def catalog(max_history_length: int = 2, changes: dict | None = None) -> Catalog:
    config = mc.ModelConfig(
        name="m",
        version=1,
        num_users=3,
        num_items=4,
        max_history_length=max_history_length,
        rating_scale=mc.RatingScale(min=1, max=5),
    )
    return Catalog(config, {**SIDE, **(changes or {})}, "'m' v1")


def test_ids_encode_in_order_and_unknown_ids_are_all_named():
    cat = catalog()
    np.testing.assert_array_equal(cat.users(["c", "a", "a"]), [2, 0, 0])
    np.testing.assert_array_equal(cat.items(["w", "x"]), [3, 0])
    with pytest.raises(InvalidInput, match=r"unknown item ids \['q', 'r'\] for model 'm' v1 \(4 items\)"):
        cat.items(["x", "q", "r", "q"])
    many = [f"n{i}" for i in range(15)]
    with pytest.raises(InvalidInput, match="and 5 more"):
        cat.users(many)


def test_stored_histories_keep_the_most_recent_events():
    history = catalog(max_history_length=2).stored_histories(np.array([0, 1]))
    np.testing.assert_array_equal(history.items, [[0, 3], [1, 0]])
    np.testing.assert_array_equal(history.ratings, [[4, 3], [2, 0]])
    np.testing.assert_array_equal(history.lengths, [2, 1])


def test_request_histories_are_padded_and_checked():
    cat = catalog(max_history_length=3)
    history = cat.request_histories([["y"], ["x", "w", "z"]], [[1.0], [5.0, 2.5, 1.0]])
    np.testing.assert_array_equal(history.items, [[1, 0, 0], [0, 3, 2]])
    np.testing.assert_array_equal(history.lengths, [1, 3])
    assert history.ratings.dtype == np.float32
    with pytest.raises(InvalidInput, match=r"histories\[1\]: length 4 outside 1..3"):
        cat.request_histories([["y"], ["x"] * 4], [[1.0], [1.0] * 4])
    with pytest.raises(InvalidInput, match="outside the rating scale"):
        cat.request_histories([["y"]], [[0.5]])


def test_seen_pairs_cover_every_training_rating():
    rows, items = catalog().seen_pairs(np.array([1, 2, 0]))
    assert sorted(zip(rows.tolist(), items.tolist(), strict=True)) == [(0, 1), (2, 0), (2, 2), (2, 3)]


def test_inconsistent_side_files_refuse_to_load():
    with pytest.raises(ModelLoadError, match="HISTORY_OFFSETS has shape"):
        catalog(changes={mc.SIDE_FILE_KIND_HISTORY_OFFSETS: np.array([0, 4])})
    with pytest.raises(ModelLoadError, match="duplicate ids"):
        catalog(changes={mc.SIDE_FILE_KIND_ITEM_IDS: np.array(["x", "x", "z", "w"])})
    with pytest.raises(ModelLoadError, match="outside the catalogue"):
        catalog(changes={mc.SIDE_FILE_KIND_HISTORY_ITEMS: np.array([2, 0, 9, 1])})


def test_top_k_sorts_masks_and_restricts_to_candidates():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    mask_pairs(scores, np.array([0, 1]), np.array([1, 0]))
    (items0, scores0), (items1, _) = top_k(scores, 2)
    assert items0.tolist() == [3, 2] and scores0.tolist() == pytest.approx([0.7, 0.5])
    assert items1.tolist() == [1, 2]
    (items0, _), (items1, _) = top_k(scores, 10, columns=np.array([0, 1]))
    assert items0.tolist() == [0] and items1.tolist() == [1], "masked items never come back, even when k is large"


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=40),
    st.integers(1, 50),
)
def test_top_k_matches_a_full_sort(values, k):
    scores = np.array([values], dtype=np.float32)
    items, best = top_k(scores, k)[0]
    expected = np.sort(scores[0])[::-1][: min(k, len(values))]
    np.testing.assert_array_equal(best, expected)
    np.testing.assert_array_equal(scores[0, items], best)


def test_popular_respects_candidates():
    order = np.array([2, 0, 1, 3])
    popularity = np.array([5, 1, 9, 0], dtype=np.float32)
    items, counts = popular(order, popularity, 2, np.array([3, 0]))
    assert items.tolist() == [0, 3] and counts.tolist() == [5, 0]


def test_unknown_id_messages_stay_short():
    with pytest.raises(InvalidInput) as caught:
        catalog().items(["9" * 5000, "x"])
    assert len(str(caught.value)) < 200 and "9" * 40 + "…" in str(caught.value)
