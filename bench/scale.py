"""Training at scale: each architecture's seconds per epoch, total seconds, peak memory and quality by data size.

Data sizes: MovieLens 100K u1 (``ml100k``) and synthetic sets with MovieLens shapes: ``1M`` (ML-1M's
6,040 users x 3,706 items), ``25M`` (ML-25M's 162,541 x 59,047) and ``5M`` between them (the geometric
mean of both shapes, 31,333 x 14,793). Synthetic data is generated once per size into ``--out/cache``
(a pickled split, 10% random test) and read back by each run.

Every (size, architecture) trains in a fresh child process under ``RLIMIT_AS`` (``--memory-gib``), so its
peak resident memory (``ru_maxrss``) is its own and a blow-up fails that row cleanly instead of taking
the machine. Each head is capped by ``--epochs`` and ``--max-seconds`` (checked after every batch),
without the declared refits; at sizes from ``--one-epoch-from`` on, each head runs exactly one whole
epoch, uncapped, and the row reports its cost (or its failure). Ranking quality is measured on at most
``--eval-users`` users (validation and test), RMSE on every test rating::

    PYTHONPATH=$PWD python -m bench.scale --sizes ml100k,1M --epochs 10 --max-seconds 120
    PYTHONPATH=$PWD python -m bench.scale --sizes 25M --one-epoch-from 25M

Prints one markdown row per run as it finishes, then how each figure grows with data size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ML100K = next(
    (p / "shared" / "data" / "ml-100k" for p in ROOT.parents if (p / "shared" / "data" / "ml-100k").is_dir()),
    ROOT.parent / "shared" / "data" / "ml-100k",
)
"""MovieLens 100K, read where it lies (never copied): the first ``shared/data/ml-100k`` above the checkout."""
SHAPES = {"1M": (6_040, 3_706, 1_000_000), "5M": (31_333, 14_793, 5_000_000), "25M": (162_541, 59_047, 25_000_000)}
SIZES = ("ml100k", *SHAPES)
ARCHITECTURES = ("mf", "dense", "lstm", "gcn")
RATINGS = {"ml100k": 80_000, **{name: shape[2] for name, shape in SHAPES.items()}}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _split_path(size: str, out: Path) -> Path:
    return out / "cache" / f"split-{size}.pkl"


def _prepare(size: str, out: Path) -> dict:
    """Generate (or read) the split of ``size`` and pickle it for the training children."""
    from trainer.data.sources import SplitOptions, load_split

    path = _split_path(size, out)
    started = time.perf_counter()
    if size == "ml100k":
        split = load_split(str(ML100K), "u1")
    else:
        users, items, ratings = SHAPES[size]
        split = load_split(f"synthetic:users={users},items={items},ratings={ratings}", "random", SplitOptions(0.1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(split, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return {"seconds": time.perf_counter() - started, "train": len(split.train), "test": len(split.test)}


def cached_split(size: str, out: Path) -> object:
    """The split of ``size`` from ``out``'s cache (pickled by :func:`_prepare`), generated first when missing."""
    path = _split_path(size, out)
    if not path.is_file():
        _prepare(size, out)
    with path.open("rb") as handle:
        return pickle.load(handle)


def _users_subset(data: object, users: np.ndarray) -> object:
    return data.subset(np.flatnonzero(np.isin(data.users, users)))  # type: ignore[attr-defined]


def _train(size: str, name: str, args: argparse.Namespace) -> dict:
    """One architecture on one size, in this (child) process: both heads, then test metrics."""
    import torch

    from trainer import architecture
    from trainer.data.splits import validation_split
    from trainer.evaluation import ranking_metrics, rating_errors
    from trainer.experiment import build_for
    from trainer.fitting import fit
    from trainer.ranking_fit import fit_ranking

    torch.set_num_threads(args.threads)
    split = cached_split(size, args.out)
    loaded_mib = _peak_mib()
    one_epoch = SIZES.index(size) >= SIZES.index(args.one_epoch_from)
    epochs = 1 if one_epoch else args.epochs
    max_seconds = None if one_epoch else args.max_seconds  # one whole epoch, whatever it costs
    declaration = architecture.get(name)
    declared = declaration.training_for(len(split.train))
    rating = dataclasses.replace(
        declared,
        epochs=epochs,
        patience=min(declared.patience, epochs),
        refit=False,
        max_seconds=max_seconds,
        progress=False,
    )
    declared_ranking = declaration.ranking_for(len(split.train))
    ranking = dataclasses.replace(
        declared_ranking,
        epochs=epochs,
        eval_every=min(declared_ranking.eval_every, epochs),
        refit=False,
        max_seconds=max_seconds,
        progress=False,
    )
    rng = np.random.default_rng(0)
    fit_data, valid = validation_split(split.train, 0.05, 0)
    sample = np.unique(valid.users)
    sample = rng.choice(sample, min(len(sample), args.eval_users), replace=False)
    started = time.perf_counter()
    torch.manual_seed(0)
    model = build_for(name, fit_data, {"global_mean": split.train.global_mean()}, run_ratings=len(split.train))
    rating_fit = fit(model, fit_data, valid, rating)
    model.use_histories(fit_data.histories())
    ranking_fit = fit_ranking(model, fit_data, _users_subset(valid, sample), ranking)
    train_seconds = time.perf_counter() - started
    model.use_histories(split.train.histories())
    model.eval()
    histories = split.train.histories()
    test = split.test
    chunk = 1 << 20
    predicted = np.concatenate(
        [
            model.rate(test.users[s : s + chunk], test.items[s : s + chunk], histories).numpy()
            for s in range(0, len(test), chunk)
        ]
    )
    rmse = rating_errors(predicted, test.ratings, test.rating_scale)["rmse"]
    users = np.unique(test.users)
    users = rng.choice(users, min(len(users), args.eval_users), replace=False)
    recall = ranking_metrics(lambda u: model.rank(u, histories), histories, _users_subset(test, users))["recall@10"]
    return {
        "rating_epochs": rating_fit.epochs_run,
        "rating_epoch_s": rating_fit.seconds_per_epoch(),
        "rating_cut_short": rating_fit.cut_short,
        "ranking_epochs": ranking_fit.epochs_run,
        "ranking_epoch_s": ranking_fit.seconds_per_epoch(),
        "ranking_cut_short": ranking_fit.cut_short,
        "train_s": train_seconds,
        "rmse": rmse,
        "recall@10": recall,
        "loaded_mib": loaded_mib,
    }


def _child(argv: list[str], memory_gib: float, timeout: float) -> dict:
    def limit() -> None:
        cap = int(memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.scale", "--child", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=limit,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        reason = next((line for line in reversed(lines) if "Error" in line), lines[-1])
        return {"error": reason.strip()[:140]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _epochs_cell(seconds: float, epochs: int, cut_short: bool | None) -> str:
    """Seconds per whole epoch and the epochs run; an epoch cut at ``--max-seconds`` is named, not averaged."""
    whole = epochs - 1 if cut_short else epochs
    if not whole:
        return "- (1st cut short)"
    return f"{seconds:.2f} ({whole}{' + 1 cut short' if cut_short else ''})"


def _row(size: str, name: str, r: dict) -> str:
    if "error" in r:
        return f"| {size} | {name} | failed: {r['error']} | - | - | - | - | - | - |"
    rating = _epochs_cell(r["rating_epoch_s"], r["rating_epochs"], r.get("rating_cut_short"))
    ranking = _epochs_cell(r["ranking_epoch_s"], r["ranking_epochs"], r.get("ranking_cut_short"))
    return (
        f"| {size} | {name} | {rating} | {ranking} | {r['train_s']:.1f} | {r['peak_rss_mib']:.0f} | "
        f"{r['rmse']:.4f} | {r['recall@10']:.4f} | {r['wall_s']:.0f} |"
    )


def growth_table(results: dict[str, dict[str, dict]]) -> list[str]:
    """Markdown rows: each figure at each size as a multiple of the same architecture's smallest size."""
    sizes = [s for s in SIZES if s in results]
    keys = (("rating_epoch_s", "rating s/epoch"), ("ranking_epoch_s", "ranking s/epoch"), ("peak_rss_mib", "peak MiB"))
    base = sizes[0] if sizes else None
    headers = [f"{s} / {base} (data x{RATINGS[s] / RATINGS[base]:.1f})" for s in sizes[1:]]
    lines = [
        f"| architecture | figure | {' | '.join(headers)} |",
        f"|---|---|{'---|' * len(sizes[1:])}",
    ]
    for name in ARCHITECTURES:
        for key, label in keys:
            first = results.get(base, {}).get(name, {})
            if key not in first:
                continue
            cells = []
            for size in sizes[1:]:
                row = results[size].get(name, {})
                known = key in row and first[key] and not math.isnan(row[key]) and not math.isnan(first[key])
                cells.append(f"{row[key] / first[key]:.1f}x" if known else "-")
            lines.append(f"| {name} | {label} | {' | '.join(cells)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="ml100k,1M", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--models", default=",".join(ARCHITECTURES), help="architectures")
    parser.add_argument("--epochs", type=int, default=10, help="epoch cap per head below --one-epoch-from")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="wall-time cap per head")
    parser.add_argument("--one-epoch-from", default="25M", choices=SIZES, help="from this size on: one epoch per head")
    parser.add_argument("--eval-users", type=int, default=5000, help="users ranked for validation and test Recall@10")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run (runs are sequential)")
    parser.add_argument("--memory-gib", type=float, default=14.0, help="address-space limit of each run")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is given up")
    parser.add_argument("--out", type=Path, default=Path("out/bench/train_scale"), help="cache and JSON folder")
    if argv[:1] == ["--child"]:
        kind, size = argv[1], argv[2]
        args = parser.parse_args(argv[4:])
        result = _prepare(size, args.out) if kind == "prepare" else _train(size, argv[3], args)
        result["peak_rss_mib"] = _peak_mib()
        print(json.dumps(result))
        return
    args = parser.parse_args(argv)
    passed = _strip_values(argv, ("--sizes", "--models"))
    results: dict[str, dict[str, dict]] = {}
    print(
        "| data | model | rating s/epoch (whole epochs) | ranking s/epoch (whole epochs) | train s | peak RSS MiB |"
        " test RMSE |"
        " Recall@10 | wall s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for size in filter(None, args.sizes.split(",")):
        if not _split_path(size, args.out).is_file():
            prepared = _child(["prepare", size, "-", *passed], args.memory_gib, args.timeout)
            if "error" in prepared:
                print(f"| {size} | - | data failed: {prepared['error']} | - | - | - | - | - | - |", flush=True)
                continue
        results[size] = {}
        for name in filter(None, args.models.split(",")):
            started = time.perf_counter()
            row = _child(["train", size, name, *passed], args.memory_gib, args.timeout)
            row["wall_s"] = time.perf_counter() - started
            results[size][name] = row
            print(_row(size, name, row), flush=True)
    print("\nGrowth with data size (each figure over the same architecture's figure at the smallest size):\n")
    print("\n".join(growth_table(results)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"scale-{args.sizes.replace(',', '_')}.json").write_text(json.dumps(results, indent=2))


def _strip_values(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in flags:
            skip = True
            continue
        if arg.split("=", 1)[0] in flags:
            continue
        out.append(arg)
    return out


if __name__ == "__main__":
    main()
