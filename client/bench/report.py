"""A sweep as perf_analyzer-style text, CSV, JSON and a throughput/latency plot."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from client.bench.load import PERCENTILES
from client.bench.sweep import Sweep

COLUMNS = (
    "concurrency",
    "requests_per_s",
    "elements_per_s",
    "mb_per_s",
    *(f"p{p}_ms" for p in PERCENTILES),
    "errors",
    "requests",
)
_HEADINGS = {
    "concurrency": "concurrency",
    "requests_per_s": "req/s",
    "elements_per_s": "elements/s",
    "mb_per_s": "MB/s",
    "errors": "errors",
    "requests": "requests",
    **{f"p{p}_ms": f"p{p} ms" for p in PERCENTILES},
}


def _cell(column: str, value: float | int) -> str:
    if column in ("concurrency", "errors", "requests"):
        return str(value)
    if column == "elements_per_s":
        return f"{value:.3g}"
    return f"{value:.3f}" if column.endswith("_ms") else f"{value:.1f}"


def table(sweep: Sweep) -> str:
    """The header lines and one aligned row per concurrency level."""
    head = (
        f"server {sweep.server}  model {sweep.target.model_name}  signature {sweep.target.signature_name}"
        f"  batch float32[{sweep.rows}, {sweep.cols}]\n"
        f"request {sweep.request_bytes} B  response {sweep.response_bytes} B  outputs "
        + ", ".join(f"{k}={v}" for k, v in sweep.outputs.items())
        + "\nMB/s counts request + response message bytes; latencies are of successful requests"
    )
    cells = [[_HEADINGS[c] for c in COLUMNS]]
    cells += [[_cell(c, sweep.row(p)[c]) for c in COLUMNS] for p in sweep.points]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return head + "\n" + "\n".join(lines)


def to_csv(sweep: Sweep) -> str:
    """One header row, then one row per concurrency level (full precision)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for point in sweep.points:
        writer.writerow(sweep.row(point))
    return out.getvalue()


def to_json(sweep: Sweep) -> str:
    """The whole sweep: setting, message sizes and every point."""
    data = sweep.to_dict()
    for point in data["points"]:  # no successful request -> no latency: null, not NaN (invalid JSON)
        point.update({k: None for k, v in point.items() if isinstance(v, float) and math.isnan(v)})
    return json.dumps(data, indent=2, allow_nan=False)


def plot(sweep: Sweep, path: Path) -> Path:
    """Throughput and latency percentiles against concurrency, as a PNG (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = [sweep.row(p) for p in sweep.points]
    levels = [r["concurrency"] for r in rows]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    left.plot(levels, [r["requests_per_s"] for r in rows], marker="o")
    left.set(xlabel="concurrency", ylabel="requests/s", title="throughput")
    mb = left.twinx()
    mb.plot(levels, [r["mb_per_s"] for r in rows], marker="s", linestyle="--", color="tab:gray")
    mb.set_ylabel("MB/s (request + response)")
    for percentile in PERCENTILES:
        right.plot(levels, [r[f"p{percentile}_ms"] for r in rows], marker="o", label=f"p{percentile}")
    right.set(xlabel="concurrency", ylabel="latency ms", title="latency")
    right.legend()
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(levels, [str(level) for level in levels])
        axis.grid(True, alpha=0.3)
    figure.suptitle(
        f"{sweep.target.model_name}/{sweep.target.signature_name} "
        f"float32[{sweep.rows}, {sweep.cols}] at {sweep.server}"
    )
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
