"""The benchmark's ratio table (text, markdown), results.md and the PNG."""

from __future__ import annotations

from pathlib import Path

HEAD = ("goal", "measured", "median", "min-max", "rounds", "target", "result")
REGENERATE = "make bench"


def _cells(row: dict) -> tuple[str, ...]:
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    spread = "-" if row["min"] is None else f"{row['min']:.2f}-{row['max']:.2f}"
    rounds = str(row["rounds"]) + (f" ({row['error_rounds']} with errors)" if row["error_rounds"] else "")
    return (
        row["goal"],
        row["name"],
        number(row["median"]),
        spread,
        rounds,
        row["target"] or "",
        row["status"] + (f" ({row['note']})" if row["note"] else ""),
    )


def describe_run(results: dict) -> str:
    """One line: when, on what, how long, and whether this was the smoke run."""
    where = results["machine"]
    kind = "SMOKE RUN (BENCH_QUICK=1): goals not judged" if results["settings"].get("quick") else "full run"
    seconds = results.get("seconds")
    took = f"; {seconds:.0f} s" if seconds is not None else ""
    return (
        f"{kind}, {results['started']}: {where['cpus']} CPUs ({where.get('processor', '')}), "
        f"Python {where['python']}, {where['platform']}{took}"
    )


def ratio_table(results: dict, markdown: bool = False, heading: bool = False) -> str:
    """One row per ratio: median, min-max over rounds, rounds, target and PASS/MISS/ERROR."""
    rows = [_cells(r) for r in results["ratios"]]
    if markdown:
        lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        if heading:
            lines = [f"From `{REGENERATE}`, {describe_run(results)}.", ""] + lines
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in [HEAD, *rows]) for i in range(len(HEAD))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [HEAD, *rows]
    ]
    return "\n".join(lines + ["", describe_run(results)])


def results_markdown(results: dict) -> str:
    """bench/results.md: the run, how to regenerate it, the table."""
    return (
        f"# make bench results\n\n{ratio_table(results, markdown=True, heading=True)}\n\n"
        "Each ratio is computed within a round (both sides measured seconds apart, order rotated "
        "each round) and shown as the median over rounds with its min-max; a goal is PASS only "
        "when the median meets it; ERROR means some call failed in some round. In goals 1 and 2 "
        "the echo runs in the same process as each workload, the two taking turns in eight "
        "slices per point, so both see the machine in the same state; goal 2 divides the "
        "client's ratio to its echo by the naive client's ratio to its own.\n"
    )


def plot(results: dict, path: Path) -> Path:
    """Ratios against their goals: the median as a bar, the min-max over rounds as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    ratios = [r for r in results["ratios"] if r["median"] is not None]
    figure, axes = pyplot.subplots(figsize=(11, max(4.0, 0.3 * len(ratios) + 1)))
    colors = {"PASS": "tab:green", "MISS": "tab:red", "ERROR": "black"}
    labels = [f"{r['goal'].split()[0]}: {r['name']}" for r in ratios]
    axes.barh(
        range(len(ratios)),
        [r["median"] for r in ratios],
        color=[colors.get(r["status"], "tab:gray") for r in ratios],
    )
    for index, r in enumerate(ratios):
        axes.plot([r["min"], r["max"]], [index, index], color="black", linewidth=1)
        if r["target"]:
            axes.plot([float(r["target"].split()[1])] * 2, [index - 0.4, index + 0.4], color="tab:blue")
    axes.set_yticks(range(len(ratios)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set(
        xlabel="ratio: median bar, min-max line, blue tick the goal (green PASS, red MISS, gray info)",
        title=describe_run(results),
    )
    axes.title.set_fontsize(8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
