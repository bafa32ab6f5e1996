"""``make bench`` / ``python -m bench.run``: every number as a ratio against a reference run alongside.

Starts and stops its own servers on 127.0.0.1; each ratio is computed within each round and
reported as median with its min-max over rounds; a goal is PASS only when the median meets it,
and a comparison with any failed call is ERROR, not a number. Writes bench/results.json,
bench/results.md (the table README shows; a full run also replaces that table in README.md)
and bench/results.png. BENCH_QUICK=1 (or --quick) is a smoke run of about a minute that writes
bench/results-smoke.*: its goals are "not judged".
"""

from __future__ import annotations

import argparse
import contextlib
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

from bench import processes, report, scaleout, sections  # noqa: E402
from bench.ratios import ratios  # noqa: E402
from bench.sections import QUICK, Settings  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent
README = OUT_DIR.parent / "README.md"
SECTIONS = (
    "throughput",
    "typed_fields",
    "cold_start",
    "peak_memory",
    "compact",
    "cli_end_to_end",
    "batching",
    "scaleout",
)


def machine() -> dict:
    """Where the run happened, as results.md states it."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def run(settings: Settings, skip: set[str], log=print) -> dict:
    """Measure every section not in ``skip``; the results dict that results.json holds."""
    results: dict = {
        "settings": dataclasses.asdict(settings),
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        reference = stack.enter_context(
            processes.servers(
                {
                    "replay": sections.reference_server_spec(workdir),
                    "typed": sections.reference_server_spec(workdir, typed=True),
                    "compute": sections.reference_server_spec(workdir, compute=True),
                }
            )
        )
        if "throughput" not in skip:
            log("throughput: client vs echo vs naive (reference server, replayed answers)")
            results["throughput"] = sections.throughput(reference["replay"], settings, log=log)
        if "typed_fields" not in skip:
            log("typed-field answers (float_val / int_val) vs tensor_content (reference servers)")
            results["typed_fields"] = sections.typed_fields(
                {"tensor_content": reference["replay"], "typed": reference["typed"]}, settings, log=log
            )
        if "cold_start" not in skip:
            log("cold start: client.predict vs import grpc, numpy")
            results["cold_start"] = sections.cold_start(reference["compute"], settings, workdir)
        if "peak_memory" not in skip:
            sizes = " and ".join(f"{mib} MiB" for mib in settings.rss_mib)
            log(f"peak RSS: client.predict on {sizes} .npy files")
            results["peak_memory"] = sections.peak_memory(reference["compute"], settings, workdir, log=log)
        if "compact" not in skip:
            log("compact vs float32 answers (reference server: transport only)")
            results["compact"] = sections.compact(reference["replay"], settings, log=log)
            results["compact"]["server"] = "reference server: transport only"
        wanted = {"compact", "cli_end_to_end", "batching", "scaleout"} - skip
        if wanted and not sections.embedded_server_available():
            for name in wanted:
                results[name + ("_embedded" if name == "compact" else "")] = {
                    "skipped": "serving.local is not in this tree"
                }
        elif wanted:
            embedded = _start_embedded(stack, workdir, wanted, log)
            results["embedded_encodings"] = list(embedded["encodings"])
            if "compact" in wanted:
                log("compact vs float32 answers (embedded server: the real model)")
                results["compact_embedded"] = sections.compact(embedded["off"], settings, log=log)
                results["compact_embedded"]["server"] = f"embedded server, real model, {embedded['default']}"
            if "cli_end_to_end" in wanted:
                log("python -m client.predict end to end against the embedded server vs gRPC echo")
                path = workdir / f"rss-{settings.rss_mib[0]}.npy"
                if not path.exists():
                    sections.write_large_npy(path, settings.rss_mib[0])
                results["cli_end_to_end"] = sections.cli_end_to_end(
                    embedded["encodings"], reference["replay"], path, settings, log=log
                )
            if "batching" in wanted:
                log("embedded server: batching off vs on")
                results["batching"] = sections.batching(embedded, settings, log=log)
            if "scaleout" in wanted:
                log("scale-out: bulk run, 1 and 2 client processes against 1 and 2 embedded servers")
                twins = [embedded["off"], embedded["second"]]
                results["scaleout"] = scaleout.measure(twins, settings, workdir, log=log)
    results["ratios"] = ratios(results)
    return results


def _start_embedded(stack: contextlib.ExitStack, workdir: Path, wanted: set[str], log) -> dict:
    """The embedded servers the sections need, started together: name -> address, plus encodings.

    "off" is the server as ``python -m serving.local`` starts by default (no batching); "on" adds
    --enable-batching with serving/batching.config, as make serve passes them. Where the server
    can answer in either encoding, "off" answers as TF Serving does by default (typed fields) and
    another server adds the tensor_content flag;
    "second" is a twin of "off" for the scale-out section.
    """
    log("  starting embedded servers (exporting the model first)")
    sections.export_model(workdir)
    flag = sections.embedded_server_has_tensor_content_flag()
    specs = {"off": sections.embedded_server_spec(workdir, "default")}
    if "batching" in wanted:
        # as make serve runs it: the checkout's batching.config, the one TF Serving gets
        batching_config = Path(sections.__file__).resolve().parent.parent / "serving" / "batching.config"
        specs["on"] = sections.embedded_server_spec(
            workdir, "batching", "--enable-batching", "--batching-parameters-file", str(batching_config)
        )
    if "scaleout" in wanted:  # a twin of "off", for two-server runs
        specs["second"] = sections.embedded_server_spec(workdir, "second")
    if flag and "cli_end_to_end" in wanted:
        specs["tensor_content"] = sections.embedded_server_spec(
            workdir, "tensor-content", sections.TENSOR_CONTENT_FLAG
        )
    addresses = dict(stack.enter_context(processes.servers(specs)))
    if flag:
        addresses["default"] = "typed fields (TF Serving's default)"
        encodings = {"typed fields": addresses["off"]}
        if "tensor_content" in addresses:
            encodings["tensor_content"] = addresses["tensor_content"]
    else:
        addresses["default"] = "tensor_content (the server has no typed-field option)"
        encodings = {"tensor_content": addresses["off"]}
    addresses["encodings"] = encodings
    return addresses


def replace_readme_table(markdown: str, readme: Path = README) -> bool:
    """Put ``markdown`` between README's bench markers; False if README has no markers."""
    start, end = "<!-- bench-results:start -->", "<!-- bench-results:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    temporary = readme.with_name(readme.name + ".tmp")
    temporary.write_text(f"{head}{start}\n{markdown.rstrip()}\n{end}{tail}")
    temporary.replace(readme)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK") == "1",
        help="smoke run: 2 short rounds, small files, goals not judged (env BENCH_QUICK=1)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 5)")
    parser.add_argument("--duration", type=float, help="seconds per load point (default 1.0)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: " + ", ".join(SECTIONS))
    parser.add_argument(
        "--out",
        type=Path,
        help="results JSON path (default bench/results.json, bench/results-smoke.json for --quick)",
    )
    parser.add_argument("--plot", type=Path, help="results PNG path (default beside --out)")
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="do not copy the table into README.md (a full run with the default --out does)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    overrides = {k: v for k, v in (("rounds", args.rounds), ("duration", args.duration)) if v}
    settings = dataclasses.replace(settings, **overrides)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(SECTIONS):
        parser.error(
            f"--skip: unknown section(s) {', '.join(sorted(skip - set(SECTIONS)))}; "
            f"choose from {', '.join(SECTIONS)}"
        )
    out = args.out or OUT_DIR / ("results-smoke.json" if settings.quick else "results.json")
    started = time.perf_counter()
    results = run(settings, skip, log=lambda text: print(text, file=sys.stderr, flush=True))
    results["seconds"] = round(time.perf_counter() - started, 1)
    markdown = report.results_markdown(results)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(out)
    out.with_suffix(".md").write_text(markdown)
    print(report.ratio_table(results))
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    full = not settings.quick and args.out is None and not args.no_readme and not skip
    if full and replace_readme_table(report.ratio_table(results, markdown=True, heading=True)):
        print(f"updated the table in {README}")
    try:
        print(f"wrote {report.plot(results, args.plot or out.with_suffix('.png'))}")
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
