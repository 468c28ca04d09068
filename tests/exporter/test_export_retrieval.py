"""Ranking tables for every version, and a retrieval index (checked for recall) for large catalogues."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from exporter import export_checkpoint
from exporter.errors import ExportInputError
from exporter.export import load_for_export
from exporter.ranking_tables import RankingTables
from exporter.retrieval import RecallCheck, RetrievalError, RetrievalOptions, build_retrieval_index
from exporter.retrieval_index import IndexSpec
from protos.recsys.v1 import model_config_pb2 as mc
from protos.rules import file_sha256
from trainer import train_tiny_checkpoint

faiss = pytest.importorskip("faiss")

TABLE_KINDS = (
    mc.SIDE_FILE_KIND_RANKING_USER_VECTORS,
    mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS,
    mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS,
)
INDEXED = RetrievalOptions(min_items=1, spec=IndexSpec(kind="flat"), required=True)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    run = tmp_path_factory.mktemp("run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {arch: train_tiny_checkpoint(arch, run, seed=0) for arch in ("mf", "lstm")}


def _tables(config: mc.ModelConfig, folder: Path) -> dict[int, np.ndarray]:
    return {side.kind: np.load(folder / side.path) for side in config.side_files if side.kind in TABLE_KINDS}


@pytest.mark.parametrize(("arch", "signature"), [("mf", "recommend"), ("lstm", "recommend_user")])
def test_every_version_gets_the_tables_of_its_user_index_recommend(
    checkpoints: dict[str, Path], tmp_path: Path, arch: str, signature: str
) -> None:
    result = export_checkpoint(checkpoints[arch], tmp_path, formats=("torchscript",), retrieval=INDEXED)
    tables = _tables(result.config, result.path)
    assert sorted(tables) == sorted(TABLE_KINDS)
    users = np.arange(result.config.num_users)
    scores = (
        tables[mc.SIDE_FILE_KIND_RANKING_USER_VECTORS][users] @ tables[mc.SIDE_FILE_KIND_RANKING_ITEM_VECTORS].T
        + tables[mc.SIDE_FILE_KIND_RANKING_ITEM_BIAS]
    )
    scripted = torch.jit.load(str(result.path / "model.pt"))
    expected = getattr(scripted, signature)(torch.from_numpy(users)).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    index = result.config.retrieval_index
    assert index.signature == signature and index.kind == "flat" and index.min_num_items == 1
    assert index.num_items == result.config.num_items and index.recall_users > 0
    assert index.recall_at_10 == pytest.approx(1.0)
    assert file_sha256(result.path / index.path) == index.sha256


def test_small_catalogues_get_tables_but_no_index_by_default(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    result = export_checkpoint(checkpoints["mf"], tmp_path, formats=("torchscript",))
    assert sorted(_tables(result.config, result.path)) == sorted(TABLE_KINDS)
    assert not result.config.HasField("retrieval_index")
    assert not list(result.path.glob("*.faiss"))


def test_an_index_below_the_recall_floor_fails_the_export(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("exporter.retrieval.RecallCheck.recall", lambda *args: 0.5)
    with pytest.raises(RetrievalError, match=r"recall@10 0\.500 .* below the floor 0\.9"):
        export_checkpoint(checkpoints["mf"], tmp_path, formats=("torchscript",), retrieval=INDEXED)
    assert not list((tmp_path / "mf").glob("[0-9]*"))


def test_missing_faiss_fails_only_when_an_index_was_asked_for(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise ImportError("retrieval indexes need faiss: pip install")

    monkeypatch.setattr("exporter.retrieval.import_faiss", missing)
    with pytest.raises(ExportInputError, match="need faiss"):
        export_checkpoint(checkpoints["mf"], tmp_path, formats=("torchscript",), retrieval=INDEXED)
    quiet = RetrievalOptions(min_items=1, spec=IndexSpec(kind="flat"))
    result = export_checkpoint(checkpoints["mf"], tmp_path, formats=("torchscript",), retrieval=quiet)
    assert not result.config.HasField("retrieval_index")


def test_the_ranking_table_is_found_by_its_output_not_by_architecture(checkpoints: dict[str, Path]) -> None:
    from exporter.ranking_tables import find_ranking_tables
    from trainer import architecture
    from trainer.data.interactions import UserHistories

    loaded = load_for_export(checkpoints["mf"])
    histories = UserHistories(loaded.history_offsets, loaded.history_items, loaded.history_ratings)
    serving = loaded.model.serving_module(histories)
    declaration = architecture.get("mf")
    assert find_ranking_tables(serving, declaration, len(loaded.user_ids)) is not None
    serving.recommend = lambda user: torch.zeros(len(user), len(loaded.item_ids))  # no longer the table's output
    assert find_ranking_tables(serving, declaration, len(loaded.user_ids)) is None


def _ivf_tables(seed: int = 0) -> RankingTables:
    rng = np.random.default_rng(seed)
    return RankingTables(
        signature="recommend",
        reads_stored_history=False,
        user_vectors=rng.standard_normal((64, 16)).astype(np.float32),
        item_vectors=rng.standard_normal((4000, 16)).astype(np.float32),
        item_bias=rng.standard_normal(4000).astype(np.float32) * 0.1,
    )


@pytest.mark.parametrize("target", [0.0, 0.95])
def test_an_ivf_index_searches_more_cells_until_it_reaches_the_recall_target(tmp_path: Path, target: float) -> None:
    tables = _ivf_tables()
    options = RetrievalOptions(
        min_items=1, spec=IndexSpec(kind="ivf", ivf_lists=64, ivf_nprobe=1), recall_target=target, recall_floor=0.0
    )
    described = build_retrieval_index(tables, np.ones(64, np.int64), tmp_path, options)
    written = faiss.read_index(str(tmp_path / described.path))
    assert int(described.parameters["nprobe"]) == written.nprobe
    assert file_sha256(tmp_path / described.path) == described.sha256
    if target == 0.0:
        assert written.nprobe == 1 and described.recall_at_10 < 0.95  # one cell of 64 misses most of the top 10
    else:
        assert 1 < written.nprobe <= 64 and described.recall_at_10 >= target
        check = RecallCheck.of_users(tables, np.arange(64), "inner_product")
        assert check.recall(written) == pytest.approx(described.recall_at_10)
