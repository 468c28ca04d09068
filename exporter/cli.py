"""``recsys-export``: export a training run's checkpoints into a versioned model repository."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.errors import ExportError, ExportInputError
from exporter.export import ExportResult, export_run
from exporter.formats import FORMATS, format_label
from exporter.retrieval import DEFAULT_MIN_ITEMS, RetrievalOptions
from exporter.retrieval_index import KINDS, IndexSpec
from protos.recsys.v1 import model_config_pb2 as mc
from trainer import architecture as architectures


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="recsys-export",
        description="Export trained checkpoints (RUN_DIR/<model>/checkpoint.pt) as the next version of each "
        "model in a repository of ONNX and TorchScript artifacts, after proving parity with the eager model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--run", type=Path, required=True, metavar="RUN_DIR", help="training run folder (recsys-train --out)"
    )
    parser.add_argument(
        "--model",
        type=_csv,
        default="all",
        help=f"models to export, comma-separated, from {', '.join(architectures.names())}, or all (those present)",
    )
    parser.add_argument(
        "--repository", type=Path, required=True, metavar="REPO", help="model repository root (created if missing)"
    )
    parser.add_argument(
        "--formats",
        type=_csv,
        default=",".join(FORMATS),
        help=f"artifact formats, comma-separated, from {', '.join(FORMATS)}",
    )
    parser.add_argument(
        "--name", default=None, help="model name in the repository, for a single --model; None: the architecture's name"
    )
    retrieval = parser.add_argument_group("retrieval index (large catalogues)")
    retrieval.add_argument(
        "--retrieval-min-items",
        type=int,
        default=None,
        metavar="N",
        help=f"build a faiss index for Recommend by user id when the catalogue has at least N items, and serve "
        f"from it at that size (None: {DEFAULT_MIN_ITEMS:,}, skipped with a warning when faiss is missing; "
        "given: faiss is required)",
    )
    retrieval.add_argument("--retrieval-kind", choices=KINDS, default="ivf", help="index structure")
    retrieval.add_argument(
        "--retrieval-recall-target",
        type=float,
        default=0.95,
        help="an ivf index searches more cells (nprobe doubled) until its recall@10 reaches this",
    )
    retrieval.add_argument(
        "--retrieval-recall-floor",
        type=float,
        default=0.9,
        help="fail the export when the index's recall@10 against the exact top-10 of stored users is lower",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


def retrieval_options(args: argparse.Namespace) -> RetrievalOptions:
    """The retrieval settings of the parsed flags."""
    explicit = args.retrieval_min_items is not None
    return RetrievalOptions(
        min_items=args.retrieval_min_items if explicit else DEFAULT_MIN_ITEMS,
        spec=IndexSpec(kind=args.retrieval_kind),
        recall_target=args.retrieval_recall_target,
        recall_floor=args.retrieval_recall_floor,
        required=explicit,
    )


def _parity_lines(result: ExportResult) -> list[str]:
    """Worst difference per (format, signature), over all batch sizes and history lengths, with its unit.

    Ratings differ in stars; ranking scores have no unit, and their checks also compare the top-k order.
    """
    worst: dict[tuple[str, str], float] = {}
    ranked: set[tuple[str, str]] = set()
    for check in result.parity.checks:
        key = (format_label(check.format), check.signature)
        worst[key] = max(worst.get(key, 0.0), check.max_abs_diff)
        if check.top_k:
            ranked.add(key)
    return [
        f"    {fmt:<12}{sig:<15} max abs diff {diff:.2e}"
        + (" (ranking scores; top-10 order identical)" if (fmt, sig) in ranked else " stars")
        for (fmt, sig), diff in sorted(worst.items())
    ]


def _retrieval_lines(config: mc.ModelConfig) -> list[str]:
    if not config.HasField("retrieval_index"):
        return []
    index = config.retrieval_index
    return [
        f"  retrieval index: {index.path} ({index.kind}, recall@10 {index.recall_at_10:.3f} over "
        f"{index.recall_users} users) serves {index.signature} from {index.min_num_items:,} items"
    ]


def describe(result: ExportResult) -> str:
    """What one export wrote: folder, files, ONNX opset and parity figures."""
    config = result.config
    opsets = sorted({a.onnx_opset for a in config.artifacts if a.format == mc.ARTIFACT_FORMAT_ONNX})
    files = ", ".join(a.path for a in config.artifacts)
    lines = [
        f"wrote {result.name} version {result.version} at {result.path}",
        f"  artifacts: {files} + {len(config.side_files)} side files",
        f"  onnx opset: {', '.join(map(str, opsets)) if opsets else 'n/a (no onnx)'}",
        *_retrieval_lines(config),
        f"  parity over {len(result.parity.checks)} checks (tolerance {result.parity.tolerance:g}):",
        *_parity_lines(result),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0 on success, 2 for bad input, 1 when a valid export fails."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        results = export_run(
            args.run,
            args.repository,
            args.model,
            name=args.name,
            formats=args.formats,
            retrieval=retrieval_options(args),
        )
    except ExportInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for result in results:
        print(describe(result))
    return 0
