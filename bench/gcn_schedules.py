"""The GCN's rating head on its two schedules, side by side on one split: full-graph epochs or mini-batches.

The MovieLens 100K schedule takes one full-graph optimiser step per epoch for up to 1000 epochs; the
large-data one (``trainer.architecture.LargeData``) takes 64K-rating mini-batches with a neighbour budget
per node. This fits the rating head alone (no refit) on each, and on each extra budget, and prints test
RMSE, the best epoch and the seconds it took::

    PYTHONPATH=$PWD python -m bench.gcn_schedules --size 1M --neighbours 0,256
        # 0 = read every neighbour; the full-graph schedule always runs first

Uses the split ``bench.scale`` caches. At the 1M shape the full-graph run alone takes about half an hour
of one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from bench.scale import SIZES, cached_split

EVERY_NEIGHBOUR = 1 << 40
"""A budget no node reaches: the mini-batch schedule reading every neighbour."""


def fit_schedule(
    split: object, neighbours: int | None, max_seconds: float | None = None, *, fixed_batch: bool = False
) -> dict[str, float]:
    """Fit the GCN's rating head on ``split`` and return its test RMSE, best epoch, epochs and seconds.

    Args:
        split: train and test ratings.
        neighbours: None for the full-graph schedule; otherwise the mini-batch schedule with this budget
            per node (0 reads every neighbour).
        max_seconds: wall-time cap of the fit (None: none).
        fixed_batch: keep the mini-batch schedule's ``batch_size`` at any data size (no
            ``max_steps_per_epoch``), as before batches grew with the data.
    """
    import torch

    from trainer import architecture
    from trainer.data.splits import validation_split
    from trainer.evaluation import rating_errors
    from trainer.experiment import build_for
    from trainer.fitting import fit

    declared = architecture.get("gcn")
    large = declared.large_data
    if large is None or large.training is None:
        raise ValueError("the GCN declares no large-data rating schedule")
    schedule = declared.training if neighbours is None else large.training
    schedule = dataclasses.replace(schedule, refit=False, progress=False, max_seconds=max_seconds)
    if fixed_batch:
        schedule = dataclasses.replace(schedule, max_steps_per_epoch=None)
    budget = 0 if neighbours is None else (neighbours or EVERY_NEIGHBOUR)
    train, test = split.train, split.test  # type: ignore[attr-defined]
    fit_data, valid = validation_split(train, 0.05, 0)
    torch.manual_seed(0)
    model = build_for("gcn", fit_data, {"global_mean": train.global_mean(), "rating_neighbours": budget})
    started = time.perf_counter()
    result = fit(model, fit_data, valid, schedule)
    seconds = time.perf_counter() - started
    model.use_histories(train.histories())
    predicted = model.rate(test.users, test.items, train.histories()).numpy()
    return {
        "test_rmse": rating_errors(predicted, test.ratings, test.rating_scale)["rmse"],
        "best_val_rmse": result.best_val_rmse,
        "best_epoch": float(result.best_epoch),
        "epochs": float(result.epochs_run),
        "seconds": seconds,
        "batch_size": float(schedule.for_ratings(len(fit_data)).batch_size),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1M", choices=SIZES, help="data: a synthetic shape or ml100k (u1)")
    parser.add_argument("--neighbours", default="0,256", help="mini-batch budgets per node (0: every neighbour)")
    parser.add_argument("--no-full-graph", action="store_true", help="skip the full-graph schedule")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time cap of each fit")
    parser.add_argument(
        "--fixed-batch",
        action="store_true",
        help="also fit each budget on the declared batch_size kept at any size (how batches were before they grew)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("out/bench/train_scale"), help="bench.scale's cache folder")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    split = cached_split(args.size, args.out)
    runs: list[tuple[int | None, bool]] = [] if args.no_full_graph else [(None, False)]
    for neighbours in (int(n) for n in args.neighbours.split(",") if n):
        runs += [(neighbours, False)] + ([(neighbours, True)] if args.fixed_batch else [])
    print(f"GCN rating head at the {args.size} shape, {args.threads} thread(s), no refit\n")
    print("| schedule | ratings per step | test RMSE | best val RMSE | best epoch / run | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for neighbours, fixed_batch in runs:
        row = fit_schedule(split, neighbours, args.max_seconds, fixed_batch=fixed_batch)
        budget = f"{neighbours} neighbours" if neighbours else "every neighbour"
        label = "full graph" if neighbours is None else f"mini-batch, {budget}"
        label += ", fixed batch" if fixed_batch else ""
        print(
            f"| {label} | {row['batch_size']:,.0f} | {row['test_rmse']:.4f} | {row['best_val_rmse']:.4f} |"
            f" {row['best_epoch']:.0f} / {row['epochs']:.0f} | {row['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
