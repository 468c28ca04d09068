"""bench/scale.py's arithmetic: the growth table and the child's argument forwarding (no training here)."""

from __future__ import annotations

import math

from bench.scale import SHAPES, _row, _strip_values, growth_table


def test_shapes_are_movielens_like() -> None:
    assert SHAPES["1M"][:2] == (6_040, 3_706) and SHAPES["25M"][:2] == (162_541, 59_047)
    assert SHAPES["1M"][0] < SHAPES["5M"][0] < SHAPES["25M"][0]


def test_growth_table_divides_by_the_smallest_size() -> None:
    results = {
        "1M": {"mf": {"rating_epoch_s": 2.0, "ranking_epoch_s": 1.0, "peak_rss_mib": 500.0}},
        "5M": {"mf": {"rating_epoch_s": 10.0, "ranking_epoch_s": 6.0, "peak_rss_mib": 1000.0}},
        "25M": {"mf": {"error": "MemoryError"}},
    }
    results["5M"]["dense"] = {"rating_epoch_s": math.nan, "ranking_epoch_s": 1.0, "peak_rss_mib": 1.0}
    results["1M"]["dense"] = {"rating_epoch_s": 1.0, "ranking_epoch_s": 1.0, "peak_rss_mib": 1.0}
    lines = growth_table(results)
    assert lines[0] == "| architecture | figure | 5M / 1M (data x5.0) | 25M / 1M (data x25.0) |"
    assert "| mf | rating s/epoch | 5.0x | - |" in lines
    assert "| mf | ranking s/epoch | 6.0x | - |" in lines
    assert "| mf | peak MiB | 2.0x | - |" in lines
    assert "| dense | rating s/epoch | - | - |" in lines  # no whole epoch at 5M: no ratio


def test_rows_name_epochs_cut_short_instead_of_averaging_them() -> None:
    run = {"rating_epochs": 3, "ranking_epochs": 1, "train_s": 9.0, "peak_rss_mib": 10.0, "rmse": 0.9, "wall_s": 9.0}
    run |= {"recall@10": 0.1, "rating_epoch_s": 2.5, "rating_cut_short": True}
    run |= {"ranking_epoch_s": math.nan, "ranking_cut_short": True}
    assert _row("5M", "mf", run).startswith("| 5M | mf | 2.50 (2 + 1 cut short) | - (1st cut short) | 9.0 |")


def test_strip_values_drops_the_parent_only_flags() -> None:
    argv = ["--sizes", "1M,5M", "--epochs", "3", "--models=mf", "--max-seconds", "9"]
    assert _strip_values(argv, ("--sizes", "--models")) == ["--epochs", "3", "--max-seconds", "9"]
