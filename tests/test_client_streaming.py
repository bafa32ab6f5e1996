"""Files far bigger than a batch stream through in O(batch) memory, in and out."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from client.checker import expected_mask
from tests.support.processes import run_module

ROWS, COLS = 12_500, 4_000  # 50 M float32 values: a 200 MB file, 200 times the batch budget
CHUNK = 500


def chunk(start: int) -> np.ndarray:
    return np.random.default_rng(start).normal(scale=0.2, size=(CHUNK, COLS)).astype(np.float32)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(ROWS, COLS))
    for start in range(0, ROWS, CHUNK):
        out[start : start + CHUNK] = chunk(start)
    out.flush()
    del out
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def big_npz(big_file):
    """The same array as the only member of a .npz (stored), written without holding it in memory."""
    path = big_file.with_suffix(".npz")
    source = np.load(big_file, mmap_mode="r")
    with zipfile.ZipFile(path, "w") as archive, archive.open("x.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (ROWS, COLS)}
        )
        for start in range(0, ROWS, CHUNK):
            member.write(np.ascontiguousarray(source[start : start + CHUNK]).tobytes())
    yield path
    path.unlink()


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_big_file_streams_with_bounded_memory(fake_server, big_file, big_npz, tmp_path, kind):
    server = fake_server()
    output = tmp_path / "mask.npy"
    result = run_module(
        "client.predict",
        big_file if kind == "npy" else big_npz,
        "--server",
        server.address,
        "--compact",
        "--max-message-bytes",
        "1M",
        "--json",
        "-o",
        output,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["values"] == ROWS * COLS and summary["mismatches"] == 0
    assert summary["batches"] >= 200
    # The CLI's own VmHWM: this child's address space only (a parent's RSS can't leak into it).
    peak_mib, file_mib = summary["peak_rss_mb"], big_file.stat().st_size / 2**20
    assert peak_mib < 160, f"peak RSS {peak_mib:.0f} MiB for a {file_mib:.0f} MiB file"
    mask = np.load(output, mmap_mode="r")
    assert mask.shape == (ROWS, COLS) and mask.dtype == np.uint8
    for start in (0, ROWS - CHUNK):
        assert np.array_equal(mask[start : start + CHUNK], expected_mask(chunk(start), -0.1, 0.1))
