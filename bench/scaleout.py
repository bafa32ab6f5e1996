"""Scale-out: a bulk run's throughput with 1 and 2 client processes against 1 and 2 embedded servers.

One measurement is ``python -m client.predict DIR -o OUT --workers W --server TARGET`` on a
directory of .npy files, timed from start to exit (start-up and worker spawn included: what a
user waits for), fresh outputs every time. TARGET is one embedded server, or an ``ipv4:`` list
of two (round_robin). Both servers run throughout, so the four configurations differ only in
how many client processes and servers do the work; rounds rotate their order. Every ratio is
against 1 worker, 1 server in the same run. Clients and servers share this machine's cores,
so the ratios say how far the work spreads over the cores there are, not how a cluster scales.
A failed bulk run is counted as an error (the ratio is then ERROR), never timed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from bench import processes

CONFIGS = ((1, 1), (2, 1), (1, 2), (2, 2))  # (client worker processes, embedded servers)
GOAL = "7 scale-out: bulk values/s vs 1 worker, 1 server"


def _files(settings) -> tuple[int, int, int]:
    """(files, rows, cols) of the dataset: 64 MiB, or 2 MiB for the smoke run."""
    return (4, 512, 256) if settings.quick else (16, 4096, 256)


def _write_dataset(directory: Path, files: int, rows: int, cols: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(files):
        np.save(directory / f"part-{index:03d}.npy", rng.normal(0, 0.2, (rows, cols)).astype(np.float32))
    return files * rows * cols


def point_name(workers: int, servers: int) -> str:
    return f"{workers}x{servers}"


def _bulk_run(inputs: Path, outputs: Path, target: str, workers: int, log=print) -> float | None:
    """Wall seconds of one bulk run, or None if it failed (its JSON must say every input was written)."""
    shutil.rmtree(outputs, ignore_errors=True)
    command = [
        processes.PYTHON,
        "-m",
        "client.predict",
        str(inputs),
        "-o",
        str(outputs),
        "--server",
        target,
        "--workers",
        str(workers),
        "--json",
    ]
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=processes.REPO, env=processes.env(), capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - started
    summary = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    if result.returncode != 0 or not summary.get("ok"):
        log(f"  bulk run failed ({result.returncode}): {result.stderr.strip()[-300:]}")
        return None
    return seconds


def measure(addresses: list[str], settings, workdir: Path, log=print) -> dict:
    """values/s of a bulk run for each (workers, servers) in CONFIGS, every round kept, order rotated.

    ``addresses``: two embedded servers, running throughout.
    """
    files, rows, cols = _files(settings)
    inputs = workdir / "scaleout-in"
    values = _write_dataset(inputs, files, rows, cols)
    targets = {1: addresses[0], 2: "ipv4:" + ",".join(addresses)}
    _bulk_run(inputs, workdir / "scaleout-out", targets[2], 2, log)  # warm both servers and the page cache
    rounds = []
    for round_index in range(settings.info_rounds):
        measured = {}
        for workers, servers in CONFIGS[round_index % len(CONFIGS) :] + CONFIGS[: round_index % len(CONFIGS)]:
            log(f"  round {round_index + 1}/{settings.info_rounds}: {workers} worker(s), {servers} server(s)")
            seconds = _bulk_run(inputs, workdir / "scaleout-out", targets[servers], workers, log)
            measured[point_name(workers, servers)] = {
                "values_per_s": values / seconds if seconds else 0.0,
                "seconds": seconds,
                "errors": 0 if seconds else 1,
            }
        rounds.append(measured)
    shutil.rmtree(workdir / "scaleout-out", ignore_errors=True)
    shutil.rmtree(inputs, ignore_errors=True)
    return {"files": files, "rows": rows, "cols": cols, "values": values, "rounds": rounds}
