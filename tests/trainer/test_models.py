"""The shared model surface (docs/interfaces.md section 2) on every architecture."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from protos.tensors import INPUT_NAMES
from trainer import architecture as registry
from trainer.data.splits import Split
from trainer.models import build_model, model_class
from trainer.models.lstm import LSTMRecommender

ARCHITECTURES = registry.BUILT_IN

SIZES = {"mf": {"dim": 8}, "dense": {"dim": 8, "hidden_dim": 16}, "gcn": {"hidden_dim": 20, "dim": 8}}


def make(architecture: str, split: Split, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    train = split.train
    hparams: dict = {"num_items": train.num_items, "rating_min": 1.0, "rating_max": 5.0, "global_mean": 3.5}
    if architecture == "lstm":
        hparams.update(dim=8, hidden_dim=12, max_history_length=16)
    else:
        hparams.update(num_users=train.num_users, **SIZES[architecture])
    hparams.update(registry.get(architecture).tiny)
    hparams.update({"max_history_length": 16} if architecture == "lstm" else {})
    model = build_model(architecture, hparams, train.histories())
    with torch.no_grad():  # random weights, so outputs spread over and beyond the rating scale
        for name, param in model.named_parameters():
            if "bias" not in name or param.dim() == 1:
                param.normal_(0.0, 0.8)
    return model.eval()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_rate_and_rank_shapes_and_ranges(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    histories = tiny_split.train.histories()
    users, items = np.arange(6), np.arange(6) * 3
    rated = model.rate(users, items, histories)
    ranked = model.rank(users, histories)
    assert rated.shape == (6,) and rated.dtype == torch.float32
    assert rated.min() >= 1.0 and rated.max() <= 5.0
    assert ranked.shape == (6, tiny_split.train.num_items) and ranked.dtype == torch.float32
    assert torch.isfinite(ranked).all()
    assert not torch.allclose(ranked[0], ranked[1]), "different users must get different ranking scores"


def _signature_inputs(architecture: str, split: Split, name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    users = torch.randint(0, split.train.num_users, (6,), generator=generator)
    arrays = {"user": users, "item": torch.randint(0, split.train.num_items, (6,), generator=generator)}
    padded = split.train.histories().padded(users.numpy(), 16)
    arrays.update(zip(("history_items", "history_ratings", "lengths"), map(torch.from_numpy, padded), strict=True))
    declaration = registry.get(architecture).signature(name)
    return {INPUT_NAMES[kind]: arrays[INPUT_NAMES[kind]] for kind in declaration.inputs}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_serving_module_matches_every_declared_signature_and_scripts(architecture: str, tiny_split: Split) -> None:
    model = make(architecture, tiny_split)
    histories = tiny_split.train.histories()
    serving = model.serving_module(histories)
    assert not serving.training
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(serving)
    for declaration in registry.get(architecture).signatures:
        inputs = _signature_inputs(architecture, tiny_split, declaration.name)
        expected = declaration.eager(model, inputs, histories)
        method = "forward" if declaration.name == "predict" else declaration.name
        for module in (serving, scripted):
            torch.testing.assert_close(getattr(module, method)(*inputs.values()), expected, rtol=1e-5, atol=1e-5)


def test_gcn_serving_module_holds_no_graph(tiny_split: Split) -> None:
    serving = make("gcn", tiny_split).serving_module(tiny_split.train.histories())
    assert "torch_geometric" not in type(serving).__module__
    for module in {type(m).__module__ for m in serving.modules()} - {"torch.nn.modules.container"}:
        if not module.startswith("trainer."):
            continue
        source = Path(sys.modules[module].__file__).read_text(encoding="utf-8")
        if module.endswith("heads"):  # the frozen modules' own file imports no graph code
            tree = ast.parse(source)
            imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert not any(name.split(".")[0] == "torch_geometric" for name in imported)
    assert not any(
        isinstance(m, torch.nn.Module) and "torch_geometric" in type(m).__module__ for m in serving.modules()
    )
    assert not any(t.is_sparse or t.layout != torch.strided for t in serving.state_dict().values())


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_hparams_rebuild_and_repr(architecture: str, tiny_split: Split, graph_arrays: dict) -> None:
    model = make(architecture, tiny_split)
    del graph_arrays
    histories = tiny_split.train.histories()
    rebuilt = type(model).from_data(model.hparams, histories)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    users, items = np.arange(5), np.arange(5)
    torch.testing.assert_close(rebuilt.rate(users, items, histories), model.rate(users, items, histories))
    torch.testing.assert_close(rebuilt.rank(users, histories), model.rank(users, histories))
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
    histories = tiny_split.train.histories()
    before = model.rank(users, histories)
    empty = {
        "history_offsets": np.zeros(tiny_split.train.num_users + 1, dtype=np.int64),
        "history_items": np.zeros(0, dtype=np.int64),
        "history_ratings": np.zeros(0, dtype=np.float32),
    }
    model.set_graph(**empty)
    assert not torch.allclose(before, model.rank(users, histories)), "propagation must depend on the graph"
    model.set_graph(**graph_arrays)
    torch.testing.assert_close(before, model.rank(users, histories))


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match="mf, dense, lstm, gcn"):
        build_model("svd", {}, None)


def test_register_refuses_a_class_that_does_not_declare_the_name() -> None:
    declaration = registry.get("mf")
    with pytest.raises(TypeError, match="declaration is named 'other'"):
        registry.register(registry.Architecture("other", declaration.model_class, declaration.signatures))
    with pytest.raises(TypeError, match="must subclass"):
        registry.register(registry.Architecture("x", torch.nn.Linear, ()))  # type: ignore[arg-type]
    assert "other" not in registry.names()
