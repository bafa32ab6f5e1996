"""The command-line programs run numpy's OpenBLAS with one thread (its idle threads spin on the CPU).

See ``client/blas.py``. The first test shows the setting does what it says (fewer threads once
numpy loads); the second that ``client.predict`` makes it before numpy loads.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.support.models import REFERENCE_INPUT
from tests.support.processes import REPO, cli_env

THREADS_AFTER_NUMPY = """
import os, sys
if sys.argv[1] == "one":
    from client import blas
    assert blas.one_blas_thread()
import numpy
print(len(os.listdir("/proc/self/task")))
"""


def threads(mode: str) -> int:
    env = cli_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    result = subprocess.run(
        [sys.executable, "-c", THREADS_AFTER_NUMPY, mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
    reason="counts threads in /proc; OpenBLAS starts extra threads only with 2+ cores",
)
def test_one_blas_thread_means_numpy_starts_no_extra_threads():
    assert threads("one") == 1
    assert threads("default") > 1


def test_an_explicit_setting_wins(monkeypatch):
    from client import blas

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    blas.one_blas_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


PREDICT_THEN_REPORT = """
import os, sys
from client import predict
assert "numpy" not in sys.modules
code = predict.main(sys.argv[1:])
print(code, os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def test_client_predict_asks_for_one_blas_thread_before_numpy_loads(fake_server, tmp_path):
    server = fake_server()
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT, np.float32))
    env = cli_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    result = subprocess.run(
        [sys.executable, "-c", PREDICT_THEN_REPORT, str(tmp_path / "ref.npy"), "--server", server.address],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 1"
