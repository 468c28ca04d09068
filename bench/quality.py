"""Quality benchmark: train the models on MovieLens 100K u1.base, evaluate on u1.test, print the table.

Run from the repository root (the data is read from its path, never copied: GroupLens' terms forbid
redistribution)::

    python bench/quality.py                            # ../shared/data/ml-100k, split u1, 2 worker processes
    python bench/quality.py --seed 1                   # the same with another seed
    python bench/quality.py --split temporal --models lstm   # each user's last 5 ratings held out
    python bench/quality.py --data PATH --jobs 1

Prints a markdown table (RMSE, MAE, RMSE_01, Recall@10, NDCG@10, Coverage@10, train seconds) with the
global-mean, popularity and EASE rows computed in the same run, a Surprise SVD reference row when
``surprise`` is importable (it is not a project dependency), the wall time, and each quality target with
its verdict. Timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainer.architecture import BUILT_IN
from trainer.baselines import baseline_metrics
from trainer.data.sources import SPLITS, load_split
from trainer.data.splits import Split
from trainer.evaluation import ranking_metrics, rating_errors
from trainer.jobs import RunOptions, run_models
from trainer.report import build_report, format_table, write_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k"
# Test RMSE targets in stars on u1, and the wall-clock budget for all four together.
TARGETS = {"mf": 0.93, "dense": 0.94, "lstm": 0.95, "gcn": 0.92}
BEST_TARGET = 0.910
WALL_BUDGET_S = 600.0
# Ranking: every model's Recall@10 at least this times popularity's; the best model's at least EASE's.
POPULARITY_FACTOR = 1.5
# Longest first, so two workers finish close together.
TRAIN_ORDER = ("gcn", "lstm", "dense", "mf")


def surprise_svd(split: Split) -> dict[str, float | None] | str:
    """Surprise's SVD (default settings) trained on the same split, or the reason it cannot run."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return "surprise is not installed (pip install scikit-surprise to add the reference row)"
    train = split.train
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="surprise-") as folder:  # surprise reads files or pandas frames
        path = Path(folder) / "train.tsv"
        rows = zip(train.users, train.items, train.ratings, strict=True)
        path.write_text("".join(f"{train.user_ids[u]}\t{train.item_ids[i]}\t{r}\n" for u, i, r in rows))
        reader = Reader(line_format="user item rating", sep="\t", rating_scale=train.rating_scale)
        dataset = Dataset.load_from_file(str(path), reader)
    algo = SVD(random_state=0)
    trainset = dataset.build_full_trainset()
    algo.fit(trainset)
    seconds = time.perf_counter() - started
    test = split.test
    predicted = np.array(
        [algo.predict(test.user_ids[u], test.item_ids[i]).est for u, i in zip(test.users, test.items, strict=True)]
    )
    scores = _svd_scores(algo, trainset, train)
    return {
        **rating_errors(predicted, test.ratings, test.rating_scale),
        **ranking_metrics(lambda users: scores[torch.from_numpy(users)], train.histories(), test),
        "train_seconds": seconds,
    }


def _svd_scores(algo: object, trainset: object, train: object) -> torch.Tensor:
    """Surprise SVD's unclipped ``mean + b_u + b_i + <p_u, q_i>`` for every (user, item) in our index space."""
    mean = trainset.global_mean
    users = np.array([_inner(trainset.to_inner_uid, u) for u in train.user_ids])
    items = np.array([_inner(trainset.to_inner_iid, i) for i in train.item_ids])
    pu = np.where(users[:, None] >= 0, algo.pu[np.maximum(users, 0)], 0.0)
    qi = np.where(items[:, None] >= 0, algo.qi[np.maximum(items, 0)], 0.0)
    bu = np.where(users >= 0, algo.bu[np.maximum(users, 0)], 0.0)
    bi = np.where(items >= 0, algo.bi[np.maximum(items, 0)], 0.0)
    return torch.from_numpy((mean + bu[:, None] + bi[None, :] + pu @ qi.T).astype(np.float32))


def _inner(lookup: object, raw: str) -> int:
    try:
        return lookup(raw)
    except ValueError:
        return -1


def verdicts(
    models: dict[str, dict[str, float]], baselines: dict[str, dict[str, float | None]], split: str, wall: float
) -> list[str]:
    """One line per quality target: the figure, the bar and PASS/MISS (and by how much a miss falls short)."""
    lines = []

    def line(label: str, value: float, bar: float, higher: bool) -> str:
        ok = value >= bar if higher else value <= bar
        gap = "" if ok else f" (short by {abs(value - bar):.4f})"
        return f"{label} {value:.4f} {'>=' if higher else '<='} {bar:.4f}: {'PASS' if ok else 'MISS'}{gap}"

    if split == "u1":
        for name, bar in TARGETS.items():
            if name in models:
                lines.append(line(f"{name:5s} RMSE", models[name]["rmse"], bar, higher=False))
        if set(TARGETS) <= set(models):
            best = min(TARGETS, key=lambda n: models[n]["rmse"])
            lines.append(line(f"best  RMSE ({best})", models[best]["rmse"], BEST_TARGET, higher=False))
    ease, popularity = baselines.get("ease"), baselines["popularity"]
    for name, metrics in models.items():
        bar = POPULARITY_FACTOR * float(popularity["recall@10"])
        lines.append(
            line(f"{name:5s} Recall@10 vs {POPULARITY_FACTOR:g} x popularity", metrics["recall@10"], bar, True)
        )
    if ease is not None and split == "u1":
        best = max(models, key=lambda n: models[n]["recall@10"])
        for metric in ("recall@10", "ndcg@10"):
            lines.append(line(f"best  {metric} ({best}) vs EASE", models[best][metric], float(ease[metric]), True))
    if ease is not None and split == "temporal" and "lstm" in models:
        lines.append(
            line("lstm  Recall@10 vs EASE (temporal)", models["lstm"]["recall@10"], float(ease["recall@10"]), True)
        )
    if len(models) == len(TARGETS):
        lines.append(line(f"wall  seconds for all {len(models)}", wall, WALL_BUDGET_S, higher=False))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MovieLens 100K folder")
    parser.add_argument("--split", default="u1", choices=SPLITS, help="split to train and test on")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once, one process and thread each")
    parser.add_argument("--seed", type=int, default=0, help="seed for validation carving and training")
    parser.add_argument("--out", type=Path, default=None, help="keep checkpoints here (default: a temporary folder)")
    parser.add_argument("--report", type=Path, default=None, help="also write the report JSON here")
    parser.add_argument("--no-surprise", action="store_true", help="skip the Surprise SVD reference row")
    parser.add_argument("--progress", action="store_true", help="show tqdm bars (interleaved when --jobs > 1)")
    parser.add_argument("--models", default=",".join(TRAIN_ORDER), help="comma-separated architectures to train")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not (args.data / "u.data").is_file():
        print(f"MovieLens 100K not found at {args.data}; pass --data PATH", file=sys.stderr)
        return 2
    split = load_split(str(args.data), args.split)
    with tempfile.TemporaryDirectory(prefix="quality-") as scratch:
        started = time.perf_counter()
        order = [name for name in TRAIN_ORDER if name in args.models.split(",")]
        trained = run_models(
            order,
            split,
            args.out or Path(scratch),
            RunOptions(seed=args.seed, progress=args.progress),
            jobs=args.jobs,
            data={"source": str(args.data)},
        )
        wall = time.perf_counter() - started
    models = {name: trained[name] for name in BUILT_IN if name in trained}
    baselines = baseline_metrics(split)
    references: dict[str, dict[str, float | None]] = {}
    note = ""
    if not args.no_surprise:
        svd = surprise_svd(split)
        if isinstance(svd, str):
            note = f"(no Surprise row: {svd})"
        else:
            references["Surprise SVD"] = svd
    print(f"MovieLens 100K {args.split}: {len(split.train)} train / {len(split.test)} test ratings, seed {args.seed}\n")
    print(format_table(models, baselines, references))
    if note:
        print(note)
    print(f"\n{len(models)} models trained in {wall:.0f} s wall clock ({args.jobs} worker processes)\n")
    print("\n".join(verdicts(models, baselines, args.split, wall)))
    if args.report:
        data = {"split": args.split, "seed": str(args.seed)}
        write_report(args.report, build_report(models, baselines, data=data, references=references))
    return 0


if __name__ == "__main__":
    sys.exit(main())
