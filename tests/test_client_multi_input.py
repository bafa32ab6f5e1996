"""Bulk runs: several inputs (files, a directory, a glob) with one output each, shards, resume, workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from client.inputs import InputJob, InputListError, Shard, parse_shard, shard_from_env
from tests.support.processes import PYTHON, REPO, cli_env, run_module

LOW, HIGH = np.float32(-0.1), np.float32(0.1)  # the fake TF Serving's bounds


def mask_of(array) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return ((array < LOW) | (array > HIGH)).astype(np.float32)


def make_inputs(directory, count: int, rows: int = 50, cols: int = 8) -> dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for index in range(count):
        array = np.random.default_rng(index).normal(0, 0.2, (rows + index, cols)).astype(np.float32)
        np.save(directory / f"part-{index:02d}.npy", array)
        arrays[f"part-{index:02d}"] = array
    return arrays


def predict(server, *args, env=None):
    return run_module(
        "client.predict", *args, "--server", server.address, "--retries", "0", timeout=120, env=env
    )


def predict_json(server, *args, env=None) -> tuple[int, dict, str]:
    result = predict(server, *args, "--json", env=env)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def assert_outputs_exact(out_dir, arrays) -> None:
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(f"{name}.npy" for name in arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(np.load(out_dir / f"{name}.npy"), mask_of(array))


def test_a_directory_goes_in_and_one_output_per_input_comes_out(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 3)
    np.savez(tmp_path / "in" / "packed.npz", x=np.array([0.04, -0.8, 1.3], np.float32))
    arrays["packed"] = np.array([0.04, -0.8, 1.3], np.float32)
    (tmp_path / "in" / "notes.txt").write_text("not an input")
    (tmp_path / "in" / ".part-09.npy.partial-1").write_bytes(b"left by a killed run")
    server = fake_server()
    code, summary, stderr = predict_json(server, tmp_path / "in", "-o", tmp_path / "out", "--key", "x")
    assert code == 0, stderr
    assert_outputs_exact(tmp_path / "out", arrays)
    assert summary["written"] == 4 and summary["failed"] == summary["skipped"] == 0
    assert [r["status"] for r in summary["results"]] == ["written"] * 4
    listed = {line.split()[1] for line in stderr.splitlines() if line.split()[:1] == ["written"]}
    assert listed == {str(path) for path in (tmp_path / "in").glob("*.np[yz]")}, stderr  # every input


def test_files_and_globs_are_expanded_by_the_client_once_each(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 4)
    server = fake_server()
    # The pattern is not expanded by a shell here (as in a Kubernetes Job's args): the client does it.
    code, summary, stderr = predict_json(
        server,
        str(tmp_path / "in" / "part-0[01].npy"),
        tmp_path / "in" / "part-01.npy",
        tmp_path / "in" / "part-03.npy",
        "-o",
        tmp_path / "out",
    )
    assert code == 0, stderr
    assert summary["inputs"] == 3
    assert_outputs_exact(tmp_path / "out", {name: arrays[name] for name in ("part-00", "part-01", "part-03")})


def test_a_bad_input_fails_alone_with_its_exit_code_and_no_partial_output(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4\n")
    server = fake_server()
    code, summary, stderr = predict_json(server, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 4  # client.errors.InputFormatError, as for the same file alone
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(tmp_path / "in" / "broken.npy") in errors[0] and "corrupt" in errors[0]
    assert_outputs_exact(tmp_path / "out", arrays)  # nothing for broken.npy, no temp file either
    statuses = {r["source"].rsplit("/", 1)[-1]: (r["status"], r["exit_code"]) for r in summary["results"]}
    assert statuses == {
        "broken.npy": ("failed", 4),
        "part-00.npy": ("written", 0),
        "part-01.npy": ("written", 0),
    }
    assert any(line.split()[0] == "failed" and "exit 4" in line for line in stderr.splitlines()), stderr


def test_a_lost_server_stops_the_run_and_lists_what_did_not_run(tmp_path):
    make_inputs(tmp_path / "in", 3)
    result = run_module(
        "client.predict",
        tmp_path / "in",
        "-o",
        tmp_path / "out",
        "--server",
        "127.0.0.1:1",
        "--retries",
        "0",
        "--json",
        timeout=120,
    )
    assert result.returncode == 6, result.stderr
    summary = json.loads(result.stdout)
    assert [r["status"] for r in summary["results"]] == ["failed", "not run", "not run"]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_split_any_list_without_overlap_or_gap(count):
    jobs = [InputJob(f"in/{index}.npy", f"out/{index}.npy") for index in range(11)]
    picked = [job for index in range(count) for job in Shard(index, count).select(jobs)]
    assert sorted(picked, key=jobs.index) == jobs and len(picked) == len(jobs)


def test_three_workers_share_the_inputs_and_each_writes_only_its_own(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 7)
    server = fake_server()
    taken = []
    for index in range(3):
        code, summary, stderr = predict_json(
            server, tmp_path / "in", "-o", tmp_path / "out", "--shard", f"{index}/3"
        )
        assert code == 0, stderr
        assert summary["shard"] == f"{index}/3" and summary["all_inputs"] == 7
        taken.append({r["source"] for r in summary["results"] if r["status"] == "written"})
    assert [len(names) for names in taken] == [3, 2, 2]
    assert set.union(*taken) == {str(tmp_path / "in" / f"{name}.npy") for name in arrays}
    assert_outputs_exact(tmp_path / "out", arrays)


def test_an_indexed_job_worker_takes_its_shard_from_the_environment(fake_server, tmp_path):
    make_inputs(tmp_path / "in", 5)
    server = fake_server()
    by_flag = predict_json(server, tmp_path / "in", "-o", tmp_path / "a", "--shard", "1/2")[1]
    env = cli_env(JOB_COMPLETION_INDEX="1", THRESHOLD_SHARD_COUNT="2")
    code, by_env, stderr = predict_json(server, tmp_path / "in", "-o", tmp_path / "b", env=env)
    assert code == 0, stderr
    assert by_env["shard"] == "1/2"
    assert [r["source"] for r in by_env["results"]] == [r["source"] for r in by_flag["results"]]
    assert shard_from_env({"JOB_COMPLETION_INDEX": "3", "THRESHOLD_SHARD_COUNT": "4"}) == Shard(3, 4)
    assert shard_from_env({"THRESHOLD_SHARD": "0/2", "JOB_COMPLETION_INDEX": "5"}) == Shard(0, 2)
    assert shard_from_env({"JOB_COMPLETION_INDEX": "5"}) is None  # a count is needed to split
    with pytest.raises(InputListError):
        shard_from_env({"THRESHOLD_SHARD_COUNT": "4"})


def test_a_restarted_worker_skips_inputs_whose_output_is_complete(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 4)
    server = fake_server()
    assert predict_json(server, tmp_path / "in", "-o", tmp_path / "out")[0] == 0
    served = server.predicts
    kept = (tmp_path / "out" / "part-02.npy").stat().st_mtime_ns
    (tmp_path / "out" / "part-01.npy").unlink()  # as if the worker died before writing it
    code, summary, stderr = predict_json(server, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0, stderr
    assert [r["status"] for r in summary["results"]] == ["skipped", "written", "skipped", "skipped"]
    assert server.predicts == served + 2  # bounds + part-01's one batch; nothing else sent again
    assert (tmp_path / "out" / "part-02.npy").stat().st_mtime_ns == kept
    assert_outputs_exact(tmp_path / "out", arrays)


def test_workers_run_as_separate_clients(fake_server, tmp_path):
    arrays = make_inputs(tmp_path / "in", 6)
    server = fake_server()
    code, summary, stderr = predict_json(server, tmp_path / "in", "-o", tmp_path / "out", "--workers", "2")
    assert code == 0, stderr
    assert summary["written"] == 6
    assert server.metadata_calls == 2  # each worker process learned the model over its own channel
    assert_outputs_exact(tmp_path / "out", arrays)


@pytest.mark.parametrize(
    ("make_args", "code", "fragment"),
    [
        (lambda d: [d / "in" / "part-00.npy", d / "in" / "part-01.npy"], 2, "several inputs need -o DIR"),
        (lambda d: [d / "in", "-o", d / "in" / "part-00.npy"], 2, "is a file"),
        (lambda d: [d / "in", "-o", d / "out", "--shard", "2/2"], 2, "0 <= K < N"),
        (lambda d: [d / "in", "-o", d / "out", "--shard", "half"], 2, "K/N"),
        (lambda d: [str(d / "in" / "*.npz"), "-o", d / "out"], 3, "no .npy or .npz files match"),
        (lambda d: [d / "in", d / "again", "-o", d / "out"], 2, "would both write"),
        (lambda d: [d / "in", "-o", d / "in"], 2, "would overwrite the input"),
        (lambda d: [d / "in"], 3, "is a directory"),
    ],
)
def test_inputs_that_cannot_make_a_run_are_one_line_before_anything_runs(tmp_path, make_args, code, fragment):
    make_inputs(tmp_path / "in", 2)
    make_inputs(tmp_path / "again", 1)
    result = run_module("client.predict", *make_args(tmp_path), "--server", "127.0.0.1:1", timeout=60)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_shard_text_is_checked():
    assert parse_shard("0/1") == Shard(0, 1) and str(parse_shard(" 3/4 ")) == "3/4"
    for bad in ("1", "4/4", "-1/4", "1/0", "a/b"):
        with pytest.raises(InputListError):
            parse_shard(bad)


def test_run_jobs_in_worker_processes_from_a_program_that_already_uses_grpc(fake_server, tmp_path):
    """This process has gRPC loaded, so the workers are spawned, not forked (client.workers)."""
    from client.inputs import expand_inputs
    from client.workers import run_jobs

    arrays = make_inputs(tmp_path / "in", 3)
    server = fake_server()
    seen = []
    bulk = run_jobs(
        expand_inputs([str(tmp_path / "in")], tmp_path / "out"),
        {"address": server.address},
        {"concurrency": 2},
        workers=2,
        on_result=seen.append,
    )
    assert bulk.exit_code == 0 and [r.status for r in bulk.results] == ["written"] * 3
    assert sorted(r.source for r in seen) == [r.source for r in bulk.results]
    assert server.metadata_calls == 2
    assert_outputs_exact(tmp_path / "out", arrays)


@pytest.mark.parametrize(
    ("signal_name", "to_group", "workers"),
    [("SIGINT", True, 2), ("SIGTERM", False, 2), ("SIGTERM", True, 2), ("SIGTERM", False, 1)],
)
def test_an_interrupted_bulk_run_leaves_only_complete_outputs(
    fake_server, tmp_path, signal_name, to_group, workers
):
    """Ctrl-C (SIGINT to the process group), or SIGTERM (what Kubernetes sends a deleted pod)."""
    arrays = make_inputs(tmp_path / "in", 6, rows=400)
    server = fake_server(delay=lambda index, x: 0.01)
    command = [
        PYTHON,
        "-m",
        "client.predict",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--server",
        server.address,
        "--workers",
        str(workers),
        "--batch-size",
        "10",
        "--concurrency",
        "1",
        "--json",
    ]
    run = subprocess.Popen(
        command,
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        while server.predicts < 10 and run.poll() is None:
            time.sleep(0.01)
        sig = getattr(signal, signal_name)
        os.killpg(run.pid, sig) if to_group else os.kill(run.pid, sig)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == {"SIGINT": 130, "SIGTERM": 143}[signal_name], stderr  # as for one input
    assert "Traceback" not in stderr and f"({signal_name})" in stderr
    summary = json.loads(stdout)
    written = {r["output"] for r in summary["results"] if r["status"] == "written"}
    assert summary["not_run"] >= 1 and summary["not_run"] + len(written) == 6
    assert {str(path) for path in (tmp_path / "out").iterdir()} == written  # no temp files left
    assert_outputs_exact(tmp_path / "out", {Path(name).stem: arrays[Path(name).stem] for name in written})
