"""``python -m client.sample [data.npy]`` (`make sample`): a sample input to try the model with.

Row 0 starts with the reference vector (README), so the first values of the preview are known:
``[0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2] -> [0, 1, 1, 1, 1, 0, 0, 1]``; the rest is
seeded normal noise (scale 0.5), so about 84% of the values lie outside the default bounds.
The file is written under a temp name and renamed into place: never half-written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from client.cli_options import positive_int

REFERENCE_INPUT = (0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2)
DEFAULT_ROWS, DEFAULT_COLS = 1000, 256


def sample_array(rows: int = DEFAULT_ROWS, cols: int = DEFAULT_COLS, seed: int = 0):
    """float32 [rows, cols]: seeded noise, the reference vector at the start of row 0."""
    import numpy as np

    array = np.random.default_rng(seed).normal(0.0, 0.5, size=(rows, cols)).astype(np.float32)
    head = min(cols, len(REFERENCE_INPUT))
    array[0, :head] = REFERENCE_INPUT[:head]
    return array


def write_sample(path: Path, rows: int = DEFAULT_ROWS, cols: int = DEFAULT_COLS, seed: int = 0) -> Path:
    """Write sample_array(...) to path as .npy, atomically; the path written."""
    import numpy as np

    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.save(file, sample_array(rows, cols, seed))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default="data.npy", help="where to write it (default data.npy)")
    parser.add_argument("--rows", type=positive_int, default=DEFAULT_ROWS, help=f"default {DEFAULT_ROWS}")
    parser.add_argument("--cols", type=positive_int, default=DEFAULT_COLS, help=f"default {DEFAULT_COLS}")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    args = parser.parse_args(argv)
    try:
        path = write_sample(Path(args.path), args.rows, args.cols, args.seed)
    except OSError as exc:
        print(f"error: cannot write {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 11
    print(
        f"wrote {path}: float32 [{args.rows}, {args.cols}], row 0 starts with the reference vector "
        f"{list(REFERENCE_INPUT)}\nnext: python -m client.predict {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
