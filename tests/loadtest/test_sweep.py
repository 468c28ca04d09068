import dataclasses
import os

import numpy as np
import pytest

from loadtest.connection import Connection
from loadtest.executor import Step, merge_outcomes, split_step
from loadtest.runner import StepLimits, StepOutcome
from loadtest.sweep import SweepConfig, run_sweep
from loadtest.workload import IdSpace, WorkloadSpec, build_workload


def fake_ids(num_users=50, num_items=40, histories=None):
    users = np.array([str(i) for i in range(1, num_users + 1)])
    items = np.array([str(i) for i in range(1, num_items + 1)])
    offsets = items_index = None
    if histories is not None:
        lengths = [len(histories.get(u, ())) for u in range(num_users)]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items_index = np.array([i for u in range(num_users) for i in histories.get(u, ())], dtype=np.int64)
    return IdSpace(users, items, history_offsets=offsets, history_items=items_index, rating_scale=(1.0, 5.0))


def sweep_config(server, *, requests=40, concurrency=(4,), processes=1):
    return SweepConfig(
        connection=Connection(server.target, timeout_s=5),
        concurrency=concurrency,
        limits=StepLimits(duration_s=10, requests=requests, samples=200),
        warmup_s=0,
        processes=processes,
        progress=False,
    )


async def test_errors_are_counted_by_status_code(fake_server):
    server = fake_server(fail_codes=("OK", "UNAVAILABLE", "OK", "RESOURCE_EXHAUSTED"))
    ids = fake_ids()
    workload = build_workload(WorkloadSpec(method="predict", model="fake", pool_size=16), ids)
    [step] = await run_sweep(sweep_config(server), workload, ids)
    assert step.calls == 20
    assert step.errors == {"RESOURCE_EXHAUSTED": 10, "UNAVAILABLE": 10}
    assert step.latency.count == 20
    assert step.calls_per_s > 0 and step.rows_per_s == pytest.approx(step.calls_per_s)
    assert step.sanity.ok and step.sanity.checked > 0
    assert any("20 calls failed" in note for note in step.notes)


async def test_unknown_model_fails_every_call_with_not_found(fake_server):
    server = fake_server()
    ids = fake_ids()
    workload = build_workload(WorkloadSpec(method="recommend", model="nope", k=5), ids)
    [step] = await run_sweep(sweep_config(server, requests=12), workload, ids)
    assert (step.calls, step.errors, step.latency) == (0, {"NOT_FOUND": 12}, None)


@pytest.mark.parametrize(
    ("method", "corrupt", "problem"),
    [
        ("predict", "count", "ratings for"),
        ("predict", "nan", "non-finite"),
        ("recommend", "count", "results for"),
        ("recommend", "nan", "non-finite"),
        ("recommend", "order", "descending"),
    ],
)
async def test_sanity_check_catches_wrong_answers(fake_server, method, corrupt, problem):
    server = fake_server(corrupt=corrupt)
    ids = fake_ids()
    workload = build_workload(WorkloadSpec(method=method, model="fake", rows_per_request=3, k=5), ids)
    [step] = await run_sweep(sweep_config(server, requests=14), workload, ids)
    assert step.calls == 14
    assert not step.sanity.ok and step.sanity.failed == step.sanity.checked == 2
    assert problem in step.sanity.problems[0]


async def test_sanity_check_catches_seen_items_and_passes_clean_answers(fake_server):
    server = fake_server()  # recommends items "1".."k" to everyone
    leaky = fake_ids(histories={u: [0, 7] for u in range(50)})  # every user rated items "1" and "8"
    clean = fake_ids(histories={u: [30, 31] for u in range(50)})
    for ids, ok in ((leaky, False), (clean, True)):
        workload = build_workload(WorkloadSpec(method="recommend", model="fake", k=5), ids)
        [step] = await run_sweep(sweep_config(server, requests=14), workload, ids)
        assert step.sanity.ok is ok
        if not ok:
            assert "seen items ['1']" in step.sanity.problems[0]
    include = build_workload(WorkloadSpec(method="recommend", model="fake", k=5, exclude_seen=False), leaky)
    [step] = await run_sweep(sweep_config(server, requests=14), include, leaky)
    assert step.sanity.ok


async def test_a_sweep_reports_each_step_and_two_processes_merge(fake_server):
    server = fake_server(delay_s=0.002)
    ids = fake_ids()
    workload = build_workload(WorkloadSpec(method="predict", model="fake", rows_per_request=4), ids)
    steps = await run_sweep(sweep_config(server, requests=30, concurrency=(1, 3)), workload, ids)
    assert [(s.concurrency, s.calls, s.rows_per_request) for s in steps] == [(1, 30, 4), (3, 30, 4)]
    assert all(s.rows_per_s == pytest.approx(4 * s.calls_per_s) for s in steps)
    [merged] = await run_sweep(sweep_config(server, requests=30, concurrency=(4,), processes=2), workload, ids)
    assert (merged.calls, merged.errors, merged.generator_processes) == (30, {}, 2)
    assert merged.sanity.ok and merged.sanity.checked > 0


def test_split_step_divides_load_between_processes():
    limits = StepLimits(duration_s=5, requests=11, samples=10)
    shares = split_step(Step(concurrency=5), limits, 3)
    assert [s.step.concurrency for s in shares] == [2, 2, 1]
    assert [s.limits.requests for s in shares] == [4, 4, 3]
    assert sum(s.limits.samples for s in shares) == 10
    assert len(split_step(Step(concurrency=2), limits, 8)) == 2
    open_shares = split_step(Step(rate=300.0), StepLimits(duration_s=1), 3)
    assert [s.step.rate for s in open_shares] == [100.0] * 3
    assert [s.phase_s for s in open_shares] == pytest.approx([0, 1 / 300, 2 / 300])


def test_merge_outcomes_sums_counts_and_keeps_the_busiest_process():
    a = StepOutcome(latencies_s=np.array([0.1]), wall_s=1.0, cpu_s=0.5, max_process_cpu=0.5)
    a.codes.update({"OK": 1, "UNAVAILABLE": 2})
    b = StepOutcome(latencies_s=np.array([0.2, 0.3]), wall_s=1.2, cpu_s=0.9, max_process_cpu=0.75)
    b.codes.update({"OK": 2})
    merged = merge_outcomes([a, b])
    assert merged.codes == {"OK": 3, "UNAVAILABLE": 2}
    assert sorted(merged.latencies_s) == [0.1, 0.2, 0.3]
    assert (merged.wall_s, merged.cpu_s, merged.max_process_cpu, merged.processes) == (1.2, 1.4, 0.75, 2)


async def test_server_cpu_is_reported_when_its_pid_is_given(fake_server):
    server = fake_server()
    ids = fake_ids()
    workload = build_workload(WorkloadSpec(method="predict", model="fake"), ids)
    config = sweep_config(server, requests=200)
    [without] = await run_sweep(config, workload, ids)
    [with_pid] = await run_sweep(dataclasses.replace(config, server_pid=os.getpid()), workload, ids)
    assert without.server_cpu is None
    assert with_pid.server_cpu is not None and with_pid.server_cpu > 0  # the fake server runs in this process
