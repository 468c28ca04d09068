"""Latency statistics of one load-test step.

Percentiles use the nearest-rank definition: the p-th percentile is a latency that was really
observed, the smallest one with at least p% of the calls at or below it (rank ``ceil(p/100 * n)``).
That is what ghz and HdrHistogram report, and it never invents a value between two samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class LatencySummary:
    """Latency of the successful calls of a step, in milliseconds.

    Attributes:
        count: Number of latencies summarised.
        mean_ms: Arithmetic mean.
        p50_ms: Median.
        p90_ms: 90th percentile.
        p99_ms: 99th percentile.
        p999_ms: 99.9th percentile.
        max_ms: Slowest call.
    """

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Nearest-rank percentile of ``values``.

    Args:
        values: Observations, in any order; at least one.
        q: Percentile in [0, 100].

    Returns:
        The smallest observation with at least ``q`` percent of the observations at or below it.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside [0, 100].
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("percentile of an empty list: the step recorded no successful call")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q={q} is outside [0, 100]")
    return float(_nearest_rank(np.sort(array), (q,))[0])


def _nearest_rank(ordered: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    # The 1e-9 absorbs float noise: 99.9 / 100 * 1000 is 999.0000000000001, whose ceiling is not 999.
    ranks = np.ceil(np.asarray(qs, dtype=np.float64) / 100.0 * ordered.size - 1e-9).astype(np.int64)
    return ordered[np.clip(ranks, 1, ordered.size) - 1]


def summarize(latencies_s: Sequence[float] | np.ndarray) -> LatencySummary | None:
    """Summarise latencies given in seconds into milliseconds.

    Args:
        latencies_s: Per-call latencies in seconds.

    Returns:
        The summary, or None when there is no latency (every call failed or none was sent).
    """
    array = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if array.size == 0:
        return None
    p50, p90, p99, p999 = _nearest_rank(np.sort(array), PERCENTILES)
    return LatencySummary(
        count=int(array.size),
        mean_ms=float(array.mean()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        p999_ms=float(p999),
        max_ms=float(array.max()),
    )
