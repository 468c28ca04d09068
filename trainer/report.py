"""The metrics table (markdown, for the terminal and the README) and ``report.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rmse", "RMSE", "{:.4f}"),
    ("mae", "MAE", "{:.4f}"),
    ("rmse_01", "RMSE_01", "{:.4f}"),
    ("recall@10", "Recall@10", "{:.4f}"),
    ("ndcg@10", "NDCG@10", "{:.4f}"),
    ("coverage@10", "Coverage@10", "{:.3f}"),
    ("train_seconds", "train s", "{:.1f}"),
)

Metrics = Mapping[str, float | None]


def format_table(
    models: Mapping[str, Metrics],
    baselines: Mapping[str, Metrics] | None = None,
    references: Mapping[str, Metrics] | None = None,
) -> str:
    """A markdown table with one row per model, then baselines and reference rows.

    Missing or ``None`` values print as ``-`` (the global mean cannot rank).
    """
    header = "| model | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * len(COLUMNS)]
    for group, label in ((models, "{}"), (baselines or {}, "baseline: {}"), (references or {}, "reference: {}")):
        for name, metrics in group.items():
            cells = [_cell(metrics.get(key), fmt) for key, _, fmt in COLUMNS]
            lines.append(f"| {label.format(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def build_report(
    models: Mapping[str, Metrics],
    baselines: Mapping[str, Metrics],
    *,
    data: Mapping[str, str] | None = None,
    references: Mapping[str, Metrics] | None = None,
) -> dict[str, Any]:
    """The ``report.json`` document: ``{"models": {...}, "baselines": {...}}`` plus provenance."""
    report: dict[str, Any] = {
        "models": {name: _clean(m) for name, m in models.items()},
        "baselines": {name: _clean(m) for name, m in baselines.items()},
    }
    if references:
        report["references"] = {name: _clean(m) for name, m in references.items()}
    if data:
        report["data"] = dict(data)
    return report


def write_report(path: Path, report: Mapping[str, Any]) -> Path:
    """Write the report as indented JSON (strict: ``None`` for values that do not apply, never NaN)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _clean(metrics: Metrics) -> dict[str, float | None]:
    return {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in metrics.items()
    }
