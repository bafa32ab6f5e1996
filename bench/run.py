"""``make bench`` / ``python -m bench.run``: every number as a ratio against a reference run alongside.

Starts and stops its own servers on 127.0.0.1, writes bench/results.json and bench/results.png,
prints a table of ratios against the goals (PASS / MISS, or "info" where there is no goal).
BENCH_QUICK=1 (or --quick) shrinks it to a smoke run of well under a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py` as well as `python -m bench.run`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, scaleout, sections  # noqa: E402
from bench.sections import LARGE, QUICK, SMALL, Settings  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent
SMOKE = "smoke: not judged"


def ratios(results: dict) -> list[dict]:
    """Every ratio with its goal: (name, value, goal text, PASS/MISS/info)."""
    rows = []
    # One round has no median to compare: a smoke run shows the numbers but judges no goal.
    smoke = results.get("settings", {}).get("rounds", 2) < 2

    def add(goal: str, name: str, value: float | None, target: float | None = None, higher=True,
            note: str = "") -> None:
        if value is None:
            status = "skip"
        elif target is None:
            status = "info"
        else:
            status = "PASS" if (value >= target if higher else value <= target) else "MISS"
            status = SMOKE if smoke else status
        rows.append({"goal": goal, "name": name, "value": value, "status": status, "note": note,
                     "target": None if target is None else (">= " if higher else "<= ") + f"{target:g}"})

    tp = results.get("throughput")
    if tp:
        for shape, goal_value in ((LARGE, 0.8), (SMALL, None)):
            for concurrency in (1, 4):
                echo = sections.rate(tp, "echo", shape, concurrency)
                where = f"{shape[0]}x{shape[1]} c={concurrency}"
                for workload, label in (("client", "client.wire codec (client.bench)"),
                                        ("library", "ThresholdClient.predict")):
                    measured = sections.rate(tp, workload, shape, concurrency)
                    add("1 vs gRPC echo", f"{label} {where}", measured / echo, goal_value)
        for shape in (LARGE, SMALL):
            for concurrency in (1, 4):
                naive = sections.rate(tp, "naive", shape, concurrency)
                where = f"{shape[0]}x{shape[1]} c={concurrency}"
                ceiling = sections.rate(tp, "echo", shape, concurrency) / naive
                # For 8 values a request is all gRPC call overhead: even the echo ceiling is barely
                # faster than the naive client there, so the goal applies to batches, which are data.
                goal, note = (1.2, "") if shape == LARGE else (None, f"gRPC echo itself: {ceiling:.2f}")
                for workload, label in (("client", "client.wire codec (client.bench)"),
                                        ("library", "ThresholdClient.predict")):
                    add("2 vs naive TF client", f"{label} {where}",
                        sections.rate(tp, workload, shape, concurrency) / naive, goal, note=note)
    cold = results.get("cold_start")
    if cold:
        base = cold["import grpc, numpy"]["median_s"]
        for name in ("client.predict --help", "client.predict one row"):
            add("3 cold start vs import grpc, numpy", name, cold[name]["median_s"] / base, 1.5, higher=False)
    memory = results.get("peak_memory")
    if memory:
        mib = memory["file_bytes"] / 2**20
        add("4 peak RSS / file size", f"client.predict on {mib:.0f} MiB .npy",
            memory["client_peak_rss_bytes"] / memory["file_bytes"], 0.25, higher=False,
            note="file smaller than 1 GiB: the interpreter's own ~50 MB weigh in" if mib < 1000 else "")
    for packed in (results.get("compact"), results.get("compact_embedded")):
        if not packed:
            continue
        by = {(p["signature"], p["concurrency"]): p for p in packed["points"]}
        add("5 compact / float32", "response bytes",
            by[("compact", 1)]["response_bytes"] / by[("serving_default", 1)]["response_bytes"],
            note=packed["server"])
        for concurrency in (1, 4):
            add("5 compact / float32", f"requests/s 1024x256 c={concurrency}",
                by[("compact", concurrency)]["requests_per_s"]
                / by[("serving_default", concurrency)]["requests_per_s"], note=packed["server"])
    batching = results.get("batching")
    if batching and "skipped" not in batching:
        add("6 embedded server batching on / off",
            f"requests/s 1x8 c={batching['concurrency']}",
            batching["batching_on_requests_per_s"] / batching["batching_off_requests_per_s"])
    elif batching:
        add("6 embedded server batching on / off", "requests/s", None, note=batching["skipped"])
    rows += scaleout.ratio_rows(results.get("scaleout"))
    return rows


def run(settings: Settings, skip: set[str], log=print) -> dict:
    """Measure every section not in ``skip``; the results dict that results.json holds."""
    results: dict = {"settings": dataclasses.asdict(settings),
                     "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                 "cpus": os.cpu_count()},
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if "throughput" not in skip:
            log("throughput: client vs echo vs naive (reference server, replayed answers)")
            with sections.reference_server(workdir) as address:
                results["throughput"] = sections.throughput(address, settings, log=log)
        embedded = sections.embedded_server_available()
        with sections.reference_server(workdir, compute=True) as address:
            if "cold_start" not in skip:
                log("cold start: client.predict vs import grpc, numpy")
                results["cold_start"] = sections.cold_start(address, settings, workdir)
            if "peak_memory" not in skip:
                log(f"peak RSS: client.predict on a {settings.rss_mib} MiB .npy")
                results["peak_memory"] = sections.peak_memory(address, settings, workdir)
        if "compact" not in skip:
            log("compact vs float32 responses (reference server: transport only)")
            with sections.reference_server(workdir) as address:
                results["compact"] = sections.compact(address, settings)
                results["compact"]["server"] = "reference server: transport only"
            if embedded:
                log("compact vs float32 responses (embedded server: the real model)")
                with sections.embedded_server(workdir, "compact") as address:
                    results["compact_embedded"] = sections.compact(address, settings)
                    results["compact_embedded"]["server"] = "embedded server, real model"
        if "batching" not in skip:
            if embedded:
                log("embedded server: batching off vs on")
                results["batching"] = sections.batching(settings, workdir, log=log)
            else:
                results["batching"] = {"skipped": "serving.local is not in this tree yet"}
        if "scaleout" not in skip and embedded:
            log("scale-out: bulk run, 1 and 2 client processes against 1 and 2 embedded servers")
            results["scaleout"] = scaleout.measure(settings, workdir, log=log)
    results["ratios"] = ratios(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                        help="smoke run: 1 round, short points, 16 MiB RSS file (env BENCH_QUICK=1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per comparison (default 5)")
    parser.add_argument("--duration", type=float, help="seconds per load point (default 1.2)")
    parser.add_argument("--rss-mib", type=int, default=int(os.environ.get("BENCH_RSS_MIB", 0)) or None,
                        help="size of the .npy for the peak-RSS check (env BENCH_RSS_MIB, default 1024)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: throughput, "
                                                  "cold_start, peak_memory, compact, batching, scaleout")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "results.json", help="results JSON path")
    parser.add_argument("--plot", type=Path, default=OUT_DIR / "results.png", help="results PNG path")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    overrides = {k: v for k, v in (("rounds", args.rounds), ("duration", args.duration),
                                   ("rss_mib", args.rss_mib)) if v}
    settings = dataclasses.replace(settings, **overrides)
    started = time.perf_counter()
    results = run(settings, {s.strip() for s in args.skip.split(",") if s.strip()},
                  log=lambda text: print(text, file=sys.stderr, flush=True))
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report.ratio_table(results))
    print(f"\nwrote {args.out}")
    try:
        print(f"wrote {report.plot(results, args.plot)}")
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
