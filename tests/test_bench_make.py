"""``make bench``'s driver (``python -m bench.run --quick``): runs, and writes well-formed results.

Only the structure is checked; PASS or MISS depends on the machine, never on a test.
"""

from __future__ import annotations

import json

from tests.conftest import run_module

STATUSES = {"PASS", "MISS", "info", "skip", "smoke: not judged"}


def test_bench_run_quick_writes_results_json_png_and_a_ratio_table(tmp_path):
    out, png = tmp_path / "results.json", tmp_path / "results.png"
    result = run_module("bench.run", "--quick", "--out", out, "--plot", png, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    results = json.loads(out.read_text())
    for section in ("throughput", "cold_start", "peak_memory", "compact", "batching", "scaleout"):
        assert section in results
    workloads = {point["workload"] for point in results["throughput"]["points"]}
    assert workloads == {"echo", "client", "library", "naive"}
    assert all(point["errors"] == 0 and point["requests_per_s"] > 0
               for point in results["throughput"]["points"])
    goals = {row["goal"].split()[0] for row in results["ratios"]}
    assert goals == {"1", "2", "3", "4", "5", "6", "7"}
    for row in results["ratios"]:
        assert row["status"] in STATUSES and row["status"] not in ("PASS", "MISS")  # --quick is a smoke run
        assert row["status"] == "skip" or row["value"] > 0

    assert result.stdout.splitlines()[0].split()[:3] == ["goal", "measured", "ratio"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cold_start_results(rounds: int) -> dict:
    cold = {name: {"median_s": seconds} for name, seconds in (
        ("import grpc, numpy", 1.0), ("client.predict --help", 0.3), ("client.predict one row", 2.0))}
    return {"settings": {"rounds": rounds}, "cold_start": cold}


def test_a_one_round_smoke_run_judges_no_goal():
    from bench.run import ratios

    smoke = {row["name"]: row["status"] for row in ratios(_cold_start_results(rounds=1))}
    full = {row["name"]: row["status"] for row in ratios(_cold_start_results(rounds=5))}
    assert set(smoke.values()) == {"smoke: not judged"} and set(smoke) == set(full)
    assert full == {"client.predict --help": "PASS", "client.predict one row": "MISS"}
