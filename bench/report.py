"""The benchmark's ratio table (text, markdown) and its PNG."""

from __future__ import annotations

from pathlib import Path


def ratio_table(results: dict, markdown: bool = False) -> str:
    """Goal, measurement, ratio, target and PASS/MISS, one row per ratio."""
    head = ("goal", "measured", "ratio", "target", "result")
    rows = [(r["goal"], r["name"], "-" if r["value"] is None else f"{r['value']:.2f}", r["target"] or "",
             r["status"] + (f" ({r['note']})" if r["note"] else "")) for r in results["ratios"]]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in [head, *rows])


def plot(results: dict, path: Path) -> Path:
    """Left: ratios against their goals. Right: 1024x256 requests/s by workload and concurrency."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    ratios = [r for r in results["ratios"] if r["value"] is not None]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(14, max(4.0, 0.32 * len(ratios) + 1)))
    colors = {"PASS": "tab:green", "MISS": "tab:red", "info": "tab:gray", "smoke: not judged": "tab:gray"}
    labels = [f"{r['goal'].split()[0]}: {r['name']}" for r in ratios]
    left.barh(range(len(ratios)), [r["value"] for r in ratios], color=[colors[r["status"]] for r in ratios])
    for index, r in enumerate(ratios):
        if r["target"]:
            left.plot([float(r["target"].split()[1])] * 2, [index - 0.4, index + 0.4], color="black")
    left.set_yticks(range(len(ratios)), labels, fontsize=7)
    left.invert_yaxis()
    left.set(xlabel="ratio (black tick: goal; green PASS, red MISS, gray info)", title="ratios, same run")
    throughput = results.get("throughput")
    if throughput:
        large = [p for p in throughput["points"] if (p["rows"], p["cols"]) == (1024, 256)]
        workloads = sorted({p["workload"] for p in large}, key=["echo", "client", "library", "naive"].index)
        levels = sorted({p["concurrency"] for p in large})
        width = 0.8 / len(levels)
        for offset, level in enumerate(levels):
            rate = {p["workload"]: p["requests_per_s"] for p in large if p["concurrency"] == level}
            values = [rate[w] for w in workloads]
            right.bar([i + offset * width for i in range(len(workloads))], values, width,
                      label=f"concurrency {level}")
        right.set_xticks([i + width * (len(levels) - 1) / 2 for i in range(len(workloads))], workloads)
        right.set(ylabel="requests/s (median of rounds)", title="float32[1024, 256] Predict, loopback")
        right.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
