"""Counts of fuzz inputs tried per test and outcome, printed at the end of the run by conftest.py."""

from __future__ import annotations

from collections import Counter

TRIED: Counter[tuple[str, str]] = Counter()
"""(what was fuzzed, status code name) -> number of calls."""


def record(what: str, code: object) -> None:
    """Counts one fuzz call and its answer (a grpc.StatusCode or its name)."""
    TRIED[(what, getattr(code, "name", str(code)))] += 1


def summary_lines() -> list[str]:
    """One line per fuzzed target: calls tried in all, and how many got each status code."""
    targets = sorted({what for what, _ in TRIED})
    lines = []
    for what in targets:
        codes = {code: n for (target, code), n in TRIED.items() if target == what}
        detail = ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
        lines.append(f"{what}: {sum(codes.values())} inputs tried ({detail})")
    return lines


MEASURED: list[str] = []
"""Figures measured by the load tests, one line each."""


def measure(line: str) -> None:
    """Keeps one line of measured figures for the end-of-run summary."""
    MEASURED.append(line)
