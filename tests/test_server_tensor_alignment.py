"""Inputs decoded in place are handed to TensorFlow at Eigen's alignment, so it copies none itself.

TensorFlow's ``NdarrayToTensor`` (``tensorflow/python/lib/core/ndarray_tensor.cc``) copies an array
that is not aligned to its item size, and ``TF_NewTensor`` copies any buffer not at a multiple
of 64 bytes; the embedded server makes one aligned copy instead of those two.
"""

from __future__ import annotations

import numpy as np
import pytest

from serving.local.servable import EIGEN_ALIGNMENT, _eigen_aligned


@pytest.mark.parametrize("offset", [1, 4, 36, 63])
def test_a_misaligned_view_becomes_one_aligned_copy_with_the_same_values(offset):
    x = np.random.default_rng(offset).normal(size=(64, 33)).astype(np.float32)
    raw = np.zeros(x.nbytes + 2 * EIGEN_ALIGNMENT, np.uint8)
    start = offset - raw.ctypes.data % EIGEN_ALIGNMENT + EIGEN_ALIGNMENT
    raw[start : start + x.nbytes] = np.frombuffer(x.tobytes(), np.uint8)
    view = raw[start : start + x.nbytes].view(np.float32).reshape(x.shape)
    view.flags.writeable = False  # as a request's bytes are
    fed = _eigen_aligned(view)
    assert fed.ctypes.data % EIGEN_ALIGNMENT == 0
    assert fed.dtype == x.dtype and fed.shape == x.shape and np.array_equal(fed, x)


def test_an_aligned_array_and_small_or_object_arrays_are_fed_as_they_are():
    raw = np.zeros(4096 + EIGEN_ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % EIGEN_ALIGNMENT
    aligned = raw[start : start + 4096].view(np.float32)
    assert _eigen_aligned(aligned) is aligned
    small = np.frombuffer(b"\0" * 13, np.uint8)[1:9]
    assert _eigen_aligned(small) is small
    strings = np.array([b"a", b"bc"], dtype=object)
    assert _eigen_aligned(strings) is strings
