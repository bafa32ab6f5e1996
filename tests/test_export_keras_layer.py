"""ThresholdFilter is a registered, serializable Keras layer that refuses bad bounds."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from export.layer import InvalidBounds, ThresholdFilter
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def test_config_round_trip_keeps_bounds_and_dtype():
    layer = ThresholdFilter(-0.3, 0.7, output_dtype="uint8", name="f")
    clone = ThresholdFilter.from_config(layer.get_config())
    assert (clone.low, clone.high, clone.output_dtype, clone.name) == (-0.3, 0.7, "uint8", "f")
    x = np.float32([[-0.31, -0.3, 0.7, 0.71]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), [[1, 0, 0, 1]])


def test_registered_name_resolves_through_keras_serialization():
    config = keras.saving.serialize_keras_object(ThresholdFilter())
    assert config["registered_name"] == "threshold_serving>ThresholdFilter"
    assert isinstance(keras.saving.deserialize_keras_object(config), ThresholdFilter)


def test_keras_file_save_and_load_round_trip(tmp_path):
    inputs = keras.Input(shape=(None,), dtype="float32")
    model = keras.Model(inputs, ThresholdFilter(-0.1, 0.1)(inputs))
    path = tmp_path / "threshold.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], ThresholdFilter)
    np.testing.assert_array_equal(loaded.predict(np.float32([REFERENCE_INPUT]), verbose=0), [REFERENCE_MASK])


@pytest.mark.parametrize(
    "low, high, fragment",
    [
        (0.5, -0.5, "low must be <= high"),
        (float("nan"), 0.1, "low must be a finite number"),
        (-0.1, float("inf"), "high must be a finite number"),
        (float("-inf"), 0.1, "low must be a finite number"),
        ("a", 0.1, "bounds must be numbers"),
    ],
)
def test_bad_bounds_are_refused(low, high, fragment):
    with pytest.raises(InvalidBounds, match=fragment):
        ThresholdFilter(low, high)


def test_equal_bounds_are_a_valid_zero_width_band():
    layer = ThresholdFilter(0.0, 0.0)
    got = keras.ops.convert_to_numpy(layer(np.float32([[0.0, -0.0, 1e-30, -1e-30]])))
    np.testing.assert_array_equal(got, [[0, 0, 1, 1]])


def test_subnormal_inputs_compare_as_zero_on_cpu():
    # TF's CPU kernels flush subnormals to zero; README documents this one divergence
    # from numpy, which only matters for bounds that separate a subnormal from zero.
    layer = ThresholdFilter(0.0, 0.0)
    got = keras.ops.convert_to_numpy(layer(np.float32([[1e-45, -1e-45]])))
    np.testing.assert_array_equal(got, [[0, 0]])
