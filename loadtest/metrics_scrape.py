"""The server's own view of a step, from its Prometheus endpoint: batch sizes and queue time.

The generator only sees end-to-end latency. Whether dynamic batching really joined calls, and how
long rows waited for their batch, is only known inside the server: the step scrapes
``/metrics`` before and after and reports the difference of the histograms named in
docs/interfaces.md (``recsys_batch_rows``, ``recsys_queue_seconds``, ...).
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Sample value by (sample name, sorted label pairs)."""


class MetricsError(RuntimeError):
    """The metrics endpoint could not be read."""


def parse_metrics(text: str) -> Samples:
    """Parse Prometheus text exposition into a flat mapping of samples."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def fetch_metrics(url: str, timeout_s: float = 5.0) -> Samples:
    """Read and parse a Prometheus endpoint.

    Args:
        url: E.g. ``http://127.0.0.1:9090/metrics``.
        timeout_s: Socket timeout, in seconds.

    Returns:
        The samples.

    Raises:
        MetricsError: If the endpoint cannot be read.
    """
    if not url.startswith(("http://", "https://")):
        raise MetricsError(f"metrics URL {url!r} is not http(s)://HOST:PORT/metrics")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return parse_metrics(response.read().decode("utf-8"))
    except (OSError, ValueError) as error:
        raise MetricsError(f"cannot read server metrics at {url}: {error}; check --metrics-url") from error


def diff_samples(before: Samples, after: Samples) -> Samples:
    """``after - before`` per sample; a sample absent before counts from 0 (created during the step)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


@dataclass(frozen=True)
class HistogramDelta:
    """A Prometheus histogram's change over a step, summed over the matching series.

    Attributes:
        buckets: ``(upper bound, cumulative count)`` sorted by bound, ``+inf`` last.
        count: Observations.
        total: Sum of the observations.
    """

    buckets: list[tuple[float, float]]
    count: float
    total: float

    @property
    def mean(self) -> float | None:
        """Mean observation, None without any."""
        return self.total / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        """Estimate quantile ``q`` in [0, 1] as Prometheus' ``histogram_quantile`` does (linear in a bucket)."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank and cumulative > below:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            lower, below = bound, cumulative
        return lower

    def counts(self) -> dict[str, int]:
        """Non-cumulative observations per bucket, keyed ``"<=bound"``, empty buckets left out."""
        out, below = {}, 0.0
        for bound, cumulative in self.buckets:
            if cumulative - below > 0:
                out[f"<={bound:g}"] = round(cumulative - below)
            below = cumulative
        return out


def _matches(labels: tuple[tuple[str, str], ...], want: Mapping[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(key, "").lower() == value.lower() for key, value in want.items())


def histogram(samples: Samples, name: str, labels: Mapping[str, str]) -> HistogramDelta | None:
    """Sum histogram ``name`` over the series whose labels include ``labels`` (case-insensitive).

    Args:
        samples: Usually a :func:`diff_samples` result.
        name: Histogram name without suffix, e.g. ``recsys_batch_rows``.
        labels: Labels to match, e.g. ``{"model": "mf"}``.

    Returns:
        The histogram, or None when no series matches.
    """
    buckets: dict[float, float] = {}
    count = total = 0.0
    found = False
    for (sample, pairs), value in samples.items():
        if not sample.startswith(name) or not _matches(pairs, labels):
            continue
        if sample == f"{name}_bucket":
            bound = float(dict(pairs)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
            found = True
        elif sample == f"{name}_count":
            count += value
        elif sample == f"{name}_sum":
            total += value
    return HistogramDelta(sorted(buckets.items()), count, total) if found else None


@dataclass(frozen=True)
class ServerStats:
    """What the server saw during a step (None where the server exports nothing).

    Attributes:
        batches: Runtime calls (batches) run.
        batch_rows_mean: Mean rows per runtime call.
        batch_rows_p50: Median rows per runtime call (histogram estimate).
        batch_rows_p99: 99th percentile rows per runtime call (histogram estimate).
        batch_rows_histogram: Runtime calls per rows bucket.
        queue_ms_mean: Mean time rows waited for their batch, in ms.
        queue_ms_p99: 99th percentile of that wait, in ms (histogram estimate).
        inference_ms_mean: Mean runtime call time, in ms.
        latency_ms_mean: Mean server-side request latency, in ms.
        requests: Server-counted requests of the method by status code.
    """

    batches: int = 0
    batch_rows_mean: float | None = None
    batch_rows_p50: float | None = None
    batch_rows_p99: float | None = None
    batch_rows_histogram: dict[str, int] = field(default_factory=dict)
    queue_ms_mean: float | None = None
    queue_ms_p99: float | None = None
    inference_ms_mean: float | None = None
    latency_ms_mean: float | None = None
    requests: dict[str, int] = field(default_factory=dict)


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1e3


def server_stats(delta: Samples, model: str, method: str) -> ServerStats:
    """Summarise the metric changes of one step for ``model`` and ``method``.

    Args:
        delta: Differences of the samples over the step (:func:`diff_samples`).
        model: Model name (the ``model`` label).
        method: ``predict`` or ``recommend``: the ``signature`` and ``method`` labels to keep.

    Returns:
        The server's view of the step.
    """
    rows = histogram(delta, "recsys_batch_rows", {"model": model, "signature": method})
    queue = histogram(delta, "recsys_queue_seconds", {"model": model})
    inference = histogram(delta, "recsys_inference_seconds", {"model": model, "signature": method})
    latency = histogram(delta, "recsys_request_latency_seconds", {"model": model, "method": method})
    requests = {
        dict(pairs).get("code", "?"): round(value)
        for (sample, pairs), value in delta.items()
        if sample == "recsys_requests_total" and _matches(pairs, {"model": model, "method": method}) and value > 0
    }
    return ServerStats(
        batches=round(rows.count) if rows else 0,
        batch_rows_mean=rows.mean if rows else None,
        batch_rows_p50=rows.quantile(0.5) if rows else None,
        batch_rows_p99=rows.quantile(0.99) if rows else None,
        batch_rows_histogram=rows.counts() if rows else {},
        queue_ms_mean=_ms(queue.mean) if queue else None,
        queue_ms_p99=_ms(queue.quantile(0.99)) if queue else None,
        inference_ms_mean=_ms(inference.mean) if inference else None,
        latency_ms_mean=_ms(latency.mean) if latency else None,
        requests=requests,
    )
