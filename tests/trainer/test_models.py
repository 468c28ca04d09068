"""The shared model surface (docs/interfaces.md section 2) on every architecture."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.data.splits import Split
from trainer.models import ARCHITECTURES, build_model, model_class
from trainer.models.lstm import LSTMRecommender

SIZES = {"mf": {"dim": 8}, "dense": {"dim": 8, "hidden_dim": 16}, "gcn": {"hidden_dim": 20, "dim": 8}}


def make(architecture: str, split: Split, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    train = split.train
    hparams: dict = {"num_items": train.num_items, "rating_min": 1.0, "rating_max": 5.0, "global_mean": 3.5}
    if architecture == "lstm":
        hparams.update(dim=8, hidden_dim=12, max_history_length=16)
    else:
        hparams.update(num_users=train.num_users, **SIZES[architecture])
    histories = train.histories()
    model = build_model(
        architecture,
        hparams,
        history_offsets=histories.offsets,
        history_items=histories.items,
        history_ratings=histories.ratings,
    )
    with torch.no_grad():  # random weights, so outputs spread over and beyond the rating scale
        for name, param in model.named_parameters():
            if "bias" not in name or param.dim() == 1:
                param.normal_(0.0, 0.8)
    return model.eval()


def inputs(
    architecture: str, split: Split, batch: int = 6
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """(predict args, recommend args) for a batch of training users."""
    generator = torch.Generator().manual_seed(1)
    users = torch.randint(0, split.train.num_users, (batch,), generator=generator)
    items = torch.randint(0, split.train.num_items, (batch,), generator=generator)
    if architecture != "lstm":
        return (users, items), (users,)
    items_t, ratings_t, lengths = split.train.histories().padded(users.numpy(), 16)
    history = (torch.from_numpy(items_t), torch.from_numpy(ratings_t), torch.from_numpy(lengths))
    return (*history, items), history


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_shapes_ranges_and_consistency(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    predict_args, recommend_args = inputs(architecture, tiny_split)
    raw = model(*predict_args)
    predicted = model.predict(*predict_args)
    scores = model.recommend(*recommend_args)
    assert raw.shape == predicted.shape == (6,)
    assert raw.dtype == predicted.dtype == scores.dtype == torch.float32
    assert scores.shape == (6, tiny_split.train.num_items)
    assert predicted.min() >= 1.0 and predicted.max() <= 5.0
    torch.testing.assert_close(predicted, raw.clamp(1.0, 5.0))
    # recommend scores the same (user, item) pairs as forward, before clipping
    item = predict_args[-1]
    torch.testing.assert_close(scores[torch.arange(6), item], raw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_serving_module_matches_and_scripts(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    predict_args, recommend_args = inputs(architecture, tiny_split)
    serving = model.serving_module()
    assert not serving.training
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(serving)
    for module in (serving, scripted):
        torch.testing.assert_close(module(*predict_args), model.predict(*predict_args), rtol=0, atol=1e-5)
        torch.testing.assert_close(
            module.recommend(*recommend_args), model.recommend(*recommend_args), atol=1e-5, rtol=0
        )


def test_gcn_serving_module_holds_no_graph(tiny_split: Split) -> None:
    serving = make("gcn", tiny_split).serving_module()
    assert "torch_geometric" not in type(serving).__module__
    tree = ast.parse(Path(sys.modules[type(serving).__module__].__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not any(name.split(".")[0] in ("torch_geometric", "trainer") for name in imported)
    assert not any(t.is_sparse or t.layout != torch.strided for t in serving.state_dict().values())


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_hparams_rebuild_and_repr(architecture: str, tiny_split: Split, graph_arrays: dict) -> None:
    model = make(architecture, tiny_split)
    extra = graph_arrays if architecture == "gcn" else {}
    rebuilt = type(model)(**model.hparams, **extra)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    predict_args, _ = inputs(architecture, tiny_split)
    torch.testing.assert_close(rebuilt.predict(*predict_args), model.predict(*predict_args))
    assert repr(model).startswith(f"{type(model).__name__}(")
    assert str(tiny_split.train.num_items) in repr(model)
    assert type(model) is model_class(architecture) and model.architecture == architecture


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_reset_parameters_reinitialises(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "reset_parameters changed nothing"


def test_lstm_ignores_padding_and_reads_only_the_prefix(tiny_split: Split) -> None:
    model = make("lstm", tiny_split)
    items = torch.tensor([[3, 5, 7, 0, 0]])
    ratings = torch.tensor([[4.0, 2.0, 5.0, 0.0, 0.0]])
    lengths = torch.tensor([3])
    candidate = torch.tensor([9])
    base = model.predict(items, ratings, lengths, candidate)
    noisy_pad = model.predict(
        torch.tensor([[3, 5, 7, 11, 13]]), torch.tensor([[4.0, 2.0, 5.0, 1.0, 1.0]]), lengths, candidate
    )
    trimmed = model.predict(items[:, :3], ratings[:, :3], lengths, candidate)
    torch.testing.assert_close(base, noisy_pad)
    torch.testing.assert_close(base, trimmed)
    changed = model.predict(items, torch.tensor([[1.0, 2.0, 5.0, 0.0, 0.0]]), lengths, candidate)
    assert not torch.allclose(base, changed), "the ratings in the history must matter"


def test_lstm_rejects_histories_longer_than_its_limit(tiny_split: Split) -> None:
    model = make("lstm", tiny_split)
    assert isinstance(model, LSTMRecommender)
    too_long = torch.zeros(1, 17, dtype=torch.long)
    with pytest.raises(ValueError, match="max_history_length=16"):
        model.recommend(too_long, too_long.float(), torch.tensor([17]))


@pytest.mark.parametrize("architecture", ["mf", "dense", "gcn"])
def test_out_of_range_ids_raise(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    with pytest.raises(IndexError, match="user index out of range"):
        model.predict(torch.tensor([tiny_split.train.num_users]), torch.tensor([0]))
    with pytest.raises(IndexError, match="item index out of range"):
        model.predict(torch.tensor([0]), torch.tensor([-1]))


def test_gcn_requires_and_uses_its_graph(tiny_split: Split, graph_arrays: dict) -> None:
    model = make("gcn", tiny_split)
    with pytest.raises(ValueError, match="training graph"):
        type(model)(**model.hparams)
    users = torch.arange(5)
    before = model.recommend(users)
    empty = {
        "history_offsets": np.zeros(tiny_split.train.num_users + 1, dtype=np.int64),
        "history_items": np.zeros(0, dtype=np.int64),
        "history_ratings": np.zeros(0, dtype=np.float32),
    }
    model.set_graph(**empty)
    assert not torch.allclose(before, model.recommend(users)), "propagation must depend on the graph"
    model.set_graph(**graph_arrays)
    torch.testing.assert_close(before, model.recommend(users))


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match="mf, dense, lstm, gcn"):
        build_model("svd", {})
