"""The threshold rule, as the exported SavedModel computes it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from export.savedmodel import ThresholdModel
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def numpy_rule(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return ((x < low) | (x > high)).astype(np.float32)


@pytest.fixture(scope="module")
def loaded(model_dir):
    return tf.saved_model.load(str(model_dir / "threshold" / "1"))


def predict(loaded, x, signature="serving_default"):
    return loaded.signatures[signature](x=tf.constant(np.asarray(x, np.float32)))["mask"].numpy()


def test_reference_vector_gives_reference_mask(loaded):
    np.testing.assert_array_equal(predict(loaded, [REFERENCE_INPUT]), [REFERENCE_MASK])


def test_boundaries_map_to_zero(loaded):
    x = np.float32(
        [
            [
                -0.1,
                0.1,
                np.nextafter(np.float32(0.1), np.float32(1)),
                np.nextafter(np.float32(-0.1), np.float32(-1)),
            ]
        ]
    )
    np.testing.assert_array_equal(predict(loaded, x), [[0, 0, 1, 1]])


def test_nan_maps_to_zero_and_infinities_to_one(loaded):
    x = [[np.nan, np.inf, -np.inf, -np.nan]]
    np.testing.assert_array_equal(predict(loaded, x), [[0, 1, 1, 0]])


def test_large_and_tiny_values(loaded):
    big = np.finfo(np.float32)
    x = [[big.max, big.min, big.tiny, -big.tiny, 1e30, -1e-30]]
    np.testing.assert_array_equal(predict(loaded, x), [[1, 1, 0, 0, 1, 0]])


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty_batches_keep_their_shape(loaded, shape):
    for signature, dtype in (("serving_default", np.float32), ("compact", np.uint8)):
        out = predict(loaded, np.zeros(shape, np.float32), signature)
        assert out.shape == shape and out.dtype == dtype


def test_compact_signature_matches_float_signature(loaded):
    x = np.random.default_rng(0).normal(0, 0.2, (64, 33)).astype(np.float32)
    compact = predict(loaded, x, "compact")
    assert compact.dtype == np.uint8
    np.testing.assert_array_equal(compact, predict(loaded, x).astype(np.uint8))


def test_bounds_signature_reports_default_bounds_once_per_row(loaded):
    out = loaded.signatures["bounds"](x=tf.zeros([3, 2]))
    assert out["low"].numpy().tolist() == [np.float32(-0.1)] * 3
    assert out["high"].numpy().tolist() == [np.float32(0.1)] * 3
    empty = loaded.signatures["bounds"](x=tf.zeros([0, 0]))
    assert empty["low"].shape == (0,) and empty["high"].shape == (0,)


finite_floats = st.floats(-10, 10, width=32, allow_nan=False, allow_subnormal=False)
# Subnormals are left out: TF's CPU kernels flush them to zero (see the layer tests).
matrices = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
    elements=st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=False),
)


@settings(max_examples=150, deadline=None)
@given(x=matrices)
def test_savedmodel_matches_numpy_rule_on_random_arrays(loaded, x):
    np.testing.assert_array_equal(predict(loaded, x), numpy_rule(x, np.float32(-0.1), np.float32(0.1)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.tuples(finite_floats, finite_floats).map(sorted), x=matrices)
def test_savedmodel_matches_numpy_rule_for_random_bounds(tmp_path_factory, bounds, x):
    low, high = bounds
    path = tmp_path_factory.mktemp("bounds") / "1"
    model = ThresholdModel(low, high)
    tf.saved_model.save(model, str(path), signatures=model.signatures())
    reloaded = tf.saved_model.load(str(path))
    np.testing.assert_array_equal(predict(reloaded, x), numpy_rule(x, np.float32(low), np.float32(high)))
    got = reloaded.signatures["bounds"](x=tf.zeros([1, 1]))
    assert (float(got["low"][0]), float(got["high"][0])) == (np.float32(low), np.float32(high))
