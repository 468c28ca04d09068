import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from loadtest.metrics_scrape import MetricsError, diff_samples, fetch_metrics, histogram, parse_metrics, server_stats


def server_registry():
    registry = CollectorRegistry()
    rows = Histogram("recsys_batch_rows", "", ["model", "signature"], buckets=(1, 2, 4, 8, 16), registry=registry)
    queue = Histogram("recsys_queue_seconds", "", ["model"], buckets=(0.001, 0.01, 0.1), registry=registry)
    calls = Counter("recsys_requests", "", ["method", "model", "code"], registry=registry)
    return registry, rows, queue, calls


def test_server_stats_are_the_difference_over_the_step():
    from prometheus_client import generate_latest

    registry, rows, queue, calls = server_registry()
    rows.labels(model="mf", signature="predict").observe(16)  # before the step: must not count
    before = parse_metrics(generate_latest(registry).decode())
    for size in (1, 3, 3, 7):
        rows.labels(model="mf", signature="predict").observe(size)
    rows.labels(model="mf", signature="recommend").observe(2)  # another signature: not ours
    rows.labels(model="dense", signature="predict").observe(2)  # another model: not ours
    for wait in (0.0005, 0.005, 0.005, 0.05):
        queue.labels(model="mf").observe(wait)
    calls.labels(method="Predict", model="mf", code="OK").inc(4)
    after = parse_metrics(generate_latest(registry).decode())
    stats = server_stats(diff_samples(before, after), "mf", "predict")
    assert stats.batches == 4
    assert stats.batch_rows_mean == pytest.approx(14 / 4)
    assert stats.batch_rows_histogram == {"<=1": 1, "<=4": 2, "<=8": 1}
    assert 2 <= stats.batch_rows_p50 <= 4
    assert 4 <= stats.batch_rows_p99 <= 8
    assert stats.queue_ms_mean == pytest.approx(60.5 / 4)
    assert 10 <= stats.queue_ms_p99 <= 100
    assert stats.requests == {"OK": 4}


def test_histogram_quantile_interpolates_like_prometheus():
    samples = parse_metrics(
        'h_bucket{le="1"} 0\nh_bucket{le="2"} 10\nh_bucket{le="4"} 20\nh_bucket{le="+Inf"} 20\nh_count 20\nh_sum 50\n'
    )
    h = histogram(samples, "h", {})
    assert h.quantile(0.5) == pytest.approx(2.0)
    assert h.quantile(0.75) == pytest.approx(3.0)
    assert h.mean == pytest.approx(2.5)
    assert histogram(samples, "absent", {}) is None


def test_fetch_metrics_over_http_and_errors():
    registry, rows, _, _ = server_registry()
    rows.labels(model="mf", signature="predict").observe(4)
    http, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        samples = fetch_metrics(f"http://127.0.0.1:{http.server_port}/metrics")
    finally:
        http.shutdown()
        http.server_close()
    assert samples[("recsys_batch_rows_count", (("model", "mf"), ("signature", "predict")))] == 1.0
    with pytest.raises(MetricsError, match="--metrics-url"):
        fetch_metrics(f"http://127.0.0.1:{http.server_port}/metrics", timeout_s=0.5)
    with pytest.raises(MetricsError, match="http"):
        fetch_metrics("file:///etc/passwd")
