"""Serving benchmark: our server against the transport ceiling, side by side, in one run.

Runs on this machine, client and server in separate processes sharing its cores:

1. the transport ceiling: a bare grpc.aio server answering an empty message without parsing the
   request (``loadtest.fake_server --mode ceiling``), driven by the same generator;
2. our server for each architecture x {onnx, torchscript} x {batching on, off}: Predict with one
   pair per call at each concurrency, Predict with 1,000 pairs per call (MF and dense) with string
   ids and, when the model's ids are all decimal integers (MovieLens), again with the same pairs as
   packed integer ids ("predict x1000 int"), Recommend top-10 for one user per call at concurrency 64;
   with ``--oip`` (default), the same Predict requests again through the Open Inference Protocol's
   ModelInfer as tritonclient sends them ("oip predict x1", "oip predict x1000": raw BYTES inputs,
   see ``bench/serving_oip.py``), beside the recsys.v1 rows. An OIP row's ceiling is the recsys.v1
   ceiling of the same rows per call (the ceiling server answers recsys.v1 methods only).

The ceiling gets each request shape in the same form (string or integer ids, the same bytes as the
first large-Predict model's requests), so every row is compared with the transport cost of its own
bytes.

It prints one markdown table with each step's ratio to the ceiling at the same concurrency and
request size, then the targets of issue 5 with pass/miss, and writes JSON and two plots.

    python -m bench.serving --quick                        # tiny models, ~3 minutes
    python -m bench.serving --repository model-repository  # exported models, full sweep
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from bench.serving_oip import oip_workload
from bench.serving_setup import ARCHITECTURES, ServerProcess, prepare_repository, running_server
from loadtest.connection import Connection
from loadtest.plot import plot_sweep
from loadtest.report import StepReport, format_table, write_json
from loadtest.runner import StepLimits
from loadtest.sweep import SweepConfig, run_sweep
from loadtest.workload import IdSpace, WorkloadSpec, build_workload, load_id_space

_LOGGER = logging.getLogger("bench.serving")
CEILING = "ceiling"


@dataclass(frozen=True)
class Kind:
    """A request shape: method, rows per call, Predict's pairs as integer ids, Recommend by history, via OIP."""

    name: str
    method: str
    rows: int
    int_ids: bool = False
    histories: bool = False
    oip: bool = False

    @property
    def shape(self) -> tuple[str, int, bool, bool]:
        """What the ceiling is compared on: an OIP row shares the ceiling of its recsys.v1 twin."""
        return self.method, self.rows, self.int_ids, self.histories


@dataclass(frozen=True)
class Case:
    """One sweep: a request shape against one server configuration and model."""

    config: str
    model: str
    kind: Kind
    concurrency: tuple[int, ...]
    run: str = ""

    @property
    def label(self) -> str:
        if self.config == CEILING:
            return f"ceiling{f' ({self.run})' if self.run else ''} {self.kind.name}"
        return f"{self.config}/{self.model} {self.kind.name}"


@dataclass
class Row:
    """A measured step of a case.

    Attributes:
        case: What was measured.
        step: The measurements.
        ceiling_ratio: calls/s over the ceiling's at the same request shape and concurrency.
        cpu_ratio: The same ratio per server CPU-second: calls per CPU-second of the server over those of the
            ceiling server. On a shared machine the other processes take cores away from the server at random;
            the work done per CPU-second does not depend on it, so this ratio is the stable one.
    """

    case: Case
    step: StepReport
    ceiling_ratio: float | None = None
    cpu_ratio: float | None = None

    @property
    def calls_per_cpu_s(self) -> float | None:
        """Successful calls per CPU-second of the server."""
        cpu = self.step.server_cpu
        return self.step.calls_per_s / cpu if cpu else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repository", type=Path, help="exported model repository to serve (else train models)")
    parser.add_argument("--data", default="tiny", help="without --repository: tiny, synthetic or a MovieLens folder")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of synthetic/MovieLens models")
    parser.add_argument("--keep-repository", type=Path, help="export the trained models here (reuse: --repository)")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="architectures (model names) to serve")
    parser.add_argument("--backends", default="onnx,torchscript", help="server backends to compare")
    parser.add_argument("--batching", default="on,off", help="dynamic batching settings to compare")
    parser.add_argument("--concurrency", default="1,8,64,256", help="Predict (1 pair) sweep")
    parser.add_argument("--compare-at", type=int, default=64, help="concurrency of Recommend and batching on/off")
    parser.add_argument("--big-pairs", type=int, default=1000, help="pairs per call of the large Predict")
    parser.add_argument("--big-concurrency", type=int, default=8, help="concurrency of the large Predict")
    parser.add_argument("--big-archs", default="mf,dense", help="architectures measured with large Predict calls")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each step")
    parser.add_argument("--quick", action="store_true", help="demo: 1.5 s steps, concurrency 1,64 only")
    parser.add_argument("--processes", type=int, default=1, help="generator processes")
    parser.add_argument(
        "--oip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also send the Predict x1 (at --compare-at) and large Predict requests through OIP ModelInfer",
    )
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for every server, repeatable")
    parser.add_argument("--out", type=Path, default=Path("out/bench/serving"), help="folder for JSON, tables, plots")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.concurrency = 1.5, 0.5, "1,64"
    return args


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def big_kinds(args: argparse.Namespace) -> tuple[Kind, Kind]:
    """The large Predict with string ids, and the same with integer ids."""
    name = f"predict x{args.big_pairs}"
    return Kind(name, "predict", args.big_pairs), Kind(f"{name} int", "predict", args.big_pairs, int_ids=True)


HISTORY = Kind("recommend history", "recommend", 1, histories=True)
OIP_PREDICT1 = Kind("oip predict x1", "predict", 1, oip=True)


def plan(
    args: argparse.Namespace, integer_archs: Collection[str] = (), history_archs: Collection[str] = ()
) -> tuple[list[Case], dict[str, list[Case]]]:
    """The ceiling cases and, per server configuration, its cases.

    Args:
        args: The command line.
        integer_archs: Models whose ids are all decimal integers: their large Predict runs with integer ids too.
        history_archs: Models that read histories (the LSTM): Recommend also runs with each user's history in
            the request, the path where the model runs per call (by user id it reads a state encoded at export).
    """
    sweep = tuple(int(c) for c in _csv(args.concurrency))
    predict1 = Kind("predict x1", "predict", 1)
    big, big_int = big_kinds(args)
    recommend = Kind("recommend top-10", "recommend", 1)
    archs = _csv(args.archs)
    big_archs = [a for a in archs if a in _csv(args.big_archs)]
    int_archs = [a for a in big_archs if a in integer_archs]
    hist_archs = [a for a in archs if a in history_archs]
    any_arch = archs[0]
    # The ceiling sends the very requests of the first large-Predict model (same ids, same name, same bytes).
    ceiling = [
        Case(CEILING, any_arch, predict1, sweep),
        Case(CEILING, (big_archs or archs)[0], big, (args.big_concurrency,)),
        *[Case(CEILING, arch, big_int, (args.big_concurrency,)) for arch in int_archs[:1]],
        Case(CEILING, any_arch, recommend, (args.compare_at,)),
        *[Case(CEILING, arch, HISTORY, (args.compare_at,)) for arch in hist_archs[:1]],
    ]
    servers: dict[str, list[Case]] = {}
    for backend in _csv(args.backends):
        for batching in _csv(args.batching):
            config = f"{backend}/batch-{batching}"
            cases = []
            for arch in archs:
                cases.append(Case(config, arch, predict1, sweep))
                if args.oip:
                    cases.append(Case(config, arch, OIP_PREDICT1, (args.compare_at,)))
                if arch in big_archs:
                    cases.append(Case(config, arch, big, (args.big_concurrency,)))
                    if args.oip:
                        oip_big = Kind(f"oip {big.name}", "predict", big.rows, oip=True)
                        cases.append(Case(config, arch, oip_big, (args.big_concurrency,)))
                if arch in int_archs:
                    cases.append(Case(config, arch, big_int, (args.big_concurrency,)))
                cases.append(Case(config, arch, recommend, (args.compare_at,)))
                if arch in hist_archs:
                    cases.append(Case(config, arch, HISTORY, (args.compare_at,)))
            servers[config] = cases
    return ceiling, servers


def server_flags(config: str, extra: Sequence[str]) -> list[str]:
    backend, batching = config.split("/batch-")
    return ["--backend", backend, "--max-batch-size", "256" if batching == "on" else "1", *extra]


async def run_case(case: Case, server: ServerProcess, ids: IdSpace, args: argparse.Namespace) -> list[StepReport]:
    spec = WorkloadSpec(
        method=case.kind.method,
        model=case.model,
        rows_per_request=case.kind.rows,
        k=10,
        int_ids=case.kind.int_ids,
        histories=case.kind.histories,
    )
    workload = build_workload(spec, ids)
    if case.kind.oip:
        workload = oip_workload(workload)
    checked = case.config != CEILING and not case.kind.oip  # the sanity check reads recsys.v1 answers only
    config = SweepConfig(
        connection=Connection(server.target, timeout_s=30),
        label=case.label,
        concurrency=case.concurrency,
        limits=StepLimits(duration_s=args.duration, samples=32 if checked else 0),
        warmup_s=args.warmup,
        processes=args.processes,
        metrics_url=server.metrics_url,
        server_pid=server.process.pid,
        progress=False,
    )
    return await run_sweep(config, workload, ids if checked else None)


def measure(args: argparse.Namespace, repository: Path, log_dir: Path) -> list[Row]:
    archs = _csv(args.archs)
    ids = {arch: load_id_space(repository, arch) for arch in archs}
    integer = {arch for arch, space in ids.items() if space.integer_ids() is not None}
    sequential = {arch for arch, space in ids.items() if space.max_history_length > 0}
    ceiling_cases, server_cases = plan(args, integer, sequential)
    total = 2 * sum(len(c.concurrency) for c in ceiling_cases) + sum(
        len(c.concurrency) for cases in server_cases.values() for c in cases
    )
    rows: list[Row] = []
    with tqdm(total=total, desc="serving bench", unit="step") as progress:
        # The ceiling runs first and last: the machine is shared, and the two runs show how much it drifted.
        again = [dataclasses.replace(case, run="end") for case in ceiling_cases]
        jobs = [(CEILING, ceiling_cases), *server_cases.items(), (CEILING, again)]
        for config, cases in jobs:
            repo = None if config == CEILING else repository
            flags = [] if config == CEILING else server_flags(config, args.server_arg)
            with running_server(log_dir, config.replace("/", "-"), repo, archs, flags) as server:
                for case in cases:
                    progress.set_postfix_str(case.label)
                    steps = asyncio.run(run_case(case, server, ids[case.model], args))
                    rows += [Row(case, step) for step in steps]
                    progress.update(len(steps))
    add_ceiling_ratios(rows)
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def add_ceiling_ratios(rows: list[Row]) -> None:
    """Ratios to the ceiling at the same request shape and concurrency (mean of the ceiling's two runs)."""
    speed: dict[tuple[tuple[str, int, bool, bool], int | None], list[float]] = {}
    efficiency: dict[tuple[tuple[str, int, bool, bool], int | None], list[float]] = {}
    for row in rows:
        if row.case.config == CEILING:
            key = (row.case.kind.shape, row.step.concurrency)
            speed.setdefault(key, []).append(row.step.calls_per_s)
            if row.calls_per_cpu_s is not None:
                efficiency.setdefault(key, []).append(row.calls_per_cpu_s)
    for row in rows:
        key = (row.case.kind.shape, row.step.concurrency)
        reference, per_cpu = _mean(speed.get(key, [])), _mean(efficiency.get(key, []))
        row.ceiling_ratio = row.step.calls_per_s / reference if reference > 0 else None
        if row.calls_per_cpu_s is not None and per_cpu > 0:
            row.cpu_ratio = row.calls_per_cpu_s / per_cpu


def _find(rows: list[Row], config: str, model: str, kind: str, concurrency: int) -> Row | None:
    for row in rows:
        case = row.case
        if (case.config, case.model, case.kind.name, row.step.concurrency) == (config, model, kind, concurrency):
            return row
    return None


def _target(name: str, where: str, measured: str, passed: bool) -> dict[str, Any]:
    return {"target": name, "where": where, "measured": measured, "pass": passed}


def _latency_targets(rows: list[Row], configs: list[str], archs: list[str], at: int) -> list[dict[str, Any]]:
    out = []
    for config in configs:
        for arch in archs:
            row = _find(rows, config, arch, "predict x1", at)
            if row and row.step.latency and row.ceiling_ratio is not None:
                p99 = row.step.latency.p99_ms
                measured = f"{row.ceiling_ratio:.2f}x, p99 {p99:.1f} ms"
                passed = row.ceiling_ratio >= 0.7 and p99 <= 50
                out.append(
                    _target(f"Predict x1 c={at}: >= 0.7x ceiling, p99 <= 50 ms", f"{config}/{arch}", measured, passed)
                )
    return out


def _big_targets(rows: list[Row], configs: list[str], bigs: Sequence[Kind], concurrency: int) -> list[dict[str, Any]]:
    """The 1M pairs/s target on every large-Predict row, each labelled with the id form it sent."""
    out = []
    for config in configs:
        for arch in ("mf", "dense"):
            for big in bigs:
                row = _find(rows, config, arch, big.name, concurrency)
                if row:
                    where = f"{config}/{arch}, {'integer' if big.int_ids else 'string'} ids"
                    measured = f"{row.step.rows_per_s:,.0f} pairs/s"
                    name = f"predict x{big.rows}: >= 1,000,000 pairs/s"
                    out.append(_target(name, where, measured, row.step.rows_per_s >= 1e6))
    return out


def _recommend_targets(rows: list[Row], configs: list[str], archs: list[str], at: int) -> list[dict[str, Any]]:
    out = []
    for config in configs:
        for arch in archs:
            row = _find(rows, config, arch, "recommend top-10", at)
            if row and row.ceiling_ratio is not None:
                measured = f"{row.ceiling_ratio:.2f}x ({row.step.calls_per_s:,.0f} calls/s)"
                name = f"Recommend top-10 c={at}: >= 0.5x ceiling"
                out.append(_target(name, f"{config}/{arch}", measured, row.ceiling_ratio >= 0.5))
    return out


def _batching_targets(rows: list[Row], backends: list[str], at: int) -> list[dict[str, Any]]:
    """Batching on vs off for dense and the LSTM: one pair per Predict, and (LSTM) Recommend by history."""
    out = []
    shapes = [("dense", "predict x1"), ("lstm", "predict x1"), ("lstm", HISTORY.name)]
    for backend in backends:
        for arch, kind in shapes:
            on = _find(rows, f"{backend}/batch-on", arch, kind, at)
            off = _find(rows, f"{backend}/batch-off", arch, kind, at)
            if on and off and off.step.calls_per_s > 0:
                gain = on.step.calls_per_s / off.step.calls_per_s
                measured = f"{gain:.2f}x ({on.step.calls_per_s:,.0f} vs {off.step.calls_per_s:,.0f} calls/s)"
                name = f"batching on/off c={at}: >= 2x calls/s"
                out.append(_target(name, f"{backend}/{arch} {kind}", measured, gain >= 2))
    return out


def evaluate_targets(rows: list[Row], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and pass/miss."""
    configs = sorted({r.case.config for r in rows if r.case.config != CEILING})
    batched = [c for c in configs if c.endswith("batch-on")]
    archs = _csv(args.archs)
    return (
        _latency_targets(rows, batched, archs, args.compare_at)
        + _big_targets(rows, [c for c in configs if c.startswith("onnx/")], big_kinds(args), args.big_concurrency)
        + _recommend_targets(rows, batched, archs, args.compare_at)
        + _batching_targets(rows, sorted({c.split("/")[0] for c in configs}), args.compare_at)
    )


def render(rows: list[Row], targets: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    by_step = {id(r.step): r for r in rows}
    ratio = {
        "x ceiling": lambda s: _fmt(by_step[id(s)].ceiling_ratio),
        "x ceiling per CPU": lambda s: _fmt(by_step[id(s)].cpu_ratio),
    }
    lines = [
        f"Serving benchmark on {machine['cpus']} CPUs ({machine['cpu']}), load average {machine['load_before']} "
        f"before / {machine['load_after']} after; client and server share the machine. 'x ceiling per CPU' "
        "compares calls per server CPU-second, which other processes on the machine do not distort.",
        "",
        format_table([r.step for r in rows], extra=ratio),
        "",
        "| target | where | measured | pass |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t['target']} | {t['where']} | {t['measured']} | {'yes' if t['pass'] else 'MISS'} |" for t in targets]
    notes = sorted({note for r in rows for note in r.step.notes if "generator" in note})
    if notes:
        lines += ["", f"Generator warnings ({len(notes)} distinct): {notes[0]}"]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "grpc": grpc.__version__,
        "load_before": round(os.getloadavg()[0], 2),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_plots(rows: list[Row], out: Path) -> list[Path]:
    def series(keep: Any) -> dict[str, list[StepReport]]:
        grouped: dict[str, list[StepReport]] = {}
        for row in rows:
            if row.case.kind.name == "predict x1" and keep(row.case):
                grouped.setdefault(row.case.label.removesuffix(" predict x1"), []).append(row.step)
        return grouped

    figures = (
        ("serving.png", lambda c: c.config == CEILING or c.config.endswith("batch-on"), "batching on"),
        (
            "serving-batching.png",
            lambda c: c.config == CEILING or c.config.startswith("onnx/"),
            "ONNX, batching on vs off",
        ),
    )
    written = []
    for name, keep, title in figures:
        try:
            written.append(
                plot_sweep(series(keep), out / name, title=f"Predict, 1 pair/call, {title}: throughput vs p99")
            )
        except ValueError as error:
            _LOGGER.warning("no %s: %s", name, error)
    return written


def _step_record(row: Row) -> dict[str, Any]:
    case = row.case
    return {
        "config": case.config,
        "model": case.model,
        "kind": case.kind.name,
        "int_ids": case.kind.int_ids,
        "histories": case.kind.histories,
        "oip": case.kind.oip,
        "ceiling_ratio": row.ceiling_ratio,
        "ceiling_ratio_per_cpu": row.cpu_ratio,
        "calls_per_server_cpu_s": row.calls_per_cpu_s,
        "step": row.step,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as scratch:
        repository = args.repository
        if repository is None:
            work = args.keep_repository or Path(scratch)
            repository = prepare_repository(args.data, work, _csv(args.archs), args.epochs)
        machine["repository"] = str(repository)
        rows = measure(args, repository, args.out / "logs")
    machine["load_after"] = round(os.getloadavg()[0], 2)
    targets = evaluate_targets(rows, args)
    text = render(rows, targets, machine)
    print(text)
    (args.out / "serving.md").write_text(text + "\n")
    write_json(
        args.out / "serving.json",
        {
            "machine": machine,
            "settings": {k: str(v) for k, v in vars(args).items()},
            "targets": targets,
            "steps": [_step_record(r) for r in rows],
        },
    )
    plots = write_plots(rows, args.out)
    _LOGGER.info("wrote %s, %s and %s", args.out / "serving.md", args.out / "serving.json", ", ".join(map(str, plots)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
