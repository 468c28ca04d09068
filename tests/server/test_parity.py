"""End to end over gRPC: each architecture on each backend answers like the eager PyTorch model."""

from __future__ import annotations

import eager_reference as eager
import numpy as np
import pytest

from client import RecsysClient

ARCHITECTURES = ("mf", "dense", "lstm", "gcn")
TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def checkpoints(tiny_checkpoints):
    import warnings

    from trainer import load_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {arch: load_checkpoint(path) for arch, path in tiny_checkpoints.items()}


@pytest.fixture(scope="module")
def client(served):
    with RecsysClient(served.target, timeout=30) as c:
        yield c


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_predict_equals_eager_model(client, checkpoints, arch):
    checkpoint = checkpoints[arch]
    rng = np.random.default_rng(1)
    users = rng.integers(0, len(checkpoint.user_ids), 300)
    items = rng.integers(0, len(checkpoint.item_ids), 300)
    answer = client.predict(arch, [checkpoint.user_ids[u] for u in users], [checkpoint.item_ids[i] for i in items])
    assert answer.version == 1 and answer.model == arch
    assert answer.ratings.dtype == np.float32 and answer.ratings.shape == (300,)
    np.testing.assert_allclose(answer.ratings, eager.predict(checkpoint, users, items), atol=TOLERANCE, rtol=0)
    low, high = checkpoint.rating_scale
    assert answer.ratings.min() >= low and answer.ratings.max() <= high


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_recommend_is_eager_top_k_without_seen_items(client, checkpoints, arch):
    checkpoint = checkpoints[arch]
    users = np.array([0, 3, 17])
    answer = client.recommend(arch, [checkpoint.user_ids[u] for u in users], k=15)
    scores = eager.recommend(checkpoint, users)
    offsets = checkpoint.history_offsets
    for row, (user, result) in enumerate(zip(users, answer.results, strict=True)):
        seen = set(checkpoint.history_items[offsets[user] : offsets[user + 1]].tolist())
        item_index = [checkpoint.item_ids.index(i) for i in result.item_ids]
        assert result.user_id == checkpoint.user_ids[user] and not result.fallback
        assert len(result.item_ids) == 15
        assert not seen & set(item_index), "a training item came back with exclude_seen"
        assert np.all(np.diff(result.scores) <= 0), "scores are not sorted descending"
        np.testing.assert_allclose(result.scores, scores[row, item_index], atol=TOLERANCE, rtol=0)
        unseen = np.setdiff1d(np.arange(len(checkpoint.item_ids)), list(seen))
        best = np.sort(scores[row, unseen])[::-1][:15]
        np.testing.assert_allclose(result.scores, best, atol=TOLERANCE, rtol=0)


def test_lstm_recommends_for_a_history_it_never_saw(client, checkpoints):
    checkpoint = checkpoints["lstm"]
    histories = [(np.array([4, 9, 2]), np.array([5.0, 1.0, 4.0])), (np.array([7]), np.array([3.0]))]
    answer = client.recommend(
        "lstm",
        histories=[([checkpoint.item_ids[i] for i in items], ratings.tolist()) for items, ratings in histories],
        k=5,
    )
    scores = eager.recommend_histories(checkpoint, histories)
    for row, result in enumerate(answer.results):
        item_index = [checkpoint.item_ids.index(i) for i in result.item_ids]
        assert result.user_id == ""
        assert not set(item_index) & set(histories[row][0].tolist())
        masked = scores[row].copy()
        masked[histories[row][0]] = -np.inf
        np.testing.assert_allclose(result.scores, np.sort(masked)[::-1][:5], atol=TOLERANCE, rtol=0)


def test_recommend_with_exclude_seen_false_and_candidates(client, checkpoints):
    checkpoint = checkpoints["mf"]
    candidates = [checkpoint.item_ids[i] for i in (0, 5, 6, 7, 8)]
    answer = client.recommend("mf", [checkpoint.user_ids[2]], k=10, exclude_seen=False, candidates=candidates)
    result = answer.results[0]
    assert sorted(result.item_ids) == sorted(candidates), "k above the candidate count returns every candidate"
    scores = eager.recommend(checkpoint, np.array([2]))[0]
    expected = np.sort(scores[[0, 5, 6, 7, 8]])[::-1]
    np.testing.assert_allclose(result.scores, expected, atol=TOLERANCE, rtol=0)


def test_unknown_user_gets_flagged_popularity_fallback(client, checkpoints):
    checkpoint = checkpoints["dense"]
    answer = client.recommend("dense", ["nobody", checkpoint.user_ids[0]], k=4, allow_popularity_fallback=True)
    fallback, known = answer.results
    assert fallback.fallback and not known.fallback
    top = np.argsort(-checkpoint.item_popularity, kind="stable")[:4]
    assert fallback.item_ids == [checkpoint.item_ids[i] for i in top]
    np.testing.assert_array_equal(fallback.scores, checkpoint.item_popularity[top])


def _users_with_histories(checkpoint, candidates: tuple[int, ...] = (0, 3, 17, 42, 101, 199)) -> np.ndarray:
    counts = np.diff(checkpoint.history_offsets)
    return np.array([u for u in candidates if u < len(counts) and counts[u] > 0])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_served_top_10_is_the_eager_ranking_heads_top_10(client, checkpoints, arch):
    """Recommend's list (exclude_seen by default) is ``rank`` with training items at -inf, up to ties."""
    checkpoint = checkpoints[arch]
    users = _users_with_histories(checkpoint)
    assert len(users) >= 5
    answer = client.recommend(arch, [checkpoint.user_ids[u] for u in users])
    scores = eager.recommend(checkpoint, users)
    item_index = {item: i for i, item in enumerate(checkpoint.item_ids)}
    assert len(answer.results) == len(users)
    for row, (user, result) in enumerate(zip(users, answer.results, strict=True)):
        assert result.user_id == checkpoint.user_ids[user] and not result.fallback
        assert len(result.item_ids) == 10
        served = [item_index[i] for i in result.item_ids]
        eager.assert_same_top_k(served, scores[row], eager.seen_items(checkpoint, user), TOLERANCE)


def _disjoint_histories(checkpoint, length: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    """User 0's newest events, and the newest events of the next user with 5 or more items user 0 never rated."""
    offsets = checkpoint.history_offsets

    def newest(user: int) -> tuple[np.ndarray, np.ndarray]:
        end = int(offsets[user + 1])
        start = max(int(offsets[user]), end - length)
        return checkpoint.history_items[start:end], checkpoint.history_ratings[start:end]

    first = newest(0)
    for user in range(1, len(offsets) - 1):
        items, ratings = newest(user)
        kept = ~np.isin(items, first[0])
        if kept.sum() >= 5:
            return [first, (items[kept], ratings[kept])]
    raise AssertionError("the tiny data has no two users with disjoint histories")


def test_lstm_recommend_follows_the_sent_history(client, checkpoints):
    """Two histories with no item in common: each gets the eager ``recommend`` top-10 of its own history."""
    checkpoint = checkpoints["lstm"]
    histories = _disjoint_histories(checkpoint)
    assert not set(histories[0][0].tolist()) & set(histories[1][0].tolist())
    sent = [([checkpoint.item_ids[i] for i in items], ratings.tolist()) for items, ratings in histories]
    results = client.recommend("lstm", histories=sent).results
    scores = eager.recommend_histories(checkpoint, histories)
    item_index = {item: i for i, item in enumerate(checkpoint.item_ids)}
    served = [[item_index[i] for i in result.item_ids] for result in results]
    assert served[0] != served[1], "two unrelated histories got the same list"
    for row, (result, (items, _)) in enumerate(zip(results, histories, strict=True)):
        assert result.user_id == "" and not result.fallback and len(result.item_ids) == 10
        eager.assert_same_top_k(served[row], scores[row], items, TOLERANCE)
        np.testing.assert_allclose(result.scores, scores[row, served[row]], atol=TOLERANCE, rtol=0)
        other = scores[1 - row, served[row]]
        assert np.abs(other - result.scores).max() > 10 * TOLERANCE, "the scores do not depend on the history"
