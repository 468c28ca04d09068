"""Prometheus metrics of one server (names as in docs/interfaces.md, section 4).

Each server owns its own ``CollectorRegistry`` so that several servers in one process (tests)
do not mix their counts. Labelled children are cached, so recording a request costs two dict
lookups and two lock-protected additions.

With ``--processes`` above 1 every child writes its samples to prometheus_client's multiprocess
files (``PROMETHEUS_MULTIPROC_DIR``, set by :mod:`server.supervisor` before the children start) and
the parent serves ``/metrics``, summing counters and histograms over the children; gauges say how
they combine (``multiprocess_mode``), and the queue depth, read from the batchers on scrape in one
process, is published by each child once a second instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

_LOGGER = logging.getLogger(__name__)

QUEUE_PUBLISH_INTERVAL_S = 1.0
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)


class _SignatureObserver:
    """Feeds one model signature's batch statistics into the histograms."""

    def __init__(self, metrics: Metrics, model: str, signature: str) -> None:
        self._rows = metrics.batch_rows.labels(model=model, signature=signature)
        self._inference = metrics.inference_seconds.labels(model=model, signature=signature)
        self._queue = metrics.queue_seconds.labels(model=model)

    def observe_batch(self, rows: int, inference_s: float, queue_waits_s: Sequence[float]) -> None:
        """Records one runtime call and how long each of its requests waited for it."""
        self._rows.observe(rows)
        self._inference.observe(inference_s)
        for wait in queue_waits_s:
            self._queue.observe(wait)


QueueSource = Callable[[], Iterable[tuple[str, str, int]]]


class _QueueDepth:
    """``recsys_queue_rows{model,signature}``, read from the batchers when scraped (costs no call anything)."""

    def __init__(self, source: QueueSource) -> None:
        self._source = source

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "recsys_queue_rows",
            "Rows waiting in the batching queue, by model and signature.",
            labels=["model", "signature"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for model, signature, rows in self._source():
            family.add_metric([model, signature], rows)
        yield family


class Metrics:
    """The server's counters and histograms, and their HTTP endpoint.

    Args:
        multiprocess: This is one of several supervised processes (see the module docstring): queue
            depths are published to the shared files instead of read on scrape.
    """

    def __init__(self, multiprocess: bool = False) -> None:
        self._multiprocess = multiprocess
        self._publisher_stop = threading.Event()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests_total = Counter(
            "recsys_requests",
            "Calls by method, model and gRPC status code.",
            ["method", "model", "code"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "recsys_request_latency_seconds",
            "Time from the call reaching the servicer to its answer, in seconds.",
            ["method", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "recsys_queue_seconds",
            "Time a request waited in the batching queue before its batch ran, in seconds.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "recsys_inference_seconds",
            "Duration of one runtime call (a whole batch), in seconds.",
            ["model", "signature"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "recsys_batch_rows",
            "Rows per runtime call: above 1 when dynamic batching joins concurrent calls.",
            ["model", "signature"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "recsys_models_loaded",
            "Model versions loaded and ready to serve (several processes: the most any live one has).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._request_children: dict[tuple[str, str, grpc.StatusCode], tuple] = {}
        self._http = None

    def record_request(self, method: str, model: str, code: grpc.StatusCode, seconds: float) -> None:
        """Counts one finished call and its latency."""
        key = (method, model, code)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests_total.labels(method=method, model=model, code=code.name),
                self.request_latency.labels(method=method, model=model),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def batch_observer(self, model: str, signature: str) -> _SignatureObserver:
        """A receiver of batch statistics for one model signature (see ``BatchObserver``)."""
        return _SignatureObserver(self, model, signature)

    def track_queues(self, source: QueueSource) -> None:
        """Exports ``recsys_queue_rows`` from ``source()``: ``(model, signature, rows)`` per batcher.

        In one process it is read when scraped; a supervised child publishes it every
        ``QUEUE_PUBLISH_INTERVAL_S`` seconds (summed over live children), since the parent cannot call it.
        """
        if not self._multiprocess:
            self.registry.register(_QueueDepth(source))
            return
        gauge = Gauge(
            "recsys_queue_rows",
            "Rows waiting in the batching queue, by model and signature.",
            ["model", "signature"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        thread = threading.Thread(
            target=self._publish_queues, args=(source, gauge), name="queue-depth-publisher", daemon=True
        )
        thread.start()

    def _publish_queues(self, source: QueueSource, gauge: Gauge) -> None:
        seen: set[tuple[str, str]] = set()
        while True:
            try:
                current = {(model, signature): rows for model, signature, rows in source()}
            except RuntimeError:  # a batcher set changed while being read: try again next time
                current = {key: 0 for key in seen}
            for key in seen - current.keys():
                gauge.labels(*key).set(0)
            for key, rows in current.items():
                gauge.labels(*key).set(rows)
            seen |= current.keys()
            if self._publisher_stop.wait(QUEUE_PUBLISH_INTERVAL_S):
                return

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when it was never recorded), for tests and the CLI.

        Args:
            name: Sample name, e.g. ``recsys_requests_total`` or ``recsys_batch_rows_sum``.
            labels: Its labels.
        """
        return self.registry.get_sample_value(name, labels) or 0.0

    def serve(self, host: str, port: int) -> None:
        """Serves ``/metrics`` over HTTP on ``host:port`` from a daemon thread."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        _LOGGER.info("metrics on http://%s:%d/metrics", host, server.server_port)

    @property
    def http_port(self) -> int | None:
        """Port of the running HTTP endpoint, or None when it is off."""
        return self._http.server_port if self._http is not None else None

    def stop(self) -> None:
        """Stops the HTTP endpoint, if running, and the queue-depth publisher."""
        self._publisher_stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
