"""One line per step: the figures a load test reports, as a markdown table and as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics_scrape import ServerStats
from .runner import StepOutcome
from .sanity import SanityReport
from .stats import LatencySummary, summarize

GENERATOR_CPU_LIMIT = 0.8
"""Above this share of one core, a generator process is likely the bottleneck, not the server."""
_OPEN_LOOP_LAG_LIMIT_S = 0.005
_MIN_WALL_FOR_CPU_S = 0.5


@dataclass
class StepReport:
    """Everything measured in one step of a sweep.

    Attributes:
        label: What was tested, e.g. ``mf`` or ``dense/onnx/batching-on``.
        method: ``predict`` or ``recommend``.
        mode: ``closed`` (fixed concurrency) or ``open`` (fixed arrival rate).
        concurrency: Calls in flight (closed loop).
        rate: Offered calls per second (open loop).
        rows_per_request: Pairs (predict) or users (recommend) per call.
        int_ids: Predict pairs were sent as integer ids (``user_int_ids``/``item_int_ids``), not strings.
        calls: Successful calls.
        errors: Failed calls by status code.
        duration_s: Wall time of the step, first send to last answer.
        calls_per_s: Successful calls per second.
        rows_per_s: Successful rows per second.
        latency: Latency of the successful calls (open loop: from the scheduled send time).
        send_lag_p99_ms: Open loop: 99th percentile of how late calls left their schedule.
        generator_cpu: CPU the generator used, in cores (summed over its processes).
        generator_cpu_max_process: The busiest generator process, in cores.
        generator_processes: Generator processes that shared the step.
        generator_bound: True when the generator, not the server, likely limited the step.
        server: The server's metrics over the step, when a metrics URL was given.
        server_cpu: The server process's CPU use in cores, when its process id was given.
        sanity: Check of a sample of the responses.
        notes: Warnings for the reader.
    """

    label: str
    method: str
    mode: str
    concurrency: int | None
    rate: float | None
    rows_per_request: int
    int_ids: bool
    calls: int
    errors: dict[str, int]
    duration_s: float
    calls_per_s: float
    rows_per_s: float
    latency: LatencySummary | None
    send_lag_p99_ms: float | None
    generator_cpu: float
    generator_cpu_max_process: float
    generator_processes: int
    generator_bound: bool
    server: ServerStats | None = None
    server_cpu: float | None = None
    sanity: SanityReport = field(default_factory=SanityReport)
    notes: list[str] = field(default_factory=list)


def build_step_report(
    label: str,
    method: str,
    rows_per_request: int,
    outcome: StepOutcome,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    server: ServerStats | None = None,
    sanity: SanityReport | None = None,
    server_cpu: float | None = None,
    int_ids: bool = False,
) -> StepReport:
    """Turn a step's raw measurements into its report line.

    Args:
        label: What was tested.
        method: ``predict`` or ``recommend``.
        rows_per_request: Rows per call.
        outcome: The raw measurements.
        concurrency: Closed loop concurrency.
        rate: Open loop arrival rate, calls/s.
        server: The server's metrics over the step.
        sanity: The sanity check of sampled responses.
        server_cpu: The server's CPU use in cores.
        int_ids: The pairs went as integer ids.

    Returns:
        The report, with notes when the generator was likely the bottleneck or calls failed.
    """
    calls = outcome.codes.get("OK", 0)
    errors = {code: n for code, n in sorted(outcome.codes.items()) if code != "OK"}
    wall = outcome.wall_s
    lag_p99 = summarize(outcome.send_lag_s).p99_ms if outcome.send_lag_s.size else None
    cpu = outcome.cpu_s / wall if wall > 0 else 0.0
    notes = []
    bound = outcome.max_process_cpu > GENERATOR_CPU_LIMIT and wall >= _MIN_WALL_FOR_CPU_S  # too short to judge
    if bound:
        notes.append(
            f"generator used {outcome.max_process_cpu:.0%} of a core in one process: it may be the bottleneck "
            "(try --processes 2, or run the generator on another machine)"
        )
    if lag_p99 is not None and lag_p99 > _OPEN_LOOP_LAG_LIMIT_S * 1e3:
        bound = True
        notes.append(f"open loop sends left up to {lag_p99:.1f} ms late (p99): the generator cannot keep the rate")
    if errors:
        notes.append(f"{sum(errors.values())} calls failed: {errors}")
    if sanity is not None and not sanity.ok:
        notes.append(f"{sanity.failed}/{sanity.checked} sampled responses are wrong: {sanity.problems}")
    return StepReport(
        label=label,
        method=method,
        mode="open" if rate is not None else "closed",
        concurrency=concurrency,
        rate=rate,
        rows_per_request=rows_per_request,
        int_ids=int_ids,
        calls=calls,
        errors=errors,
        duration_s=wall,
        calls_per_s=calls / wall if wall > 0 else 0.0,
        rows_per_s=calls * rows_per_request / wall if wall > 0 else 0.0,
        latency=summarize(outcome.latencies_s),
        send_lag_p99_ms=lag_p99,
        generator_cpu=cpu,
        generator_cpu_max_process=outcome.max_process_cpu,
        generator_processes=outcome.processes,
        generator_bound=bound,
        server=server,
        server_cpu=server_cpu,
        sanity=sanity if sanity is not None else SanityReport(),
        notes=notes,
    )


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100_000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _batch(step: StepReport) -> str:
    if step.server is None or step.server.batch_rows_mean is None:
        return "-"
    return f"{step.server.batch_rows_mean:.1f} / {_num(step.server.batch_rows_p99)}"


def _queue(step: StepReport) -> str:
    if step.server is None or step.server.queue_ms_mean is None:
        return "-"
    return f"{step.server.queue_ms_mean:.2f} / {_num(step.server.queue_ms_p99, 2)}"


def load_label(step: StepReport) -> str:
    """``c=64`` for a closed-loop step, ``rate 500`` for an open-loop one."""
    return f"rate {step.rate:g}" if step.mode == "open" else f"c={step.concurrency}"


def _lat(field_name: str) -> Callable[[StepReport], str]:
    return lambda s: _num(getattr(s.latency, field_name)) if s.latency else "-"


COLUMNS: dict[str, Callable[[StepReport], str]] = {
    "step": lambda s: s.label,
    "load": load_label,
    "calls/s": lambda s: _num(s.calls_per_s, 0),
    "rows/s": lambda s: _num(s.rows_per_s, 0),
    "p50 ms": _lat("p50_ms"),
    "p90 ms": _lat("p90_ms"),
    "p99 ms": _lat("p99_ms"),
    "p99.9 ms": _lat("p999_ms"),
    "max ms": _lat("max_ms"),
    "errors": lambda s: ", ".join(f"{c}:{n}" for c, n in s.errors.items()) or "0",
    "batch rows mean / p99": _batch,
    "queue ms mean / p99": _queue,
    "infer ms": lambda s: _num(s.server.inference_ms_mean, 2) if s.server else "-",
    "srv CPU": lambda s: _num(s.server_cpu, 2),
    "gen CPU": lambda s: f"{s.generator_cpu:.2f}" + (" (!)" if s.generator_bound else ""),
    "sanity": lambda s: f"{s.sanity.checked - s.sanity.failed}/{s.sanity.checked}",
}


def format_table(steps: Sequence[StepReport], extra: Mapping[str, Callable[[StepReport], str]] | None = None) -> str:
    """Render steps as a markdown table.

    Args:
        steps: One row each.
        extra: Additional columns (header -> cell function), appended after ``rows/s``.

    Returns:
        The table; ``(!)`` marks steps where the generator was likely the bottleneck.
    """
    columns = dict(COLUMNS)
    if extra:
        ordered = list(columns.items())
        cut = [name for name, _ in ordered].index("rows/s") + 1
        columns = dict(ordered[:cut] + list(extra.items()) + ordered[cut:])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(step) for cell in columns.values()) + " |" for step in steps]
    return "\n".join(lines)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, counters and paths as plain JSON types (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` (dataclasses allowed) as indented JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")
