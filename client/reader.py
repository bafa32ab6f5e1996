"""Input arrays for the filter: validated up front, then read batch by batch as float32.

``.npy`` files are never unpickled (headers are parsed with ``numpy.lib.format``; object dtypes
are refused) and never loaded whole: rows are read sequentially into a fresh buffer per batch,
so peak memory is O(batch) however large the file is, and the process's RSS shows it (a memory
map would keep every page it touched resident and counted until the kernel needed them back).
``.npz`` members are streamed the same way straight out of the zip (stored or deflated), no temp
copy. Fortran-ordered 2-D files are the exception: their rows are strided, so a ``.npy`` is
memory-mapped read-only and a ``.npz`` member is first extracted to a temp file and mapped.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from client.errors import InputFileError, InputFormatError, InvalidInput

FLOAT32 = np.dtype("<f4")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_PICKLE_PROTOCOL = b"\x80"
_EXACT_IN_FLOAT32 = {np.dtype(t) for t in ("f2", "f4", "i1", "u1", "i2", "u2", "?")}


@dataclass
class CastNote:
    """What the float32 cast did: values rounded (and by how much), overflowed to inf, underflowed to 0."""

    source_dtype: str
    values: int = 0  # values cast so far
    changed: int = 0
    to_inf: int = 0
    to_zero: int = 0
    max_abs_change: float = 0.0  # among the rounded values
    max_rel_change: float = 0.0
    first: tuple[int, int, object, float] | None = None
    first_lost: tuple[int, int, object, float] | None = None  # the first value that became inf or 0

    @property
    def rounded(self) -> int:
        return self.changed - self.to_inf - self.to_zero

    def __str__(self) -> str:
        parts = []
        if self.rounded:
            parts.append(
                f"{self.rounded} rounded to the nearest float32, by at most "
                f"{self.max_abs_change:.3g} ({self.max_rel_change:.3g} relative)"
            )
        if self.to_inf:
            parts.append(f"{self.to_inf} beyond float32's range (|x| > 3.4e38) became inf")
        if self.to_zero:
            parts.append(f"{self.to_zero} too small for float32 (|x| < 1.4e-45) became 0")
        text = (
            f"cast from {self.source_dtype} to float32 changed {self.changed} of {self.values} values: "
            + "; ".join(parts)
        )
        if self.first_lost is not None:
            row, col, before, after = self.first_lost
            text += f" (the first at row {row}, col {col}: {before!r} -> {after!r})"
        return text

    def record(self, start: int, raw: np.ndarray, x: np.ndarray) -> None:
        """Count what casting the block raw (its first row is row start) to x changed."""
        self.values += raw.size
        with np.errstate(invalid="ignore", over="ignore"):
            changed = x.astype(raw.dtype) != raw
            if raw.dtype.kind == "f":
                changed &= ~np.isnan(raw)
        count = int(np.count_nonzero(changed))
        if not count:
            return
        if self.first is None:
            row, col = (int(i) for i in np.argwhere(changed)[0])
            self.first = (start + row, col, raw[row, col].item(), float(x[row, col]))
        self.changed += count
        to_inf = changed & np.isinf(x)
        to_zero = changed & (x == 0)
        self.to_inf += int(np.count_nonzero(to_inf))
        self.to_zero += int(np.count_nonzero(to_zero))
        lost = to_inf | to_zero
        if self.first_lost is None and lost.any():
            row, col = (int(i) for i in np.argwhere(lost)[0])
            self.first_lost = (start + row, col, raw[row, col].item(), float(x[row, col]))
        rounded = changed & ~to_inf & ~to_zero
        if rounded.any():
            before = raw[rounded].astype(np.float64)
            change = np.abs(x[rounded].astype(np.float64) - before)
            self.max_abs_change = max(self.max_abs_change, float(change.max()))
            self.max_rel_change = max(self.max_rel_change, float((change / np.abs(before)).max()))


def check_array_spec(shape: tuple[int, ...], dtype: np.dtype, what: str) -> tuple[int, int]:
    """(rows, cols) of the 2-D view of an input, or raise the error that says why it won't do."""
    if any(size < 0 for size in shape):
        raise InputFormatError(f"{what} is corrupt: its header declares a negative dimension {tuple(shape)}")
    if dtype.hasobject:
        raise InputFormatError(
            f"{what} holds Python objects (pickled data); it is never unpickled. "
            "Save a numeric array with np.save"
        )
    kind = {
        "c": "complex",
        "U": "string",
        "S": "bytes",
        "V": "structured",
        "M": "datetime",
        "m": "timedelta",
    }.get(dtype.kind)
    if kind is not None or dtype.kind not in "fiub":
        raise InvalidInput(
            f"{what} has {kind or 'unsupported'} dtype {dtype}; "
            "the filter takes real numbers (cast to float32)"
        )
    if len(shape) == 0:
        raise InvalidInput(f"{what} is a scalar; give a 1-D array (one row) or a 2-D array (rows)")
    if len(shape) > 2:
        raise InvalidInput(
            f"{what} is {len(shape)}-D with shape {shape}; "
            "give a 1-D array (one row) or a 2-D array (rows), e.g. reshape(len(a), -1)"
        )
    if shape[-1] == 0:
        raise InvalidInput(f"{what} is empty with shape {shape}: rows need at least one value")
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


class InputArray:
    """A validated 1-D/2-D numeric input, read as float32 row blocks of its 2-D view."""

    def __init__(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        *,
        stream: BinaryIO | None = None,
        array: np.ndarray | None = None,
        closers: tuple = (),
    ):
        self.name = name
        self.shape = tuple(int(size) for size in shape)
        self.dtype = dtype
        self.rows, self.cols = check_array_spec(self.shape, dtype, name)
        self._stream = stream
        self._array = None if array is None else array.reshape(self.rows, self.cols)
        self._closers = closers
        self.cast = None if dtype in _EXACT_IN_FLOAT32 else CastNote(str(dtype))

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def batches(self, rows_per_batch: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 C-contiguous block) pairs in order.

        A block is a fresh array, or for an in-memory float32 input a view of its rows.
        """
        for start in range(0, self.rows, rows_per_batch):
            count = min(rows_per_batch, self.rows - start)
            raw = self._read(start, count)
            yield start, self._to_float32(start, raw)

    def _read(self, start: int, count: int) -> np.ndarray:
        if self._array is not None:
            return self._array[start : start + count]
        nbytes = count * self.cols * self.dtype.itemsize
        buffer = np.empty(nbytes, dtype=np.uint8)  # not zero-filled: every byte is read into
        view, filled = memoryview(buffer), 0
        try:
            while filled < nbytes:
                got = self._stream.readinto(view[filled:])
                if not got:
                    raise InputFormatError(f"{self.name} is truncated before row {start + count - 1}")
                filled += got
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # bad CRC or deflate, disk error
            raise InputFormatError(f"{self.name} cannot be read past row {start}: {exc}") from exc
        return buffer.view(self.dtype).reshape(count, self.cols)

    def _to_float32(self, start: int, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == FLOAT32 and raw.flags.c_contiguous:
            return raw  # a fresh buffer we own, or rows of the caller's array (only ever read)
        with np.errstate(over="ignore"):  # values beyond float32 become inf: the cast note says so
            x = np.array(raw, dtype=FLOAT32, order="C")
        if self.cast is not None:
            self.cast.record(start, raw, x)
        return x

    def close(self) -> None:
        """Release files and temp copies; safe to call twice."""
        closers, self._closers = self._closers, ()
        for close in reversed(closers):
            close()

    def __enter__(self) -> InputArray:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def from_array(array: np.ndarray, name: str = "input array") -> InputArray:
    """Wrap an in-memory array (any array-like) as an InputArray, validating it."""
    array = np.asarray(array)
    return InputArray(name, array.shape, array.dtype, array=array)


def open_input(path: str | os.PathLike, key: str | None = None) -> InputArray:
    """Open a .npy file, or member ``key`` of a .npz, for batch reading. Never unpickles."""
    path = Path(path)
    handle = _open_regular_file(path)
    try:
        try:
            magic = handle.read(len(_NPY_MAGIC))
            handle.seek(0)
        except OSError as exc:
            raise InputFileError(f"cannot read input file {path}: {exc.strerror or exc}") from None
        if magic.startswith(_NPY_MAGIC):
            if key is not None:
                raise InputFormatError(f"key {key!r} is for .npz archives, but {path} is a .npy file")
            return _open_npy(path, handle)
        if magic[:4] in _ZIP_MAGICS:
            return _open_npz_member(path, handle, key)
        if magic.startswith(_PICKLE_PROTOCOL):
            raise InputFormatError(
                f"{path} is a pickle, not a .npy/.npz array; it is never unpickled. "
                "Save the data with np.save"
            )
        raise InputFormatError(f"{path} is not a .npy or .npz file (no NumPy or zip header)")
    except BaseException:
        handle.close()
        raise


def _open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file.

    Opened non-blocking first, so a FIFO with no writer (or a terminal, a device) is refused at
    once instead of hanging the open; the flag is cleared before any read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputFileError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InputFileError(f"input is a directory, not a .npy/.npz file: {path}") from None
    except OSError as exc:
        raise InputFileError(f"cannot read input file {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputFileError(f"input is a directory, not a .npy/.npz file: {path}")
        if not stat.S_ISREG(mode):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
            raise InputFileError(
                f"input {path} is {kind}; give a .npy/.npz file (sizes and offsets "
                "are read from it, so a pipe or device cannot be streamed)"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_header(stream: BinaryIO, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        if version in ((2, 0), (3, 0)):
            # 3.0 differs from 2.0 only in encoding the header as utf-8 instead of latin-1, which
            # matters for non-ASCII field names of structured dtypes, refused anyway.
            return np.lib.format.read_array_header_2_0(stream)
        raise ValueError(f"format version {version[0]}.{version[1]} is not one numpy writes")
    except (ValueError, EOFError, SyntaxError, TypeError, OSError, zlib.error) as exc:
        raise InputFormatError(f"{name} is corrupt: unreadable .npy header ({exc})") from None


def _check_size(name: str, shape, dtype: np.dtype, available: int) -> None:
    needed = math.prod(shape) * dtype.itemsize
    if available < needed:
        raise InputFormatError(
            f"{name} is truncated: shape {tuple(shape)} of {dtype} needs "
            f"{needed} data bytes, the file has {available}"
        )


def _open_npy(path: Path, handle: BinaryIO) -> InputArray:
    shape, fortran_order, dtype = _read_header(handle, str(path))
    check_array_spec(shape, dtype, str(path))
    _check_size(str(path), shape, dtype, os.fstat(handle.fileno()).st_size - handle.tell())
    if fortran_order and len(shape) == 2:
        handle.close()
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        return InputArray(str(path), shape, dtype, array=mapped)
    return InputArray(str(path), shape, dtype, stream=handle, closers=(handle.close,))


def _open_npz_member(path: Path, handle: BinaryIO, key: str | None) -> InputArray:
    try:
        archive = zipfile.ZipFile(handle)
    except zipfile.BadZipFile as exc:
        raise InputFormatError(f"{path} is a corrupt .npz archive ({exc})") from None
    try:
        keys = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        if key is None:
            if len(keys) != 1:
                listed = ", ".join(keys) or "none"
                raise InputFormatError(
                    f"{path} holds {len(keys)} arrays ({listed}) and no key says which", kind="choose_key"
                )
            key = keys[0]
        elif key not in keys:
            raise InputFormatError(f"{path} has no array {key!r}; it holds: {', '.join(keys) or 'none'}")
        info = archive.getinfo(key + ".npy")
        name = f"{path}[{key}]"
        try:
            member = archive.open(info)
        except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
            raise InputFormatError(f"{name} cannot be opened: {exc}") from None
        shape, fortran_order, dtype = _read_header(member, name)
        check_array_spec(shape, dtype, name)
        _check_size(name, shape, dtype, info.file_size - member.tell())
        if fortran_order and len(shape) == 2:
            member.close()
            return _extract_and_map(archive, info, name, shape, dtype, closers=(archive.close, handle.close))
        return InputArray(
            name, shape, dtype, stream=member, closers=(handle.close, archive.close, member.close)
        )
    except BaseException:
        archive.close()
        raise


def _extract_and_map(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, shape, dtype, closers: tuple
) -> InputArray:
    directory = tempfile.mkdtemp(prefix="threshold-npz-")
    target = Path(directory) / "member.npy"
    try:
        with archive.open(info) as member, open(target, "wb") as out:
            shutil.copyfileobj(member, out, 1 << 20)
        mapped = np.load(target, mmap_mode="r", allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise InputFormatError(f"{name} cannot be extracted for reading: {exc}") from None
    cleanup = (*closers, lambda: shutil.rmtree(directory, ignore_errors=True))
    return InputArray(name, shape, dtype, array=mapped, closers=cleanup)
