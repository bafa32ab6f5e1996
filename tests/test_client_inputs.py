"""Bad input files get one line and their own exit code, before any server is contacted."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from client.errors import InputFileError, InputFormatError, InvalidInput
from client.reader import from_array, open_input
from tests.support.processes import one_line_error, run_module

NOWHERE = "127.0.0.1:1"  # nothing listens: reaching the server would be exit 6, not the input's code


def predict_cli(*args):
    return run_module("client.predict", *args, "--server", NOWHERE, "--retries", "0", timeout=60)


def write_bytes(path, data):
    path.write_bytes(data)
    return path


def saved(path, array):
    np.save(path, array, allow_pickle=array.dtype.hasobject)
    return path


def truncated_npy(path):
    np.save(path, np.zeros((100, 10), np.float32))
    data = path.read_bytes()
    return write_bytes(path, data[:-17])


BAD_FILES = {
    "missing": (lambda d: d / "absent.npy", 3, "not found"),
    "directory": (lambda d: d, 3, "is a directory"),
    "object array": (lambda d: saved(d / "o.npy", np.array([{"a": 1}], dtype=object)), 4, "Python objects"),
    "plain pickle": (lambda d: write_bytes(d / "p.npy", pickle.dumps([1.0, 2.0])), 4, "pickle"),
    "not numpy": (lambda d: write_bytes(d / "t.npy", b"hello, world\n"), 4, "not a .npy or .npz"),
    "corrupt header": (
        lambda d: write_bytes(d / "h.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4\n"),
        4,
        "corrupt",
    ),
    "truncated": (lambda d: truncated_npy(d / "short.npy"), 4, "truncated"),
    "complex": (lambda d: saved(d / "c.npy", np.ones((2, 2), np.complex64)), 5, "complex"),
    "strings": (lambda d: saved(d / "s.npy", np.array(["a", "b"])), 5, "string"),
    "3-D": (lambda d: saved(d / "3.npy", np.zeros((2, 2, 2))), 5, "3-D"),
    "scalar": (lambda d: saved(d / "0.npy", np.float32(1)), 5, "scalar"),
    "empty 1-D": (lambda d: saved(d / "e.npy", np.zeros(0)), 5, "empty"),
    "rows without columns": (lambda d: saved(d / "e2.npy", np.zeros((3, 0))), 5, "empty"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_input_file_is_one_line_with_its_exit_code(tmp_path, case):
    make, code, fragment = BAD_FILES[case]
    one_line_error(predict_cli(make(tmp_path)), code, fragment)


def test_npz_members_are_chosen_by_key_and_a_wrong_key_lists_the_choices(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, a=np.zeros((2, 3)), b=np.ones(4))
    one_line_error(predict_cli(path), 4, "choose one with --key")
    one_line_error(predict_cli(path, "--key", "c"), 4, "it holds: a, b")
    with open_input(path, key="b") as source:
        assert (source.rows, source.cols) == (1, 4)
        assert next(source.batches(10))[1].tolist() == [[1, 1, 1, 1]]


def test_corrupt_npz_is_a_format_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros(10))
    write_bytes(path, path.read_bytes()[:40])
    with pytest.raises(InputFormatError):
        open_input(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_member_streams_in_order(tmp_path, compressed):
    array = np.arange(5000, dtype=np.float64).reshape(500, 10)
    path = tmp_path / "data.npz"
    (np.savez_compressed if compressed else np.savez)(path, x=array)
    with open_input(path) as source:
        blocks = [block for _, block in source.batches(64)]
    assert np.array_equal(np.concatenate(blocks), array.astype(np.float32))


@pytest.mark.parametrize("suffix", ["npy", "npz"])
def test_fortran_order_files_read_the_same_rows(tmp_path, suffix):
    array = np.asfortranarray(np.arange(60, dtype=np.float32).reshape(6, 10))
    path = tmp_path / f"f.{suffix}"
    np.save(path, array) if suffix == "npy" else np.savez(path, x=array)
    with open_input(path) as source:
        assert np.array_equal(np.concatenate([b for _, b in source.batches(4)]), array)


def test_lossy_casts_are_counted_and_exact_ones_are_silent():
    source = from_array(np.array([[0.5, 0.1, 2.0**30 + 1]], np.float64))
    list(source.batches(1))
    assert source.cast.changed == 2 and source.cast.first[:2] == (0, 1)
    exact = from_array(np.array([[1, 2, 3]], np.int16))
    assert next(exact.batches(1))[1].dtype == np.float32 and exact.cast is None
    big_ints = from_array(np.array([2**24, 2**24 + 1, -(2**31)], np.int64))
    list(big_ints.batches(1))
    assert big_ints.cast.changed == 1


def test_zero_rows_of_known_width_is_a_valid_empty_input():
    source = from_array(np.zeros((0, 8)))
    assert (source.rows, source.cols) == (0, 8) and list(source.batches(4)) == []


def test_library_raises_typed_errors(tmp_path):
    with pytest.raises(InputFileError):
        open_input(tmp_path / "nope.npy")
    with pytest.raises(InvalidInput, match="2-D array"):
        from_array(np.zeros((2, 2, 2)))
    with pytest.raises(InputFormatError, match="for .npz"):
        np.save(tmp_path / "a.npy", np.zeros(3))
        open_input(tmp_path / "a.npy", key="x")


def test_npz_with_pickled_member_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array(member, np.array([None, 1], dtype=object), allow_pickle=True)
    one_line_error(predict_cli(path), 4, "Python objects")
