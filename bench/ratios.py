"""Every ratio of a run, with its goal: computed within each round, judged at the median.

A row's ``values`` has one ratio per round (None for a round where either side had failed
calls). Status: PASS / MISS by the median against the target; "info" where there is no goal;
"ERROR" when any round had failed calls (such a run is not a result); "not judged" in a smoke
run; "skip" where the section did not run.
"""

from __future__ import annotations

import statistics

from bench import scaleout
from bench.sections import LARGE, SMALL, THROUGHPUT_POINTS, WRITTEN, point_key, written_run

LIBRARY = "ThresholdClient.predict"
LABELS = {
    "client": "client.wire codec (client.bench)",
    "library": f"{LIBRARY} (checked, the default)",
    "library-unchecked": f"{LIBRARY}(check=False)",
}


def ratio_row(
    goal: str,
    name: str,
    values: list[float | None],
    target: float | None = None,
    higher: bool = True,
    note: str = "",
    quick: bool = False,
) -> dict:
    """One row: per-round values, their min / median / max, and the verdict."""
    clean = [v for v in values if v is not None]
    row = {
        "goal": goal,
        "name": name,
        "values": values,
        "rounds": len(values),
        "error_rounds": len(values) - len(clean),
        "note": note,
        "target": None if target is None else (">= " if higher else "<= ") + f"{target:g}",
        "median": statistics.median(clean) if clean else None,
        "min": min(clean) if clean else None,
        "max": max(clean) if clean else None,
    }
    if len(clean) < len(values):
        row["status"] = "ERROR"
    elif target is None:
        row["status"] = "info"
    elif quick:
        row["status"] = "not judged"
    else:
        row["status"] = "PASS" if (row["median"] >= target if higher else row["median"] <= target) else "MISS"
    return row


def skipped(goal: str, name: str, note: str) -> dict:
    return {
        "goal": goal,
        "name": name,
        "values": [],
        "rounds": 0,
        "error_rounds": 0,
        "note": note,
        "target": None,
        "median": None,
        "min": None,
        "max": None,
        "status": "skip",
    }


def per_round(
    rounds: list[dict], top: str, bottom: str, metric: str = "requests_per_s"
) -> list[float | None]:
    """top / bottom in each round; None where either had errors."""
    values = []
    for measured in rounds:
        a, b = measured[top], measured[bottom]
        values.append(None if a.get("errors") or b.get("errors") else a[metric] / b[metric])
    return values


def _over_paired(point: dict) -> float | None:
    other = point.get("paired")
    if other is None or point.get("errors") or other.get("errors") or not other["requests_per_s"]:
        return None
    return point["requests_per_s"] / other["requests_per_s"]


def per_round_paired(rounds: list[dict], key: str, bottom: str | None = None) -> list[float | None]:
    """A workload against the reference it was measured in turns with (its "paired" record), per
    round; with ``bottom``, that ratio over ``bottom``'s own: two workloads from two processes
    compared through the reference each was measured beside. None for a round with failed
    calls (or no paired record)."""
    values = []
    for measured in rounds:
        top = _over_paired(measured[key])
        under = 1.0 if bottom is None else _over_paired(measured[bottom])
        values.append(None if top is None or not under else top / under)
    return values


def ratios(results: dict) -> list[dict]:
    """Every ratio of ``results`` (see the module docstring)."""
    quick = results["settings"].get("quick", False)
    rows: list[dict] = []

    def add(*args, **kwargs) -> None:
        rows.append(ratio_row(*args, quick=quick, **kwargs))

    tp = results.get("throughput")
    if tp:
        rounds = tp["rounds"]
        for shape, levels in THROUGHPUT_POINTS.items():
            for concurrency in levels:
                where = f"{shape[0]}x{shape[1]} c={concurrency}"
                for workload in ("client", "library", "library-unchecked"):
                    goal = 0.8 if shape == LARGE and workload != "library-unchecked" else None
                    add(
                        "1 vs gRPC echo",
                        f"{LABELS[workload]} {where}",
                        per_round_paired(rounds, point_key(workload, shape, concurrency)),
                        goal,
                    )
        for shape, levels in THROUGHPUT_POINTS.items():
            for concurrency in levels:
                where = f"{shape[0]}x{shape[1]} c={concurrency}"
                naive = point_key("naive", shape, concurrency)
                ceiling = (
                    statistics.median(1 / value for value in per_round_paired(rounds, naive) if value)
                    if shape == SMALL
                    else None
                )
                # For 8 values a request is all gRPC call overhead: even the echo ceiling is barely
                # faster than the naive client there, so the goal applies to batches, which are data.
                for workload in ("client", "library"):
                    add(
                        "2 vs naive TF client",
                        f"{LABELS[workload]} {where}",
                        per_round_paired(rounds, point_key(workload, shape, concurrency), naive),
                        1.2 if shape == LARGE else None,
                        note="" if ceiling is None else f"gRPC echo itself: {ceiling:.2f}",
                    )
    cold = results.get("cold_start")
    if cold:
        for name in ("client.predict --help", "client.predict one row"):
            add(
                "3 cold start vs import grpc, numpy",
                name,
                per_round(cold["rounds"], name, "import grpc, numpy", "seconds"),
                1.5,
                higher=False,
            )
    memory = results.get("peak_memory")
    if memory:
        small, large = memory["sizes"]
        add(
            "4 peak RSS",
            f"client.predict peak RSS / file size, {large} .npy",
            [m[large]["peak_rss_bytes"] / m[large]["file_bytes"] for m in memory["rounds"]],
            0.25,
            higher=False,
        )
        add(
            "4 peak RSS",
            f"peak RSS on {large} / on {small} (flat: O(batch))",
            per_round(memory["rounds"], large, small, "peak_rss_bytes"),
            1.2,
            higher=False,
        )
    for packed in (results.get("compact"), results.get("compact_embedded")):
        if not packed:
            continue
        if "skipped" in packed:
            rows.append(skipped("5 compact / float32", "requests/s", packed["skipped"]))
            continue
        sizes = packed["response_bytes"]
        add(
            "5 compact / float32",
            "response bytes",
            [sizes["compact"] / sizes["serving_default"]],
            note=packed["server"],
        )
        for concurrency in (1, 4):
            add(
                "5 compact / float32",
                f"requests/s 1024x256 c={concurrency}",
                per_round(packed["rounds"], f"compact c={concurrency}", f"serving_default c={concurrency}"),
                note=packed["server"],
            )
    batching = results.get("batching")
    if batching and "skipped" not in batching:
        add(
            "6 embedded server batching on / off",
            f"requests/s 1x8 c={batching['concurrency']}",
            per_round(batching["rounds"], "on", "off"),
        )
    elif batching:
        rows.append(skipped("6 embedded server batching on / off", "requests/s", batching["skipped"]))
    rows += _scaleout_rows(results.get("scaleout"), quick=quick)
    typed = results.get("typed_fields")
    if typed:
        for signature, what in (
            ("serving_default", "float32 mask in float_val"),
            ("compact", "uint8 mask in int_val"),
        ):
            add(
                "8 typed-field answers / tensor_content",
                f"client.wire 1024x256 c=1, {what}",
                per_round(typed["rounds"], f"typed {signature}", f"tensor_content {signature}"),
                0.9,
            )
    e2e = results.get("cli_end_to_end")
    if e2e and "skipped" not in e2e:
        rows_, cols = e2e["request_shape"]
        mib = e2e["file_bytes"] / 2**20
        for encoding in results.get("embedded_encodings", []):
            for signature, what, goal in (("serving_default", "float32", 0.7), ("compact", "compact", None)):
                add(
                    "9 client.predict CLI end to end / gRPC echo",
                    f"{mib:.0f} MiB .npy, {what}, server answers in {encoding}",
                    per_round(e2e["rounds"], f"{encoding} {signature}", "echo", "values_per_s"),
                    goal,
                    note=f"echo of {rows_}x{cols} requests, c={e2e['concurrency']}",
                )
            written = written_run(encoding)
            if written in e2e["rounds"][0]:  # the same run writing its mask to a file, as users run it
                add(
                    "9 client.predict CLI end to end / gRPC echo",
                    f"{mib:.0f} MiB .npy, float32, server answers in {encoding}, mask {WRITTEN}",
                    per_round(e2e["rounds"], written, "echo", "values_per_s"),
                    None,
                    note=f"echo of {rows_}x{cols} requests, c={e2e['concurrency']}",
                )
    elif e2e:
        rows.append(skipped("9 client.predict CLI end to end / gRPC echo", "values/s", e2e["skipped"]))
    return rows


def _scaleout_rows(section: dict | None, quick: bool = False) -> list[dict]:
    """The scale-out section's ratios (information: no goal on a shared 2-core box)."""
    if not section:
        return []
    if "skipped" in section:
        return [skipped(scaleout.GOAL, "bulk values/s", section["skipped"])]
    shape = f"{section['files']} files of {section['rows']}x{section['cols']}"
    note = f"{shape}; clients and servers share the cores"
    rows = []
    for workers, servers in scaleout.CONFIGS[1:]:
        name = f"{workers} worker{'s' * (workers > 1)}, {servers} server{'s' * (servers > 1)}"
        rows.append(
            ratio_row(
                scaleout.GOAL,
                name,
                per_round(
                    section["rounds"],
                    scaleout.point_name(workers, servers),
                    scaleout.point_name(1, 1),
                    "values_per_s",
                ),
                note=note,
                quick=quick,
            )
        )
    return rows
