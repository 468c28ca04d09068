"""``recsys-loadtest``: sweep a recsys server with Predict or Recommend calls and report the figures."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .connection import Connection
from .plot import plot_sweep
from .report import format_table, load_label, write_json
from .runner import StepLimits
from .session import LoadTestConfig, LoadTestResult, run_loadtest
from .sweep import SweepConfig
from .target import TargetError, validate_target
from .workload import WorkloadError, WorkloadSpec

_LOGGER = logging.getLogger(__name__)
DEFAULT_DURATION_S = 10.0
REQUESTS_ONLY_TIME_CAP_S = 600.0
"""With ``--requests`` alone a step still stops after this long, so a slow server cannot hold the test forever."""


def _numbers(kind: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: give positive numbers, e.g. 1,8,64")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="recsys-loadtest",
        description="Load-test a recsys gRPC server: throughput and tail latency over a concurrency (or rate) "
        "sweep, with the server's batch sizes and queue time. Prints a markdown table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    what = parser.add_argument_group("what to send")
    what.add_argument("--target", default="127.0.0.1:50051", help="server address HOST:PORT")
    what.add_argument("--model", required=True, help="model name as listed by ListModels")
    what.add_argument("--version", type=int, default=0, help="model version, 0 for the newest ready one")
    what.add_argument("--method", choices=("predict", "recommend"), default="predict", help="RPC to load")
    what.add_argument("--pairs-per-request", type=int, default=1, help="(user, item) pairs per Predict call")
    what.add_argument(
        "--int-ids",
        action="store_true",
        help="Predict: send the pairs as packed integer ids (user_int_ids/item_int_ids) instead of strings; "
        "the model's ids must all be decimal integers (GetModelMetadata integer_ids)",
    )
    what.add_argument("--users-per-request", type=int, default=1, help="users per Recommend call")
    what.add_argument(
        "--histories",
        action="store_true",
        help="Recommend (LSTM): send each user's most recent training history instead of the user id, so the "
        "server runs the LSTM on every call (needs --repository)",
    )
    what.add_argument("--k", type=int, default=10, help="items per user asked of Recommend")
    what.add_argument("--include-seen", action="store_true", help="Recommend with exclude_seen=false")
    what.add_argument("--repository", type=Path, help="model repository the server serves: exact ids and histories")
    what.add_argument("--skew", type=float, default=1.0, help="Zipf exponent of user/item popularity, 0 uniform")
    what.add_argument("--pool-size", type=int, default=1024, help="distinct pre-built requests sent round-robin")
    what.add_argument("--seed", type=int, default=0, help="seed of the request draws")
    load = parser.add_argument_group("how much load")
    load.add_argument("--concurrency", type=_numbers(int), default=(1, 8, 64, 256), help="closed-loop sweep: in flight")
    load.add_argument("--rate", type=_numbers(float), help="open-loop sweep instead: calls/s at each step")
    load.add_argument(
        "--duration", type=float, help=f"seconds per step (default {DEFAULT_DURATION_S:g} if no --requests)"
    )
    load.add_argument("--requests", type=int, help="calls per step (the step ends at the first of the two bounds)")
    load.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds of load before each step")
    load.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    load.add_argument("--max-in-flight", type=int, default=10_000, help="open loop: cap on calls outstanding")
    load.add_argument("--processes", type=int, default=1, help="generator processes (when one cannot saturate)")
    load.add_argument("--channels", type=int, default=1, help="gRPC connections per generator process")
    out = parser.add_argument_group("reporting and safety")
    out.add_argument("--metrics-url", help="server Prometheus endpoint, e.g. http://127.0.0.1:9090/metrics")
    out.add_argument("--server-pid", type=int, help="the server's process id here, to report its CPU use per step")
    out.add_argument("--samples", type=int, default=64, help="responses per step checked for sanity")
    out.add_argument("--label", default="", help="name of this configuration in the table (default: the model)")
    out.add_argument("--json", type=Path, help="write the full results as JSON here")
    out.add_argument("--plot", type=Path, help="write a PNG of throughput vs p99 latency here")
    out.add_argument("--allow-remote", action="store_true", help="allow a target that is not this machine")
    out.add_argument("--token-file", type=Path, help="file holding a bearer token for an authenticating server")
    out.add_argument("--tls-ca", type=Path, help="PEM CA bundle: connect with TLS and verify the server")
    out.add_argument("--quiet", action="store_true", help="no progress bar, warnings only in the log")
    return parser


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise WorkloadError(f"cannot read the {what} file {path}: {error.strerror}") from error


def config_from_args(args: argparse.Namespace) -> LoadTestConfig:
    """Validate the flags into a :class:`LoadTestConfig` (no traffic is sent).

    Raises:
        TargetError: If the target is malformed, or remote without ``--allow-remote``.
        WorkloadError: If a flag is out of range or a file cannot be read.
    """
    target = validate_target(args.target, allow_remote=args.allow_remote)
    token = _read(args.token_file, "token")
    duration = args.duration
    if duration is None:
        duration = REQUESTS_ONLY_TIME_CAP_S if args.requests is not None else DEFAULT_DURATION_S
    try:
        connection = Connection(
            target=target.grpc_target,
            channels=args.channels,
            timeout_s=args.timeout,
            token=token.decode().strip() if token else None,
            root_certificates=_read(args.tls_ca, "TLS CA"),
        )
        limits = StepLimits(
            duration_s=duration, requests=args.requests, max_in_flight=args.max_in_flight, samples=args.samples
        )
        sweep = SweepConfig(
            connection=connection,
            label=args.label,
            concurrency=tuple(args.concurrency),
            rates=tuple(args.rate or ()),
            limits=limits,
            warmup_s=args.warmup,
            processes=args.processes,
            metrics_url=args.metrics_url,
            server_pid=args.server_pid,
            progress=not args.quiet,
        )
    except ValueError as error:
        raise WorkloadError(str(error)) from error
    spec = WorkloadSpec(
        method=args.method,
        model=args.model,
        version=args.version,
        rows_per_request=args.pairs_per_request if args.method == "predict" else args.users_per_request,
        k=args.k,
        exclude_seen=not args.include_seen,
        pool_size=args.pool_size,
        skew=args.skew,
        seed=args.seed,
        int_ids=args.int_ids,
        histories=args.histories,
    )
    return LoadTestConfig(sweep=sweep, workload=spec, repository=args.repository)


def render(result: LoadTestResult, config: LoadTestConfig) -> str:
    """The human report: a header on the server and generator, the table, then per-step notes."""
    server = result.server
    batching = server.get("batching") or {}
    lines = [
        f"model {server.get('model')} v{server.get('version')} ({server.get('architecture')}) on "
        f"{config.sweep.connection.target}: backend {server.get('backend') or '?'} "
        f"{server.get('execution_providers') or ''}, batching {batching or 'off/unknown'}",
        f"{config.workload.method}, {config.workload.rows_per_request} rows/call, {result.requests_built} pre-built "
        f"requests, {'integer' if config.workload.int_ids else 'string'} ids from {result.id_source}; generator: "
        f"{config.sweep.processes} process(es)",
        "",
        format_table(result.steps),
    ]
    notes = [f"- {s.label} {load_label(s)}: {note}" for s in result.steps for note in s.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test from the command line; returns the exit status (0 ok, 1 failed calls, 2 error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = config_from_args(args)
        result = asyncio.run(run_loadtest(config))
    except (TargetError, WorkloadError) as error:
        print(f"recsys-loadtest: error: {error}", file=sys.stderr)
        return 2
    print(render(result, config))
    if args.json:
        write_json(args.json, {"config": config, "server": result.server, "steps": result.steps})
        _LOGGER.info("wrote %s", args.json)
    if args.plot:
        try:
            plot_sweep({result.steps[0].label: result.steps}, args.plot, title=f"{config.workload.method} load test")
            _LOGGER.info("wrote %s", args.plot)
        except ValueError as error:
            _LOGGER.warning("no plot: %s", error)
    failed = any(s.errors or not s.sanity.ok for s in result.steps)
    return 1 if failed else 0
