import numpy as np
import pytest

from loadtest.stats import percentile, summarize


def test_percentiles_of_a_known_list_are_nearest_rank():
    latencies_ms = np.arange(1, 1001, dtype=float)  # 1..1000 ms
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(latencies_ms)
    summary = summarize(shuffled / 1e3)
    assert summary.count == 1000
    assert summary.p50_ms == pytest.approx(500.0)
    assert summary.p90_ms == pytest.approx(900.0)
    assert summary.p99_ms == pytest.approx(990.0)
    assert summary.p999_ms == pytest.approx(999.0)
    assert summary.max_ms == pytest.approx(1000.0)
    assert summary.mean_ms == pytest.approx(500.5)


def test_percentile_is_an_observed_value():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 20.0
    assert percentile(values, 51) == 30.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 0) == 10.0


def test_a_single_slow_call_is_the_tail():
    latencies = [0.001] * 999 + [2.0]
    summary = summarize(latencies)
    assert summary.p99_ms == pytest.approx(1.0)
    assert summary.p999_ms == pytest.approx(1.0)
    assert summary.max_ms == pytest.approx(2000.0)


def test_empty_and_out_of_range_inputs():
    assert summarize([]) is None
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)
