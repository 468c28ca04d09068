"""``--processes 2``: two children share one port, metrics sum over them, crashes restart, SIGTERM drains all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from serverprocs import Load, free_port, health, running_server, server_command

from server.supervisor import CrashBackoff, RestartPolicy

DRAIN_S = 3.0
WINDOW_S = 1.5


def test_backoff_doubles_up_to_its_cap_and_gives_up_on_a_crash_loop():
    backoff = CrashBackoff(RestartPolicy(initial_backoff_s=0.5, max_backoff_s=3.0, healthy_after_s=60, max_crashes=5))
    assert [backoff.next_delay(lived_s=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_a_child_that_served_for_a_while_starts_a_new_crash_count():
    backoff = CrashBackoff(RestartPolicy(initial_backoff_s=0.5, healthy_after_s=60, max_crashes=2))
    assert [backoff.next_delay(1.0), backoff.next_delay(1.0)] == [0.5, 1.0]
    assert backoff.next_delay(lived_s=120.0) == 0.5  # not None: the earlier crashes are forgiven


def _child_pids(log: str) -> dict[int, int]:
    """Process index -> pid of the latest start of each, from the parent's log."""
    return {int(i): int(pid) for i, pid in re.findall(r"started server process (\d+) \(pid (\d+)\)", log)}


def _serving_pids(log: str) -> set[int]:
    """Pids of the children that logged serving (each binds the shared port only once its models loaded)."""
    return {int(pid) for pid in re.findall(r"\[pid (\d+)\] server.app: serving ", log)}


async def _wait_both_serving(server) -> dict[int, int]:
    await _wait_for(lambda: len(_child_pids(server.log())) == 2, what="two children")
    await _wait_for(lambda: set(_child_pids(server.log()).values()) <= _serving_pids(server.log()), what="both serving")
    return _child_pids(server.log())


def _established_ports(pid: int, port: int) -> int:
    """How many ESTABLISHED TCP connections on local ``port`` the process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):  # gRPC listens on IPv6 sockets with v4-mapped addresses
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _sample_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def two_process_command(tmp_path, copy_repository):
    repository = copy_repository(tmp_path / "repo", models=("mf",))
    port, metrics_port = free_port(), free_port()
    args = ("--processes", "2", "--metrics-port", str(metrics_port), "--drain-delay-s", str(DRAIN_S), "--grace-s", "5")
    return server_command(repository, port, *args), port, metrics_port


async def _wait_for(condition, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_two_processes_serve_one_port_and_metrics_sum_over_them(tmp_path, two_process_command):
    command, port, metrics_port = two_process_command
    with running_server(command, port, tmp_path) as server:
        pids = await _wait_both_serving(server)
        assert len(set(pids.values())) == 2 and server.process.pid not in pids.values()
        for _ in range(6):  # every child has loaded the models and answers health alike
            assert health(server.target, "mf") == "SERVING"
        load = Load(server.target, connections=16)
        load.start()
        try:
            await load.wait_ok(200)
            # 16 connections spread by the kernel: each child holds some (2 x 2^-16 odds of a false failure).
            connections = {pid: _established_ports(pid, port) for pid in pids.values()}
        finally:
            await load.stop()
        assert all(count >= 1 for count in connections.values()), connections
        assert sum(connections.values()) >= 16
        assert {o.code for o in load.outcomes} == {"OK"}
        text = await asyncio.to_thread(_scrape, metrics_port)
        assert _sample_sum(text, "recsys_requests_total", model="mf", code="OK") == load.ok()
        assert _sample_sum(text, "recsys_models_loaded") == 1.0  # livemax: one version in each child
        assert "recsys_process_restarts_total 0.0" in text
        # Queue depths are published by each child once a second (the parent cannot read its batchers).
        await _wait_for(lambda: 'recsys_queue_rows{model="mf",signature="predict"}' in _scrape(metrics_port))


async def test_a_killed_child_is_restarted_and_logged(tmp_path, two_process_command):
    command, port, metrics_port = two_process_command
    with running_server(command, port, tmp_path) as server:
        before = await _wait_both_serving(server)
        os.kill(before[1], signal.SIGKILL)
        await _wait_for(lambda: _child_pids(server.log())[1] != before[1], what="a restarted child")
        after = _child_pids(server.log())
        assert after[0] == before[0], "the other child was touched"
        assert re.search(rf"server process 1 \(pid {before[1]}\) exited with -9 after .*restarting it in", server.log())
        await _wait_for(lambda: after[1] in _serving_pids(server.log()), what="the new child serving")
        load = Load(server.target, connections=8)
        load.start()
        try:
            await load.wait_ok(100)
            await _wait_for(lambda: _established_ports(after[1], port) >= 1, what="the new child serving")
        finally:
            await load.stop()
        assert {o.code for o in load.outcomes} == {"OK"}
        text = await asyncio.to_thread(_scrape, metrics_port)
        assert "recsys_process_restarts_total 1.0" in text


async def test_rolling_restart_sigterm_drains_both_children_with_zero_failed_calls(tmp_path, two_process_command):
    command, port, _ = two_process_command
    with running_server(command, port, tmp_path) as server:
        pids = await _wait_both_serving(server)
        load = Load(server.target, connections=16)
        load.start()
        try:
            await load.wait_ok(100)
            assert all(_established_ports(pid, port) >= 1 for pid in pids.values())
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await _wait_for(lambda: health(server.target) == "NOT_SERVING", what="NOT_SERVING", timeout_s=WINDOW_S)
            await asyncio.sleep(max(0.0, signalled + WINDOW_S - time.monotonic()))
            assert server.process.poll() is None
            exit_code = await asyncio.to_thread(server.process.wait, 60)
        finally:
            await load.stop()
        during = [o for o in load.outcomes if signalled <= o.sent <= signalled + WINDOW_S]
        assert len(during) >= 10
        assert [o.code for o in during if o.code != "OK"] == [], "calls failed during the drain delay"
        assert exit_code == 0, server.log()[-3000:]
        log = server.log()
        assert log.count("draining: health NOT_SERVING") == 2
        assert "all 2 server processes stopped" in log
        metrics_dir = re.search(r"metrics files in (\S+)", log).group(1)
        assert not Path(metrics_dir).exists(), "the supervisor left its multiprocess folder behind"
