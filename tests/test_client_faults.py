"""Faults a hostile tester found in the CLI: each is one line with its documented exit code, and no run
loses or overwrites data it should not."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import threading
import time
import zipfile

import numpy as np
import pytest

from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import PYTHON, REPO, cli_env, one_line_error, run_module

NOWHERE = "127.0.0.1:1"  # nothing listens: reaching the server would be exit 6, not the input's code


def predict_cli(*args, server=NOWHERE, timeout=60):
    return run_module("client.predict", *args, "--server", server, "--retries", "0", timeout=timeout)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.array(REFERENCE_INPUT, np.float32))
    return path


# -- the output must never replace the input ----------------------------------------------------


@pytest.mark.parametrize("link", ["same path", "symlink", "hard link"])
def test_output_naming_the_input_file_is_refused(fake_server, data_file, tmp_path, link):
    server = fake_server()
    output = {"same path": data_file, "symlink": tmp_path / "alias.npy", "hard link": tmp_path / "hard.npy"}[
        link
    ]
    if link == "symlink":
        output.symlink_to(data_file)
    elif link == "hard link":
        os.link(data_file, output)
    before = data_file.read_bytes()
    result = predict_cli(data_file, "-o", output, server=server.address)
    one_line_error(result, 11, "is the input file")
    assert data_file.read_bytes() == before
    assert server.predicts == 0  # refused before any work
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


# -- partial files of killed runs ---------------------------------------------------------------


def test_stale_partials_of_dead_processes_are_removed_and_live_ones_kept(fake_server, data_file, tmp_path):
    server = fake_server()
    dead = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".mask.npy.partial-{dead_pid}"
    live = tmp_path / f".mask.npy.partial-{os.getpid()}"  # this test process: alive
    other = tmp_path / f".other.npy.partial-{dead_pid}"  # another output's: not ours to judge
    for path in (stale, live, other):
        path.write_bytes(b"x" * 1000)
    result = predict_cli(data_file, "-o", tmp_path / "mask.npy", server=server.address)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and live.exists() and other.exists()
    assert np.load(tmp_path / "mask.npy").tolist() == REFERENCE_MASK


@pytest.mark.parametrize(
    ("signum", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_signal_mid_run_removes_the_partial_output_and_exits_with_its_code(
    fake_server, tmp_path, signum, code, word, concurrency
):
    server = fake_server(delay=lambda index, x: 0.2 if index else 0.0)
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).normal(size=(400, 50)).astype(np.float32))
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "client.predict",
            data,
            "--server",
            server.address,
            "--batch-size",
            "5",
            "--concurrency",
            concurrency,
            "-o",
            tmp_path / "mask.npy",
        ],
        cwd=REPO,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while server.predicts < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p for p in tmp_path.iterdir() if ".partial-" in p.name]  # mid-run: the partial exists
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and word in stderr and len(stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]


# -- input files --------------------------------------------------------------------------------


def test_a_valid_npy_of_format_3_is_read(fake_server, tmp_path):
    server = fake_server()
    path = tmp_path / "v3.npy"
    with open(path, "wb") as out:
        np.lib.format.write_array(out, np.array([REFERENCE_INPUT], np.float32), version=(3, 0))
    result = predict_cli(path, "-o", tmp_path / "mask.npy", server=server.address)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "mask.npy").tolist() == [REFERENCE_MASK]


def test_an_npz_with_a_corrupt_compressed_stream_is_a_format_error(fake_server, tmp_path):
    server = fake_server()
    path = tmp_path / "bad.npz"
    np.savez_compressed(path, x=(np.arange(2000 * 64) % 7).astype(np.float32).reshape(2000, 64))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo("x.npy").header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    stream = local + 30 + name_length + extra_length
    data[stream] = 0xFF  # the first deflate block's type: 3, reserved ("invalid block type")
    path.write_bytes(bytes(data))
    result = predict_cli(path, "-o", tmp_path / "mask.npy", "--batch-size", "100", server=server.address)
    one_line_error(result, 4, "bad.npz[x]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_a_header_with_a_negative_dimension_is_a_format_error_and_leaves_nothing(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros((2, 3), np.float32), version=(1, 0))
    header = buffer.getvalue()
    assert b"(2, 3), }" in header
    path = tmp_path / "negative.npy"
    path.write_bytes(header.replace(b"(2, 3), }", b"(-2, 3),}"))
    result = predict_cli(path, "-o", tmp_path / "mask.npy")
    one_line_error(result, 4, "negative dimension")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["negative.npy"]


def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    result = predict_cli(fifo, timeout=60)  # a hang would be a TimeoutExpired here
    one_line_error(result, 3, "FIFO")


# -- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_a_non_finite_timeout_is_refused_with_one_line(data_file, value):
    result = predict_cli(data_file, f"--timeout={value}")
    assert result.returncode == 2, result.stderr
    assert "finite" in result.stderr and "Traceback" not in result.stderr


def test_the_help_says_timeouts_are_finite():
    assert "finite" in " ".join(run_module("client.predict", "--help").stdout.split())


def test_a_library_client_refuses_an_infinite_timeout():
    from client import ThresholdClient

    with pytest.raises(ValueError, match="finite"):
        ThresholdClient(NOWHERE, timeout=float("inf"))


def test_main_restores_the_sigterm_handler_and_runs_from_a_thread(data_file):
    """main() owns SIGTERM only for its run, and only on the main thread (for programs calling it)."""
    from client.predict import main

    args = [str(data_file), "--server", NOWHERE, "--retries", "0", "--timeout", "2"]
    before = signal.getsignal(signal.SIGTERM)
    assert main(args) == 6
    assert signal.getsignal(signal.SIGTERM) is before
    codes = []
    thread = threading.Thread(target=lambda: codes.append(main(args)))
    thread.start()
    thread.join(60)
    assert codes == [6]


# -- hot reloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_hot_reload_mid_run_goes_on_with_the_new_version_and_says_which_rows(
    fake_server, tmp_path, concurrency
):
    """Version 1 is unloaded after a few batches; version 2 (other bounds) answers the rest."""
    server = fake_server(reload_after=4, reload_to=(2, -0.2, 0.2))
    x = np.random.default_rng(5).normal(scale=0.3, size=(400, 50)).astype(np.float32)
    np.save(tmp_path / "data.npy", x)
    result = run_module(
        "client.predict",
        tmp_path / "data.npy",
        "-o",
        tmp_path / "mask.npy",
        "--json",
        "--server",
        server.address,
        "--batch-size",
        "50",
        "--concurrency",
        concurrency,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["check"]["checked"] == x.size and summary["version"] == 1
    assert "version 1 was unloaded mid-run" in summary["version_note"]
    assert "note: version 1 was unloaded mid-run" in result.stderr
    versions = {entry["version"]: entry for entry in summary["versions"]}
    assert set(versions) == {1, 2}
    assert (versions[1]["low"], versions[2]["low"]) == (pytest.approx(-0.1), pytest.approx(-0.2))
    mask = np.load(tmp_path / "mask.npy")
    for version, low, high in ((1, -0.1, 0.1), (2, -0.2, 0.2)):
        for span in versions[version]["rows"].split(", "):
            start, end = (int(part) for part in span.split("-"))
            rows = slice(start, end + 1)
            assert np.array_equal(mask[rows], (x[rows] < np.float32(low)) | (x[rows] > np.float32(high)))
    covered = sum(
        int(b) - int(a) + 1
        for v in versions.values()
        for a, b in (span.split("-") for span in v["rows"].split(", "))
    )
    assert covered == len(x)


def test_a_version_asked_for_by_number_is_not_replaced_by_a_reload(fake_server, tmp_path):
    server = fake_server(reload_after=4, reload_to=(2, -0.2, 0.2))
    np.save(tmp_path / "data.npy", np.zeros((400, 50), np.float32))
    result = predict_cli(
        tmp_path / "data.npy",
        "-o",
        tmp_path / "mask.npy",
        "--batch-size",
        "50",
        "--version",
        "1",
        server=server.address,
    )
    one_line_error(result, 7, "version 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]
