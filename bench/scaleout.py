"""Scale-out: a bulk run's throughput with 1 and 2 client processes against 1 and 2 embedded servers.

One measurement is ``python -m client.predict DIR -o OUT --workers W --server TARGET`` on a
directory of .npy files, timed from start to exit (start-up and worker spawn included: what a
user waits for), fresh outputs every time. TARGET is one embedded server, or an ``ipv4:`` list
of two (round_robin). Both servers run throughout, so the four configurations differ only in
how many client processes and servers do the work; rounds rotate their order. Every ratio is
against 1 worker, 1 server in the same run. Clients and servers share this machine's cores,
so the ratios say how far the work spreads over the cores there are, not how a cluster scales.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from bench import processes

CONFIGS = ((1, 1), (2, 1), (1, 2), (2, 2))  # (client worker processes, embedded servers)
GOAL = "7 scale-out: bulk values/s vs 1 worker, 1 server"


def _files(settings) -> tuple[int, int, int]:
    """(files, rows, cols) of the dataset: 64 MiB, or 2 MiB for a one-round (BENCH_QUICK) run."""
    quick = settings.rounds == 1
    return (4, 512, 256) if quick else (16, 4096, 256)


def _write_dataset(directory: Path, files: int, rows: int, cols: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(files):
        np.save(directory / f"part-{index:03d}.npy", rng.normal(0, 0.2, (rows, cols)).astype(np.float32))
    return files * rows * cols


def _models(workdir: Path) -> Path:
    """The exported model under workdir/models (exported once per bench run, shared with other sections)."""
    models = workdir / "models"
    if not (models / "threshold").is_dir():
        command = [processes.PYTHON, "-m", "export", "--model-dir", str(models), "--no-tflite"]
        exported = subprocess.run(command, cwd=processes.REPO, env=processes.env(), capture_output=True,
                                  text=True, timeout=300)
        if exported.returncode != 0:
            raise RuntimeError(f"export failed:\n{exported.stderr[-2000:]}")
    return models


def _server(workdir: Path, name: str):
    port = processes.free_port()
    args = ["-m", "serving.local", "--host", "127.0.0.1", "--port", str(port), "--rest-port", "0",
            "--model-base-path", str(_models(workdir) / "threshold")]
    return processes.server(args, "serving.local: listening on", address=f"127.0.0.1:{port}",
                            log=workdir / f"serving-{name}.log")


def _bulk_run(inputs: Path, outputs: Path, target: str, workers: int) -> float:
    """Wall seconds of one bulk run; its JSON must say every input was written."""
    shutil.rmtree(outputs, ignore_errors=True)
    command = [processes.PYTHON, "-m", "client.predict", str(inputs), "-o", str(outputs), "--server", target,
               "--workers", str(workers), "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=processes.REPO, env=processes.env(), capture_output=True, text=True,
                            timeout=600)
    seconds = time.perf_counter() - started
    summary = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    if result.returncode != 0 or not summary.get("ok"):
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds


def measure(settings, workdir: Path, log=print) -> dict:
    """values/s of a bulk run for each (workers, servers) in CONFIGS, median of settings.rounds."""
    files, rows, cols = _files(settings)
    inputs = workdir / "scaleout-in"
    values = _write_dataset(inputs, files, rows, cols)
    seconds: dict[tuple[int, int], list[float]] = {config: [] for config in CONFIGS}
    with contextlib.ExitStack() as stack:
        addresses = [stack.enter_context(_server(workdir, f"scaleout-{index}")) for index in range(2)]
        targets = {1: addresses[0], 2: "ipv4:" + ",".join(addresses)}
        _bulk_run(inputs, workdir / "scaleout-out", targets[2], 2)  # warm both servers and the page cache
        rounds = max(settings.rounds, 1)
        for round_index in range(rounds):
            order = CONFIGS[round_index % len(CONFIGS):] + CONFIGS[:round_index % len(CONFIGS)]
            for workers, servers in order:
                log(f"  round {round_index + 1}/{rounds}: {workers} worker(s), {servers} server(s)")
                seconds[(workers, servers)].append(
                    _bulk_run(inputs, workdir / "scaleout-out", targets[servers], workers))
    shutil.rmtree(workdir / "scaleout-out", ignore_errors=True)
    shutil.rmtree(inputs, ignore_errors=True)
    return {"files": files, "rows": rows, "cols": cols, "values": values,
            "points": [{"workers": workers, "servers": servers,
                        "values_per_second": values / statistics.median(times),
                        "seconds_each_round": times}
                       for (workers, servers), times in seconds.items()]}


def ratio_rows(section: dict | None) -> list[dict]:
    """The section's ratios in bench.run's row format (information: no goal on a shared 2-core box)."""
    if not section:
        return []
    rate = {(p["workers"], p["servers"]): p["values_per_second"] for p in section["points"]}
    shape = f"{section['files']} files of {section['rows']}x{section['cols']}"
    note = f"{shape}; clients and servers share the cores"
    rows = []
    for workers, servers in CONFIGS[1:]:
        name = f"{workers} worker{'s' * (workers > 1)}, {servers} server{'s' * (servers > 1)}"
        rows.append({"goal": GOAL, "name": name, "value": rate[(workers, servers)] / rate[(1, 1)],
                     "status": "info", "note": note, "target": None})
    return rows
