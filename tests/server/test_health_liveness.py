"""The ``liveness`` health service: SERVING while the process runs, whatever its models do."""

from __future__ import annotations

from client import RecsysClient
from server.health import LIVENESS_SERVICE


def test_liveness_is_serving_without_ready_models_and_not_serving_once_a_shutdown_starts(tmp_path, start_server):
    empty = tmp_path / "empty-repository"
    empty.mkdir()
    thread = start_server(empty)
    with RecsysClient(thread.target, timeout=10, retry=None) as client:
        assert client.health("") == "NOT_SERVING"  # readiness: no model to serve
        assert client.health(LIVENESS_SERVICE) == "SERVING"  # liveness: a restart would not help
        thread.call(thread.server.drain(0))
        assert client.health(LIVENESS_SERVICE) == "NOT_SERVING"
        assert client.health("") == "NOT_SERVING"
