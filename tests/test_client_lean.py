"""The client stays lean: no TensorFlow at run time, no tqdm in pipes, `--help` without grpc or numpy.

How fast that makes it is measured by `make bench` (cold start), not asserted here.
"""

from __future__ import annotations

import subprocess

from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import PYTHON, REPO, cli_env, run_module

FULL_RUN = f"""
import sys, tempfile, numpy as np
from client import ThresholdClient
with tempfile.TemporaryDirectory() as directory:
    np.save(directory + "/x.npy", np.array({REFERENCE_INPUT}))
    with ThresholdClient(sys.argv[1]) as client:
        summary = client.predict_file(directory + "/x.npy", output=directory + "/m.npy", compact=True)
        assert client.predict(np.array({REFERENCE_INPUT})).tolist() == {REFERENCE_MASK}
        assert np.load(directory + "/m.npy").tolist() == {REFERENCE_MASK}
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "tensorflow_serving"))
assert not loaded, loaded
print("no tensorflow modules")
"""


def test_full_predict_run_never_imports_tensorflow(fake_server):
    server = fake_server()
    result = subprocess.run(
        [PYTHON, "-c", FULL_RUN, server.address],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "no tensorflow modules" in result.stdout


def test_help_documents_exit_codes():
    result = run_module("client.predict", "--help", timeout=30)
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "server unreachable" in result.stdout


def test_help_imports_neither_grpc_nor_numpy():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['client.predict', '--help']\n"
        "try:\n"
        "    runpy.run_module('client.predict', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('grpc', 'numpy', 'tqdm') if m in sys.modules))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


PIPED_RUN = """
import runpy, sys
sys.argv = ["client.predict"] + sys.argv[1:]
try:
    runpy.run_module("client.predict", run_name="__main__")
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("tqdm" in sys.modules)
"""


def test_a_run_in_a_pipe_never_imports_tqdm(fake_server, tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.array(REFERENCE_INPUT, np.float32))
    server = fake_server()
    result = subprocess.run(
        [PYTHON, "-c", PIPED_RUN, str(tmp_path / "x.npy"), "--server", server.address],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


def test_a_long_run_on_a_terminal_shows_a_progress_bar(fake_server, tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import termios

    import numpy as np

    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    server = fake_server(delay=lambda index, x: 0.1)  # 40 one-row requests: about 4 s
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    try:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "client.predict",
                str(tmp_path / "x.npy"),
                "--server",
                server.address,
                "--batch-size",
                "1",
                "--concurrency",
                "1",
            ],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
        )
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closes when the client exits
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=60) == 0, seen.decode(errors="replace")
    finally:
        os.close(controller)
    text = seen.decode(errors="replace")
    assert "value/s" in text and "40 rows x 8 = 320 values" in text, text
