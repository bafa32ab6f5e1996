"""Where checked results go: a .npy file written atomically, an in-memory array, or a preview.

Responses arrive out of order; each is written at its own offset, so the result is in input
order whatever the completion order. ``NpyOutput`` preallocates the file with
``np.lib.format.open_memmap`` (header and size, no memory used), then writes each block at its
offset with plain positioned writes, so the process never holds more than the blocks in flight.
The file is built under a hidden temp name beside the target (``.<name>.partial-<pid>``) and
renamed over it only after the last block is written and fsynced: a failed or interrupted run
leaves no partial file, and one left by a killed run (SIGKILL) is removed by the next run to the
same output once its process is gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from client.errors import OutputFileError

PREVIEW_ROWS = 10
PREVIEW_COLS = 100


class Output(Protocol):
    """Where a run's checked answers go, block by block, in any order."""

    def keeps(self, row: int, col: int, shape: tuple[int, ...]) -> bool:
        """Whether a block of this shape at (row, col), written with ``owned=True``, would be kept
        as it is rather than copied (the caller then hands over an array of its own)."""

    def write(self, row: int, col: int, block: np.ndarray, owned: bool = False) -> None:
        """Place one block of answers at (row, col)."""

    def commit(self):
        """Finish: the result (an array, a preview, or the output file's path)."""

    def abort(self) -> None:
        """Give up: nothing half-written is left behind."""


class ArrayOutput:
    """Results collected in memory (for ``ThresholdClient.predict``).

    A run answered in one block that is an array of its own (a checked answer: the checker hands
    over the rule's array, bit for bit the answer) is kept as it is; otherwise blocks are copied
    into one array, allocated at the first write.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, rows: int, cols: int):
        self.shape, self.dtype, self.size = shape, np.dtype(dtype), (rows, cols)
        self.array: np.ndarray | None = None

    def keeps(self, row: int, col: int, shape: tuple[int, ...]) -> bool:
        """Whether ``write(row, col, block, owned=True)`` of a block this shape keeps it (no copy):
        only a block that is the whole result."""
        return self.array is None and (row, col) == (0, 0) and tuple(shape) == self.size

    def write(self, row: int, col: int, block: np.ndarray, owned: bool = False) -> None:
        if self.array is None:
            if owned and self.keeps(row, col, block.shape) and block.dtype == self.dtype:
                self.array = block
                return
            self.array = np.empty(self.size, dtype=self.dtype)
        self.array[row : row + block.shape[0], col : col + block.shape[1]] = block

    def commit(self) -> np.ndarray:
        if self.array is None:  # no rows: nothing was written
            self.array = np.empty(self.size, dtype=self.dtype)
        return self.array.reshape(self.shape)

    def abort(self) -> None:
        pass


class PreviewOutput:
    """Keeps only the top-left corner of the result, for printing."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, rows: int, cols: int):
        self.one_row = len(shape) == 1
        self.array = np.zeros((min(rows, PREVIEW_ROWS), min(cols, PREVIEW_COLS)), dtype=dtype)

    def keeps(self, row: int, col: int, shape: tuple[int, ...]) -> bool:
        return False  # only a corner is kept, copied

    def write(self, row: int, col: int, block: np.ndarray, owned: bool = False) -> None:
        rows, cols = self.array.shape
        if row < rows and col < cols:
            part = block[: rows - row, : cols - col]
            self.array[row : row + part.shape[0], col : col + part.shape[1]] = part

    def commit(self) -> np.ndarray:
        return self.array[0] if self.one_row else self.array

    def abort(self) -> None:
        pass


def refuse_output_over_input(source: str | os.PathLike, output: str | os.PathLike) -> None:
    """OutputFileError when ``output`` is the input file itself (same path, or a link to it).

    Renaming the mask over it would replace the data with its own mask.
    """
    try:
        same = os.path.samefile(source, output)  # same device and inode: symlinks and hard links too
    except OSError:  # the output does not exist yet (or cannot be looked at: NpyOutput will say)
        return
    if same:
        raise OutputFileError(
            f"output {output} is the input file {source}; "
            "choose another -o, the input would be replaced by its mask"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete ``.<name>.partial-<pid>`` files beside ``path`` whose process is gone; return them.

    A run killed with SIGKILL (or by a power cut) cannot clean up after itself; the next run to
    the same output does. A partial whose process is alive is another run's: left alone.
    """
    removed = []
    prefix = f".{path.name}.partial-"
    try:
        candidates = [entry for entry in path.parent.iterdir() if entry.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in candidates:
        pid = entry.name[len(prefix) :]
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return removed


class NpyOutput:
    """A .npy file of the input's shape, written through a temp file and renamed into place."""

    def __init__(
        self, path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype, rows: int, cols: int
    ):
        self.path = Path(path)
        self.cols = cols
        self.dtype = np.dtype(dtype)
        self.temp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}"
        self._file = None
        try:
            if self.path.is_dir():
                raise IsADirectoryError(21, "is a directory")
            remove_stale_partials(self.path)
            mapped = np.lib.format.open_memmap(self.temp, mode="w+", dtype=dtype, shape=shape)
            self.offset = mapped.offset
            del mapped
            self._file = open(self.temp, "r+b")  # noqa: SIM115 - closed by commit()/abort()
        except (OSError, ValueError) as exc:
            self.abort()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputFileError(f"cannot write output {self.path}: {reason}") from None

    def keeps(self, row: int, col: int, shape: tuple[int, ...]) -> bool:
        return False  # every block is written to the file

    def write(self, row: int, col: int, block: np.ndarray, owned: bool = False) -> None:
        # A block is whole rows, or a slice of one row: contiguous in the file either way.
        data = np.ascontiguousarray(block, dtype=self.dtype)
        try:
            self._file.seek(self.offset + (row * self.cols + col) * self.dtype.itemsize)
            self._file.write(memoryview(data).cast("B"))
        except OSError as exc:
            raise OutputFileError(f"cannot write output {self.path}: {exc.strerror or exc}") from None

    def commit(self) -> Path:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputFileError(f"cannot write output {self.path}: {exc.strerror or exc}") from None
        return self.path

    def abort(self) -> None:
        """Remove the temp file; the target is left as it was."""
        if self._file is not None:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()
