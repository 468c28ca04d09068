"""The LSTM's predict_user/recommend_user: stored histories encoded at export by each head's encoder, scored like MF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporter import ExportResult, ParityError, export_checkpoint
from exporter.inputs import stored_history_users
from trainer import load_checkpoint
from trainer.data.interactions import UserHistories
from trainer.models.lstm import LSTMRecommender

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def lstm(tiny_run: Path):
    return load_checkpoint(tiny_run / "lstm" / "checkpoint.pt")


def _histories(checkpoint) -> UserHistories:
    return UserHistories(checkpoint.history_offsets, checkpoint.history_items, checkpoint.history_ratings)


def _stored_history_inputs(checkpoint, users: np.ndarray) -> list[torch.Tensor]:
    """Each user's most recent max_history_length events, right-padded: written out plainly, row by row."""
    limit = checkpoint.model.max_history_length
    rows = []
    for user in users.tolist():
        end = int(checkpoint.history_offsets[user + 1])
        start = max(int(checkpoint.history_offsets[user]), end - limit)
        rows.append((checkpoint.history_items[start:end], checkpoint.history_ratings[start:end]))
    width = max(len(items) for items, _ in rows)
    items = torch.zeros(len(rows), width, dtype=torch.long)
    ratings = torch.zeros(len(rows), width)
    for row, (row_items, row_ratings) in enumerate(rows):
        items[row, : len(row_items)] = torch.from_numpy(row_items)
        ratings[row, : len(row_ratings)] = torch.from_numpy(row_ratings)
    return [items, ratings, torch.tensor([len(r[0]) for r in rows])]


def _user_runner(folder: Path, backend: str, signature: str):
    if backend == "onnx":
        session = ort.InferenceSession(str(folder / f"{signature}.onnx"), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda *arrays: session.run(None, dict(zip(names, arrays, strict=True)))[0]
    method = getattr(torch.jit.load(str(folder / "model.pt")), signature)
    return lambda *arrays: method(*map(torch.from_numpy, arrays)).numpy()


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_user_signatures_equal_the_eager_model_on_every_stored_history(
    backend: str, exported: dict[str, ExportResult], lstm
) -> None:
    folder = exported["lstm"].path
    counts = np.diff(lstm.history_offsets)
    assert counts.max() > lstm.model.max_history_length, "the tiny data must exercise the cut to the latest events"
    users = np.flatnonzero(counts > 0)
    items = np.random.default_rng(3).integers(0, lstm.model.num_items, len(users))
    history = _stored_history_inputs(lstm, users)
    with torch.no_grad():  # the request-history heads on histories written out plainly...
        eager_ratings = lstm.model.predict(*history, torch.from_numpy(items)).numpy()
        eager_scores = lstm.model.recommend(*history).numpy()
    # ...agree with the model's own stored-history surface, which parity checks against
    torch.testing.assert_close(lstm.model.rate(users, items, _histories(lstm)).numpy(), eager_ratings)
    torch.testing.assert_close(lstm.model.rank(users, _histories(lstm)).numpy(), eager_scores)
    ratings = _user_runner(folder, backend, "predict_user")(users, items)
    scores = _user_runner(folder, backend, "recommend_user")(users)
    assert ratings.shape == (len(users),) and scores.shape == (len(users), lstm.model.num_items)
    np.testing.assert_allclose(ratings, eager_ratings, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(scores, eager_scores, atol=TOLERANCE, rtol=0)
    one = _user_runner(folder, backend, "recommend_user")(users[np.argmax(counts[users])][None])
    np.testing.assert_allclose(one[0], eager_scores[np.argmax(counts[users])], atol=TOLERANCE, rtol=0)


def _encoder(model: LSTMRecommender, head: str) -> torch.nn.Module:
    return model.encoder if head == "rating" else model.ranking_queries


@pytest.mark.parametrize("head", ["rating", "ranking"])
def test_states_ignore_batching_and_mode_and_are_zero_without_a_history(head: str, lstm) -> None:
    model: LSTMRecommender = lstm.model
    encoder = _encoder(model, head)
    offsets = lstm.history_offsets.copy()
    empty = 4  # drop user 4's events: that user now has no stored history
    start, end = int(offsets[empty]), int(offsets[empty + 1])
    items = np.delete(lstm.history_items, np.s_[start:end])
    ratings = np.delete(lstm.history_ratings, np.s_[start:end])
    offsets[empty + 1 :] -= end - start
    histories = UserHistories(offsets, items, ratings)
    vector, bias = model.encode_histories(encoder, histories)
    model.train()  # dropout on: the encoding must switch it off, and give the mode back
    try:
        one_by_one = model.encode_histories(encoder, histories, batch_size=1)
        assert model.training
    finally:
        model.eval()
    assert vector.shape == (len(offsets) - 1, model._out_features(encoder)) and bias.shape == (len(offsets) - 1,)
    torch.testing.assert_close(one_by_one, (vector, bias), atol=1e-6, rtol=0)
    assert not vector[empty].any() and bias[empty] == 0
    others = np.delete(np.arange(len(offsets) - 1), empty)
    assert vector[others].abs().sum(dim=1).min() > 0


def test_each_stored_table_holds_its_own_heads_states(lstm) -> None:
    model: LSTMRecommender = lstm.model
    histories = _histories(lstm)
    serving = model.serving_module(histories)
    rating_vector, rating_bias = model.encode_histories(model.encoder, histories)
    ranking_vector, _ = model.encode_histories(model.ranking_queries, histories)
    torch.testing.assert_close(serving.stored_rating.user_factors, rating_vector, atol=0, rtol=0)
    torch.testing.assert_close(serving.stored_rating.user_bias, rating_bias, atol=0, rtol=0)
    torch.testing.assert_close(serving.stored_ranking.user_vectors, ranking_vector, atol=0, rtol=0)
    assert rating_vector.shape != ranking_vector.shape or not torch.allclose(rating_vector, ranking_vector, atol=1e-3)


def test_parity_users_start_with_the_hardest_and_never_lack_a_history() -> None:
    counts = np.array([0, 3, 120, 0, 51, 1, 70, 9])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    histories = UserHistories(offsets, np.zeros(offsets[-1], np.int64), np.ones(offsets[-1], np.float32))
    generator = torch.Generator().manual_seed(0)
    users = stored_history_users(histories, 50, 7, generator)
    assert users.dtype == np.int64 and len(users) == 7
    assert users[:3].tolist() == [2, 4, 5], "longest, shortest above the cut, shortest"
    assert stored_history_users(histories, 50, 1, generator).tolist() == [2]
    assert np.all(counts[stored_history_users(histories, 50, 500, generator)] > 0)


@pytest.mark.parametrize(("head", "signature"), [("rating", "predict_user"), ("ranking", "recommend_user")])
def test_a_state_table_that_drifts_from_the_eager_model_fails_parity(
    head: str, signature: str, tiny_run: Path, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode = LSTMRecommender.encode_histories

    def shifted(self, encoder, histories, batch_size=256):  # every user gets the next user's state, in one head
        vector, bias = encode(self, encoder, histories, batch_size)
        if encoder is not _encoder(self, head):
            return vector, bias
        return vector.roll(1, dims=0), bias.roll(1, dims=0)

    monkeypatch.setattr(LSTMRecommender, "encode_histories", shifted)
    with pytest.raises(ParityError, match=rf"parity failed: \w+ {signature} at batch"):
        export_checkpoint(tiny_run / "lstm" / "checkpoint.pt", repository)
    assert not [p for p in repository.rglob("*") if p.name != ".lock"], "nothing published"
