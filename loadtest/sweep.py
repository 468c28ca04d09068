"""A sweep: the same workload at each concurrency (or rate) in turn, one report line per step."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from tqdm import tqdm

from .connection import Connection
from .executor import Executor, InProcessExecutor, ProcessExecutor, Step
from .metrics_scrape import MetricsError, Samples, diff_samples, fetch_metrics, server_stats
from .proc_cpu import ProcessCpuError, process_cpu_seconds
from .report import StepReport, build_step_report
from .runner import StepLimits
from .sanity import check_responses
from .workload import IdSpace, Workload

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepConfig:
    """How to drive one workload against one target.

    Attributes:
        connection: The server and how to reach it.
        label: Name of the tested configuration in reports (default: the model, then ``int`` for integer ids).
        concurrency: Closed-loop steps: calls in flight at each step.
        rates: Open-loop steps: calls/s at each step; when given, ``concurrency`` is ignored.
        limits: Bounds of each measured step.
        warmup_s: Unmeasured load before each step, in seconds (connections, caches, JIT, batch queues).
        processes: Generator processes (1: in this process).
        metrics_url: The server's Prometheus endpoint, to report batch sizes and queue time.
        server_pid: The server's process id on this machine, to report its CPU use.
        progress: Show a tqdm bar over the steps.
    """

    connection: Connection
    label: str = ""
    concurrency: tuple[int, ...] = (1, 8, 64, 256)
    rates: tuple[float, ...] = ()
    limits: StepLimits = field(default_factory=StepLimits)
    warmup_s: float = 1.0
    processes: int = 1
    metrics_url: str | None = None
    server_pid: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if any(c < 1 for c in self.concurrency) or any(r <= 0 for r in self.rates):
            raise ValueError(f"concurrency {self.concurrency} must be >= 1 and rates {self.rates} > 0")
        if not self.rates and not self.concurrency:
            raise ValueError("no step: give --concurrency or --rate")
        if self.processes < 1 or not 0 <= self.warmup_s <= 600:
            raise ValueError(f"processes={self.processes} must be >= 1 and warmup={self.warmup_s} s within [0, 600]")

    def steps(self) -> list[Step]:
        """The steps in order."""
        if self.rates:
            return [Step(rate=r) for r in self.rates]
        return [Step(concurrency=c) for c in self.concurrency]


class _Scraper:
    """Reads the server's metrics and CPU time around a step; warns once and carries on without them."""

    def __init__(self, url: str | None, pid: int | None) -> None:
        self.url = url
        self.pid = pid
        self.before: Samples | None = None
        self.cpu_before: float | None = None

    async def read(self) -> Samples | None:
        if self.url is None:
            return None
        try:
            return await asyncio.to_thread(fetch_metrics, self.url)
        except MetricsError as error:
            _LOGGER.warning("%s; reporting without server metrics", error)
            self.url = None
            return None

    def cpu(self) -> float | None:
        if self.pid is None:
            return None
        try:
            return process_cpu_seconds(self.pid)
        except ProcessCpuError as error:
            _LOGGER.warning("%s; reporting without server CPU", error)
            self.pid = None
            return None

    async def mark(self) -> None:
        self.before = await self.read()
        self.cpu_before = self.cpu()

    def server_cpu(self, wall_s: float) -> float | None:
        """Server CPU use since :meth:`mark`, in cores."""
        now = self.cpu()
        if now is None or self.cpu_before is None or wall_s <= 0:
            return None
        return (now - self.cpu_before) / wall_s


def make_executor(config: SweepConfig, workload: Workload) -> Executor:
    """The in-process or multi-process generator for ``config``."""
    if config.processes > 1:
        return ProcessExecutor(config.connection, workload.method_path, workload.payloads, config.processes)
    return InProcessExecutor(config.connection, workload.method_path, workload.payloads)


async def run_sweep(config: SweepConfig, workload: Workload, ids: IdSpace | None = None) -> list[StepReport]:
    """Run every step of the sweep and report each.

    Args:
        config: Target, steps and bounds.
        workload: The pre-built requests.
        ids: The model's id space, for the sanity check (None checks answers for consistency only).

    Returns:
        One report per step, in order.
    """
    spec = workload.spec
    label = config.label or (
        f"{spec.model} int" if spec.int_ids else f"{spec.model} hist" if spec.histories else spec.model
    )
    scraper = _Scraper(config.metrics_url, config.server_pid)
    executor = make_executor(config, workload)
    reports = []
    try:
        for step in tqdm(config.steps(), desc=f"load {label}", unit="step", disable=not config.progress):
            outcome = await executor.run(step, config.limits, config.warmup_s, scraper.mark)
            server_cpu = scraper.server_cpu(outcome.wall_s)
            after = await scraper.read()
            stats = None
            if after is not None and scraper.before is not None:
                stats = server_stats(diff_samples(scraper.before, after), spec.model, spec.method)
            reports.append(
                build_step_report(
                    label,
                    spec.method,
                    spec.rows_per_request,
                    outcome,
                    concurrency=step.concurrency,
                    rate=step.rate,
                    server=stats,
                    sanity=check_responses(workload, outcome.samples, ids),
                    server_cpu=server_cpu,
                    int_ids=spec.int_ids,
                )
            )
    finally:
        await executor.close()
    return reports
