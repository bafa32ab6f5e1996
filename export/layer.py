"""The threshold filter as a registered, serializable Keras layer."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

DEFAULT_LOW = -0.1
DEFAULT_HIGH = 0.1


class InvalidBounds(ValueError):
    """The bounds cannot define a filter (NaN, infinite, or low > high)."""


def validate_bounds(low: float, high: float) -> tuple[float, float]:
    """Return (low, high) as floats, or raise InvalidBounds saying what is wrong."""
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError) as exc:
        raise InvalidBounds(f"bounds must be numbers, got low={low!r} high={high!r}") from exc
    for label, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise InvalidBounds(f"{label} must be a finite number, got {value}")
    if low > high:
        raise InvalidBounds(f"low must be <= high, got low={low} > high={high}")
    return low, high


@keras.saving.register_keras_serializable(package="threshold_serving")
class ThresholdFilter(keras.layers.Layer):
    """Outputs 1 where x < low or x > high, else 0 (so the bounds and NaN map to 0).

    Built from TF-native comparison ops so it runs in graph mode, in TF Serving
    and in the TFLite builtins op set.
    """

    def __init__(self, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH,
                 output_dtype: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = validate_bounds(low, high)
        self.output_dtype = tf.as_dtype(output_dtype).name

    def call(self, x):
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        # Comparisons with NaN are false, so NaN lands inside the band (0), as the rule says.
        outside = tf.logical_or(tf.less(x, self.low), tf.greater(x, self.high))
        return tf.cast(outside, self.output_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(low=self.low, high=self.high, output_dtype=self.output_dtype)
        return config
