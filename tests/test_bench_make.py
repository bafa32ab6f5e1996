"""``make bench``'s driver (``python -m bench.run --quick``): runs, and writes well-formed results.

Only the structure is checked; PASS or MISS depends on the machine, never on a test.
"""

from __future__ import annotations

import json

from bench.ratios import per_round, ratio_row
from tests.support.processes import REPO, run_module

STATUSES = {"not judged", "info", "skip"}  # a smoke run judges no goal


def test_bench_run_quick_writes_results_json_md_png_and_a_ratio_table(tmp_path):
    out, png = tmp_path / "results.json", tmp_path / "results.png"
    result = run_module("bench.run", "--quick", "--out", out, "--plot", png, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]

    results = json.loads(out.read_text())
    for section in (
        "throughput",
        "typed_fields",
        "cold_start",
        "peak_memory",
        "compact",
        "compact_embedded",
        "cli_end_to_end",
        "batching",
        "scaleout",
    ):
        assert section in results
    rounds = results["throughput"]["rounds"]
    assert len(rounds) == 2
    workloads = {key.split()[0] for key in rounds[0]}
    assert workloads == {"echo", "client", "library", "library-unchecked", "naive"}
    assert all(point["errors"] == 0 and point["requests_per_s"] > 0 for r in rounds for point in r.values())
    for key, point in rounds[0].items():  # goals 1 and 2: the echo runs in turns with each workload
        paired = key.split()[0] in ("client", "library", "library-unchecked", "naive")
        assert ("paired" in point) == paired, key
        assert not paired or (point["paired"]["workload"] == "echo" and point["paired"]["requests_per_s"] > 0)
    assert len(results["peak_memory"]["sizes"]) == 2
    cli_runs = results["cli_end_to_end"]["rounds"][0]  # goal 9: also the run users make, with -o
    assert cli_runs["typed fields serving_default written with -o"]["errors"] == 0, cli_runs
    assert cli_runs["typed fields serving_default written with -o"]["values_per_s"] > 0, cli_runs
    assert any(row["name"].endswith("mask written with -o") for row in results["ratios"])
    goals = {row["goal"].split()[0] for row in results["ratios"]}
    assert goals == {"1", "2", "3", "4", "5", "6", "7", "8", "9"}
    for row in results["ratios"]:
        assert row["status"] in STATUSES, row
        assert row["status"] == "skip" or row["min"] <= row["median"] <= row["max"]

    assert result.stdout.splitlines()[0].split()[:3] == ["goal", "measured", "median"]
    assert "SMOKE RUN (BENCH_QUICK=1): goals not judged" in result.stdout
    assert "SMOKE RUN" in out.with_suffix(".md").read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_round_with_failed_calls_makes_the_ratio_an_error_not_a_number():
    rounds = [
        {"a": {"requests_per_s": 10, "errors": 0}, "b": {"requests_per_s": 10, "errors": 0}},
        {"a": {"requests_per_s": 90, "errors": 3}, "b": {"requests_per_s": 10, "errors": 0}},
    ]
    row = ratio_row("1 vs gRPC echo", "a", per_round(rounds, "a", "b"), 0.8)
    assert row["status"] == "ERROR" and row["values"] == [1.0, None] and row["error_rounds"] == 1


def test_paired_sides_run_in_alternating_slices_and_count_their_own_calls():
    """bench.loadgen --paired-with: both sides in turns, first side switching each slice."""
    import itertools

    import grpc

    from bench.loadgen import PAIRED_SLICES, run_paired

    calls: list[str] = []

    class Refused(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

    def side_a():
        calls.append("a")

    def side_b():
        calls.append("b")
        if len(calls) % 7 == 0:
            raise Refused()

    a, b = run_paired(side_a, side_b, 1, duration=0.08, warmup=2)
    blocks = [key for key, _ in itertools.groupby(calls)]
    # warmup a, warmup b, then slices a b | b a | a b ...: a block per slice after merging neighbours
    assert blocks[:2] == ["a", "b"] and len(blocks) == 2 + PAIRED_SLICES + 1
    measured = calls[len(calls) - (a.requests + a.errors + b.requests + b.errors) :]
    assert a.requests == measured.count("a") and a.errors == 0
    assert b.requests + b.errors == measured.count("b") and b.errors > 0
    assert b.error_codes == {"UNAVAILABLE": b.errors}
    assert a.seconds > 0 and b.seconds > 0


def test_a_goal_is_judged_at_the_median_of_the_rounds():
    assert ratio_row("g", "n", [0.5, 0.85, 0.9], 0.8)["status"] == "PASS"
    assert ratio_row("g", "n", [0.95, 0.75, 0.7], 0.8)["status"] == "MISS"
    assert ratio_row("g", "n", [0.9, 0.9], 0.8, quick=True)["status"] == "not judged"


def test_readme_shows_the_table_bench_results_md_holds():
    """README's performance table is the one the last full `make bench` wrote, not a hand copy."""
    readme = (REPO / "README.md").read_text()
    shown = readme.split("<!-- bench-results:start -->\n", 1)[1].split("\n<!-- bench-results:end -->", 1)[0]
    assert shown.startswith("From `make bench") and "| goal | measured | median |" in shown
    assert shown in (REPO / "bench" / "results.md").read_text()


def test_goal_two_compares_each_side_through_its_own_echo():
    from bench.ratios import per_round_paired

    rounds = [
        {
            "lib": {"requests_per_s": 80, "errors": 0, "paired": {"requests_per_s": 100, "errors": 0}},
            "naive": {"requests_per_s": 30, "errors": 0, "paired": {"requests_per_s": 60, "errors": 0}},
        },
        {
            "lib": {"requests_per_s": 40, "errors": 0, "paired": {"requests_per_s": 50, "errors": 0}},
            "naive": {"requests_per_s": 30, "errors": 0, "paired": {"requests_per_s": 60, "errors": 2}},
        },
    ]
    assert per_round_paired(rounds, "lib") == [0.8, 0.8]
    assert per_round_paired(rounds, "lib", "naive") == [1.6, None]
