"""Import TensorFlow without its start-up log spam on stderr.

TF's C++ runtime prints INFO lines (oneDNN notices, "Could not find cuda drivers",
cuInit failures on CPU-only machines) before its log settings take effect, so
``TF_CPP_MIN_LOG_LEVEL`` cannot hide them. Here stderr's file descriptor is captured
while TF loads and runs a first op; lines that match those known start-up notices are
dropped and everything else is written back, so real errors still show.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

_STARTUP_NOISE = re.compile(
    r"^(?:[IWE]\d{4} [\d:. ]+\s+\d+ (?:port|cudart_stub|cuda_platform|cuda_executor|cpu_feature_guard|"
    r"cuda_dnn|cuda_fft|cuda_blas|gpu_device)\.cc:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)"
)


def filter_startup_noise(text: str) -> str:
    """Drop TF's known start-up notices from captured stderr text."""
    return "".join(line for line in text.splitlines(keepends=True) if not _STARTUP_NOISE.match(line))


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, with its start-up notices filtered out of stderr."""
    if "tensorflow.python" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.constant(0.0) + 1.0  # device discovery logs on the first op
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.write(filter_startup_noise(capture.read().decode(errors="replace")))
            sys.stderr.flush()
    return tf
