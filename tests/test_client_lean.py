"""The client stays lean: no TensorFlow at run time, and `--help` without grpc or numpy."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import PYTHON, REFERENCE_INPUT, REFERENCE_MASK, REPO, cli_env, run_module

FULL_RUN = f"""
import sys, tempfile, numpy as np
from client import ThresholdClient
with tempfile.TemporaryDirectory() as directory:
    np.save(directory + "/x.npy", np.array({REFERENCE_INPUT}))
    with ThresholdClient(sys.argv[1]) as client:
        summary = client.predict_file(directory + "/x.npy", output=directory + "/m.npy", compact=True)
        assert client.predict(np.array({REFERENCE_INPUT})).tolist() == {REFERENCE_MASK}
        assert np.load(directory + "/m.npy").tolist() == {REFERENCE_MASK}
loaded = sorted(name for name in sys.modules if name == "tensorflow" or name.startswith("tensorflow."))
assert "tensorflow.python" not in sys.modules and "tensorflow" not in sys.modules, loaded
print("protos only:", ", ".join(loaded))
"""


def test_full_predict_run_never_imports_tensorflow(fake_server):
    server = fake_server()
    result = subprocess.run([PYTHON, "-c", FULL_RUN, server.address], cwd=REPO, env=cli_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "tensorflow.core.framework.tensor_pb2" in result.stdout


def test_help_is_fast_and_documents_exit_codes():
    started = time.monotonic()
    result = run_module("client.predict", "--help", timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "server unreachable" in result.stdout
    assert elapsed < 2.0, f"--help took {elapsed:.2f} s"


def test_help_imports_neither_grpc_nor_numpy():
    code = ("import sys, runpy\n"
            "sys.argv = ['client.predict', '--help']\n"
            "try:\n"
            "    runpy.run_module('client.predict', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in ('grpc', 'numpy', 'tqdm') if m in sys.modules))")
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                            timeout=30)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
