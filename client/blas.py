"""numpy's bundled OpenBLAS at one thread, for the command-line programs.

numpy's wheels bundle OpenBLAS, which starts a thread per core when numpy is imported; between
calls those threads wait for work by spinning. The client does no linear algebra, so they only
take CPU from gRPC and from a model server on the same machine: on 2 cores, ``client.predict``
on a 256 MiB file used about 0.1 s less CPU (of about 0.7 s) with one BLAS thread.
OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when numpy loads, so this runs before anything
imports numpy; an explicit setting wins. Like ``client.memory``, only the programs call it; a
library never changes its caller's process.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "OPENBLAS_NUM_THREADS"


def one_blas_thread() -> bool:
    """Ask for one OpenBLAS thread unless the environment chose; whether numpy will see it."""
    os.environ.setdefault(VARIABLE, "1")
    return "numpy" not in sys.modules
