"""`python -m client.predict` streams a .npy several times larger than the memory it may use.

The child gets an address-space limit (RLIMIT_AS) four times smaller than the file, so neither a
whole-file read nor a memory map of the file can succeed in it; the same limit makes
``numpy.load`` of that file fail, which shows the limit bites. The file is sparse (all zeros,
instant to make, no disk used).
"""

from __future__ import annotations

import resource
import subprocess

import numpy as np

from tests.support.processes import PYTHON, REPO, cli_env

LIMIT = 768 << 20  # the client needs about 370 MiB of address space; headroom for gRPC threads
FILE_BYTES = 4 * LIMIT
COLS = 256


def sparse_npy(path, rows: int, cols: int):
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)}
        )
        handle.truncate(handle.tell() + rows * cols * 4)
    return path


def limited(*args: str) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    # Two malloc arenas: glibc otherwise reserves 64 MiB of address space per thread that allocates.
    return subprocess.run(
        [PYTHON, *args],
        cwd=REPO,
        env=cli_env(MALLOC_ARENA_MAX="2"),
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_file_four_times_the_address_space_limit_streams_through(fake_server, tmp_path):
    rows = FILE_BYTES // (COLS * 4)
    path = sparse_npy(tmp_path / "big.npy", rows, COLS)
    assert path.stat().st_size > FILE_BYTES

    loaded = limited("-c", f"import numpy; numpy.load({str(path)!r})")
    assert loaded.returncode != 0 and "MemoryError" in loaded.stderr, "the limit should stop a full load"

    server = fake_server(tensor_content=True)  # the quick encoding: this test is about the client's memory
    result = limited("-m", "client.predict", str(path), "--server", server.address, "--compact")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"all {rows * COLS} values match" in result.stderr
