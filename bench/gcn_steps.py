"""Seconds per mini-batch step of the GCN's rating head, by neighbour budget, at one data size.

An epoch of GC-MC at MovieLens 25M's shape runs for about an hour on one thread; timing a few steps
says what it costs (and what a smaller neighbour budget saves) without running it. Each step is split
into forward, backward and optimiser, over batches of the large-data schedule's size drawn at random
from the training ratings. The data is the split ``bench.scale`` caches (generated on first use)::

    PYTHONPATH=$PWD python -m bench.gcn_steps --size 25M --neighbours 256,64 --steps 4

Prints a markdown table: one row per budget (and batch size, ``--batch-sizes``), the median of its steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np

from bench.scale import SIZES, cached_split


def time_steps(
    split: object, neighbours: int, steps: int, seed: int = 0, batch_size: int | None = None
) -> dict[str, float]:
    """Median seconds of ``steps`` mini-batch steps (forward, backward, optimiser) with this budget.

    ``batch_size`` None takes the declared schedule's batch for this data (``TrainConfig.for_ratings``).
    """
    import torch

    from trainer import architecture
    from trainer.data.splits import validation_split
    from trainer.experiment import build_for
    from trainer.fitting import adamw

    train = split.train  # type: ignore[attr-defined]
    fit_data, _ = validation_split(train, 0.05, seed)
    large = architecture.get("gcn").large_data
    if large is None or large.training is None:
        raise ValueError("the GCN declares no large-data rating schedule to time")
    schedule = large.training.for_ratings(len(fit_data))  # the mini-batch schedule, whatever the split's size
    if batch_size is not None:
        schedule = dataclasses.replace(schedule, batch_size=batch_size)
    started = time.perf_counter()
    model = build_for("gcn", fit_data, {"rating_neighbours": neighbours}, run_ratings=len(train)).train()
    built = time.perf_counter() - started
    optimizer = adamw(model, model.rating_parameters(), schedule.learning_rate, schedule.weight_decay)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}
    for _ in range(steps):
        rows = rng.integers(0, len(fit_data), schedule.batch_size)
        inputs = (torch.from_numpy(fit_data.users[rows]).long(), torch.from_numpy(fit_data.items[rows]).long())
        target = torch.from_numpy(fit_data.ratings[rows]).float()
        first = time.perf_counter()
        loss, _ = model.rating_loss(inputs, target)
        second = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        third = time.perf_counter()
        optimizer.step()
        parts["forward"].append(second - first)
        parts["backward"].append(third - second)
        parts["optimizer"].append(time.perf_counter() - third)
    medians = {name: statistics.median(values) for name, values in parts.items()}
    medians["step"] = sum(medians.values())
    medians["build"] = built
    medians["steps_per_epoch"] = float(-(-len(fit_data) // schedule.batch_size))
    medians["batch_size"] = float(schedule.batch_size)
    return medians


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="25M", choices=SIZES[1:], help="synthetic data shape")
    parser.add_argument("--neighbours", default="256,64", help="comma-separated neighbour budgets per node")
    parser.add_argument("--steps", type=int, default=4, help="steps timed per budget")
    parser.add_argument(
        "--batch-sizes", default="", help="comma-separated ratings per step (default: the declared schedule's)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("out/bench/train_scale"), help="bench.scale's cache folder")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    split = cached_split(args.size, args.out)
    print(f"GCN mini-batch steps at the {args.size} shape, {args.threads} thread(s), median of {args.steps} steps\n")
    print(
        "| neighbours per node | ratings per step | forward s | backward s | optimizer s | step s | steps per epoch"
        " | epoch min (est.) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    batch_sizes: list[int | None] = [int(b) for b in args.batch_sizes.split(",") if b] or [None]
    for neighbours in (int(n) for n in args.neighbours.split(",") if n):
        for batch_size in batch_sizes:
            t = time_steps(split, neighbours, args.steps, batch_size=batch_size)
            epoch_minutes = t["step"] * t["steps_per_epoch"] / 60
            print(
                f"| {neighbours} | {t['batch_size']:,.0f} | {t['forward']:.2f} | {t['backward']:.2f} |"
                f" {t['optimizer']:.2f} | {t['step']:.2f} | {t['steps_per_epoch']:.0f} | {epoch_minutes:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
