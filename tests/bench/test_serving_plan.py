"""bench/serving.py's plan and judgement: large Predict with string and integer ids, each against its own ceiling."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from bench.serving import CEILING, Row, add_ceiling_ratios, evaluate_targets, parse_args, plan
from loadtest.report import build_step_report
from loadtest.runner import StepOutcome


def test_integer_models_run_the_large_predict_twice_and_the_ceiling_sends_both_forms():
    args = parse_args(["--quick", "--backends", "onnx", "--batching", "on"])
    ceiling, servers = plan(args, integer_archs={"mf", "dense", "lstm"})
    big = [(c.model, c.kind.name, c.kind.int_ids) for c in ceiling if c.kind.rows == 1000]
    assert big == [("mf", "predict x1000", False), ("mf", "predict x1000 int", True)]
    labels = [c.label for c in servers["onnx/batch-on"]]
    assert "onnx/batch-on/mf predict x1000 int" in labels and "onnx/batch-on/dense predict x1000 int" in labels
    assert not any(label.startswith("onnx/batch-on/lstm predict x1000") for label in labels)  # not a big arch

    _, strings_only = plan(args, integer_archs=())
    assert not any(c.kind.int_ids for c in strings_only["onnx/batch-on"])
    assert len(strings_only["onnx/batch-on"]) == len(servers["onnx/batch-on"]) - 2


def _row(case, calls_per_s: float) -> Row:
    outcome = StepOutcome(latencies_s=np.full(10, 0.005), codes=Counter(OK=int(calls_per_s)), wall_s=1.0, cpu_s=0.1)
    step = build_step_report(case.label, case.kind.method, case.kind.rows, outcome, concurrency=case.concurrency[0])
    return Row(case, step)


def test_each_large_predict_row_is_judged_and_labelled_with_its_id_form():
    args = parse_args(["--quick", "--backends", "onnx", "--batching", "on", "--archs", "mf"])
    ceiling, servers = plan(args, integer_archs={"mf"})
    cases = [*ceiling, *servers["onnx/batch-on"]]
    big = {(c.config, c.kind.int_ids): c for c in cases if c.kind.rows == 1000 and not c.kind.oip}
    rows = [
        _row(big[(CEILING, False)], 2000),
        _row(big[(CEILING, True)], 4000),
        _row(big[("onnx/batch-on", False)], 800),  # 800,000 pairs/s
        _row(big[("onnx/batch-on", True)], 1200),  # 1,200,000 pairs/s
    ]
    add_ceiling_ratios(rows)
    assert [r.ceiling_ratio for r in rows[2:]] == [0.4, 0.3]  # each against the ceiling of its own bytes
    targets = [t for t in evaluate_targets(rows, args) if "1,000,000" in t["target"]]
    assert [(t["where"], t["measured"], t["pass"]) for t in targets] == [
        ("onnx/batch-on/mf, string ids", "800,000 pairs/s", False),
        ("onnx/batch-on/mf, integer ids", "1,200,000 pairs/s", True),
    ]


def test_lstm_recommend_by_history_is_planned_and_judged_for_batching_on_and_off():
    args = parse_args(["--quick", "--backends", "onnx", "--archs", "dense,lstm"])
    ceiling, servers = plan(args, history_archs={"lstm"})
    assert [(c.model, c.kind.histories) for c in ceiling if c.kind.histories] == [("lstm", True)]
    for config in ("onnx/batch-on", "onnx/batch-off"):
        history = [c for c in servers[config] if c.kind.histories]
        assert [(c.model, c.kind.method, c.concurrency) for c in history] == [("lstm", "recommend", (64,))]
    cases = {
        (c.config, c.model, c.kind.name): dataclasses.replace(c, concurrency=(64,))  # the step judged
        for cases in servers.values()
        for c in cases
    }
    rows = [
        _row(cases[("onnx/batch-on", "lstm", "recommend history")], 1500),
        _row(cases[("onnx/batch-off", "lstm", "recommend history")], 500),
        _row(cases[("onnx/batch-on", "dense", "predict x1")], 3000),
        _row(cases[("onnx/batch-off", "dense", "predict x1")], 2500),
    ]
    batching = [t for t in evaluate_targets(rows, args) if t["target"].startswith("batching")]
    assert [(t["where"], t["pass"]) for t in batching] == [
        ("onnx/dense predict x1", False),
        ("onnx/lstm recommend history", True),
    ]
    assert batching[1]["measured"] == "3.00x (1,500 vs 500 calls/s)"
