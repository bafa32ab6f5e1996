"""The threshold filter as a registered, serializable Keras layer."""

from __future__ import annotations

import keras
import tensorflow as tf

from export.bounds import DEFAULT_HIGH, DEFAULT_LOW, InvalidBounds, validate_bounds

__all__ = ["DEFAULT_HIGH", "DEFAULT_LOW", "InvalidBounds", "ThresholdFilter", "validate_bounds"]


@keras.saving.register_keras_serializable(package="threshold_serving")
class ThresholdFilter(keras.layers.Layer):
    """Outputs 1 where x < low or x > high, else 0 (so the bounds and NaN map to 0).

    Built from TF-native comparison ops so it runs in graph mode, in TF Serving
    and in the TFLite builtins op set.
    """

    def __init__(
        self, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, output_dtype: str = "float32", **kwargs
    ):
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
