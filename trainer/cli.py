"""``recsys-train``: read data, train the chosen models, print the metrics table, write checkpoints and a report.

Launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), every process trains each model as one
rank of a data-parallel run (``trainer.distributed``); rank 0 prints the table and writes checkpoints and
the report. This is the one module that reads the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trainer import architecture, devices, distributed
from trainer.baselines import baseline_metrics
from trainer.data.download import ARCHIVES, DownloadError, default_cache_dir, download_dataset
from trainer.data.readers import DataFormatError
from trainer.data.sources import SPLITS, SplitOptions, load_split
from trainer.jobs import LOG_FORMAT, RunOptions, run_models
from trainer.report import build_report, format_table, write_report

_LOGGER = logging.getLogger("trainer")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``recsys-train``."""
    parser = argparse.ArgumentParser(
        prog="recsys-train",
        description="Train recommender models (rating and ranking heads) on explicit ratings and evaluate them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default="all", choices=[*architecture.names(), "all"], help="architecture to train")
    parser.add_argument(
        "--data",
        default="synthetic",
        help="'synthetic' (built-in, offline), a MovieLens 100K folder (u.data), a MovieLens 1M/10M ratings.dat "
        "(or its folder), or a delimited user,item,rating[,timestamp] file (.csv/.tsv/.txt)",
    )
    parser.add_argument(
        "--download",
        choices=sorted(ARCHIVES),
        default=None,
        help="fetch this GroupLens data set into --cache-dir (checksum verified) and use it as --data",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="where --download stores data")
    parser.add_argument(
        "--split",
        default="random",
        choices=SPLITS,
        help="random (seeded), temporal (last --test-per-user ratings of each user), or a predefined "
        "MovieLens 100K split (u1..u5, ua, ub)",
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of ratings held out by --split random")
    parser.add_argument("--test-per-user", type=int, default=5, help="ratings per user held out by --split temporal")
    parser.add_argument("--delimiter", default=",", help="field separator of a generic delimited file")
    parser.add_argument(
        "--val-fraction", type=float, default=0.05, help="share of TRAINING ratings held out for early stopping"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/latest"), help="run folder: <model>/checkpoint.pt")
    parser.add_argument("--report", type=Path, default=None, help="report JSON path (default: OUT/report.json)")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits, initialisation and shuffling")
    parser.add_argument("--epochs", type=int, default=None, help="override every model's epoch budget")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time cap per model")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="models trained at once, one process each"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per model process; when fewer models are left than --jobs, the rest share the free ones",
    )
    parser.add_argument(
        "--dist-backend",
        choices=distributed.BACKENDS,
        default=None,
        help="torch.distributed backend under torchrun (default gloo; nccl trains each rank on its local GPU)",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="where training steps run: cpu, cuda, cuda:N, or auto (the GPU when torch sees one); default cpu, "
        "or this rank's GPU under --dist-backend nccl. Evaluation and export read the model on the CPU",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``recsys-train``; returns the process exit status (2 for bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    architectures = list(architecture.names()) if args.model == "all" else [args.model]
    try:
        context = distributed.DistributedContext.from_env(os.environ, args.dist_backend)
        device = devices.resolve(args.device, context)
    except ValueError as error:
        print(f"recsys-train: error: {error}", file=sys.stderr)
        return 2
    distributed.init(context)
    try:
        return _run(args, architectures, context, device)
    finally:
        distributed.shutdown(context)


def _run(
    args: argparse.Namespace, architectures: list[str], context: distributed.DistributedContext, device: str
) -> int:
    if context.enabled:
        _LOGGER.info("rank %d of %d (local rank %d)", context.rank, context.world_size, context.local_rank)
    if device != "cpu":
        _LOGGER.info("training steps on %s", device)
    try:
        data = str(download_dataset(args.download, args.cache_dir)) if args.download else args.data
        split = load_split(
            data,
            args.split,
            SplitOptions(args.test_fraction, args.test_per_user, args.seed, args.delimiter),
        )
        provenance = {"source": data}
        metrics = run_models(
            architectures,
            split,
            args.out,
            RunOptions(
                args.seed,
                args.val_fraction,
                args.epochs,
                args.max_seconds,
                args.threads,
                not args.no_progress,
                device,
            ),
            jobs=args.jobs,
            data=provenance,
            context=context,
        )
    except (DataFormatError, DownloadError, FileNotFoundError, ValueError) as error:
        print(f"recsys-train: error: {error}", file=sys.stderr)
        return 2
    if not context.is_main:
        return 0
    baselines = baseline_metrics(split)
    report = build_report(metrics, baselines, data={**provenance, "split": split.name, "seed": str(args.seed)})
    report_path = write_report(args.report or args.out / "report.json", report)
    print(format_table(metrics, baselines))
    print(f"\ncheckpoints in {args.out}, report in {report_path}")
    return 0
