"""SIGTERM on ``python -m server``: stop accepting, finish in-flight calls, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from client import AsyncRecsysClient, RecsysClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_process(tmp_path, copy_repository, free_port):
    repository = copy_repository(tmp_path / "repo", models=("mf",))
    env = {**os.environ, "RECSYS_MAX_QUEUE_DELAY_US": "1500000", "RECSYS_GRACE_S": "20"}
    command = [sys.executable, "-m", "server", "--repository", str(repository), "--port", str(free_port)]
    command += ["--poll-interval-s", "0", "--max-batch-size", "64", "--log-level", "WARNING"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with RecsysClient(f"127.0.0.1:{free_port}") as client:
            client.wait_ready(timeout=60)
        yield process, f"127.0.0.1:{free_port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def test_sigterm_drains_in_flight_calls_and_exits_zero(server_process):
    process, target = server_process
    async with AsyncRecsysClient(target, timeout=30) as client:
        in_flight = [asyncio.ensure_future(client.predict("mf", [f"u{i}"], ["i1"])) for i in range(5)]
        await asyncio.sleep(0.4)  # the calls now wait in the batch queue (1.5 s delay)
        assert not any(call.done() for call in in_flight)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.predict("mf", ["u0"], ["i0"], timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        answers = await asyncio.gather(*in_flight)
    assert [a.ratings.shape for a in answers] == [(1,)] * 5
    exit_code = await asyncio.to_thread(process.wait, 30)
    output = process.stdout.read()
    assert exit_code == 0, output
    grace_s = 20.0  # RECSYS_GRACE_S of server_process: exiting before it ends means no call was left to wait for
    assert time.monotonic() - sent < grace_s, "shutdown waited for the whole grace period"
