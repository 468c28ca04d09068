"""Fixtures of the reliability suite: throw-away certificates shared by the security and fault tests."""

from __future__ import annotations

import pytest

from . import tally
from .certs import Pki, issue, make_ca


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    server_ca = make_ca(directory, "server-ca")
    client_ca = make_ca(directory, "client-ca")
    rogue_ca = make_ca(directory, "rogue-ca")
    return Pki(
        server_ca=server_ca,
        server=issue(directory, "server", server_ca, client=False),
        client_ca=client_ca,
        client=issue(directory, "client", client_ca, client=True),
        rogue_ca=rogue_ca,
        rogue_client=issue(directory, "rogue-client", rogue_ca, client=True),
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Reports how many adversarial inputs the fuzz tests sent, what came back, and the load figures."""
    lines = tally.summary_lines()
    if lines:
        terminalreporter.section("reliability fuzz inputs")
        for line in lines:
            terminalreporter.write_line(line)
    if tally.MEASURED:
        terminalreporter.section("reliability measurements")
        for line in tally.MEASURED:
            terminalreporter.write_line(line)
