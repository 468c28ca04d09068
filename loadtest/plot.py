"""Throughput against tail latency across a sweep, one line per tested configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from .report import StepReport


def plot_sweep(series: Mapping[str, Sequence[StepReport]], path: Path, title: str = "") -> Path:
    """Plot calls/s (x) against p99 latency (y, log scale), one line per series.

    The knee of each line is the usable capacity: past it, more concurrency buys latency, not
    throughput. Points are annotated with their concurrency (``c=64``) or offered rate.

    Args:
        series: Label -> steps in sweep order; steps without a latency are skipped.
        path: PNG file to write (parent folders are created).
        title: Figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: If no step has a latency to plot.
    """
    figure = Figure(figsize=(9, 5.5), dpi=110)  # no pyplot: no global state, no GUI backend, Agg on save
    axes = figure.subplots()
    plotted = 0
    for label, steps in series.items():
        points = [s for s in steps if s.latency is not None]
        if not points:
            continue
        xs = [s.calls_per_s for s in points]
        ys = [s.latency.p99_ms for s in points]
        (line,) = axes.plot(xs, ys, marker="o", label=label)
        for step, x, y in zip(points, xs, ys, strict=True):
            text = f"r={step.rate:g}" if step.mode == "open" else f"c={step.concurrency}"
            axes.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=line.get_color())
        plotted += len(points)
    if plotted == 0:
        raise ValueError("nothing to plot: no step recorded a successful call")
    axes.set_xlabel("throughput (successful calls/s)")
    axes.set_ylabel("p99 latency (ms, log scale)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "throughput vs p99 latency")
    axes.legend(fontsize=7, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    return path
