"""The command-line programs let glibc reuse freed multi-MiB buffers instead of faulting in fresh pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import REPO, cli_env

# Four worker threads in turn (as the client's --concurrency workers and gRPC's threads) each make 50
# rounds of what one request costs in memory: a 4 MiB block read from the file, its request bytes,
# an answer; then free them. Prints the minor page faults that took: with glibc's defaults each
# buffer is fresh pages every time (a thread's arena trims what it frees). One after another, so
# the count is the same at every run.
CHURN = """
import resource, sys, threading
import numpy as np
if sys.argv[1] == "tuned":
    from client import memory
    assert memory.reuse_freed_buffers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def work():
    for _ in range(50):
        block = np.ones(1024 * 1024, np.float32)
        request = block.tobytes()
        answer = np.frombuffer(request, np.float32) + 1
        del block, request, answer
for _ in range(4):
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", CHURN, mode],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default, tuned = faults("default"), faults("tuned")
    assert default > 200_000  # 600 buffers of 1024 pages, fresh each time: the cost being removed
    assert tuned < default / 20
