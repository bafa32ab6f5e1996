"""The config messages written here (serving/config_protos.py) are TF Serving's, field for field.

The tensorflow-serving-api wheel ships neither BatchingParameters nor MonitoringConfig, so the
tests that parse batching.config and monitoring.config use descriptors transcribed in this repo.
This test holds them to TF Serving's .proto files: every field's name, number, type and label,
and no field more or less. The tables below are transcribed from
  tensorflow_serving/servables/tensorflow/session_bundle_config.proto  (message BatchingParameters)
  tensorflow_serving/config/monitoring_config.proto                    (PrometheusConfig, MonitoringConfig)
at tensorflow/serving commit 9d981c5c2708d23c5407c7c1e30309e6f9798874 (the 2.21 line).
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor

from serving.config_protos import BatchingParameters, MonitoringConfig

D = descriptor.FieldDescriptor
INT64_VALUE, STRING_VALUE, BOOL_VALUE = (
    f"google.protobuf.{name}" for name in ("Int64Value", "StringValue", "BoolValue")
)

# (name, number, type as written in the .proto, repeated)
BATCHING_PARAMETERS = [
    ("max_batch_size", 1, INT64_VALUE, False),
    ("batch_timeout_micros", 2, INT64_VALUE, False),
    ("max_enqueued_batches", 3, INT64_VALUE, False),
    ("num_batch_threads", 4, INT64_VALUE, False),
    ("thread_pool_name", 5, STRING_VALUE, False),
    ("enable_large_batch_splitting", 8, BOOL_VALUE, False),
    ("max_execution_batch_size", 9, INT64_VALUE, False),
    ("allowed_batch_sizes", 6, "int64", True),
    ("pad_variable_length_inputs", 7, "bool", False),
]
PROMETHEUS_CONFIG = [("enable", 1, "bool", False), ("path", 2, "string", False)]
MONITORING_CONFIG = [("prometheus_config", 1, "tensorflow.serving.PrometheusConfig", False)]

SCALARS = {D.TYPE_BOOL: "bool", D.TYPE_STRING: "string", D.TYPE_INT64: "int64"}


def _repeated(field: descriptor.FieldDescriptor) -> bool:
    # protobuf 6 dropped FieldDescriptor.label in favour of is_repeated
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == D.LABEL_REPEATED


def fields(message: descriptor.Descriptor) -> list[tuple[str, int, str, bool]]:
    def kind(field: descriptor.FieldDescriptor) -> str:
        return field.message_type.full_name if field.type == D.TYPE_MESSAGE else SCALARS[field.type]

    return [(f.name, f.number, kind(f), _repeated(f)) for f in message.fields]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (BatchingParameters.DESCRIPTOR, BATCHING_PARAMETERS),
        (MonitoringConfig.DESCRIPTOR, MONITORING_CONFIG),
        (MonitoringConfig.DESCRIPTOR.fields_by_name["prometheus_config"].message_type, PROMETHEUS_CONFIG),
    ],
    ids=["BatchingParameters", "MonitoringConfig", "PrometheusConfig"],
)
def test_descriptors_have_tf_servings_names_numbers_and_types(message, expected):
    assert message.full_name.startswith("tensorflow.serving.")
    assert sorted(fields(message)) == sorted(expected)


def test_the_wheel_still_lacks_them_so_the_transcription_is_needed():
    import importlib.util

    assert importlib.util.find_spec("tensorflow_serving.config.model_server_config_pb2") is not None
    for module in (
        "tensorflow_serving.config.monitoring_config_pb2",
        "tensorflow_serving.servables.tensorflow.session_bundle_config_pb2",
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        assert not found, f"{module} ships now: parse with it and delete serving/config_protos.py"


def test_a_binary_message_round_trips_by_field_number():
    """Numbers matter on the wire: a value written as field 9 reads back as max_execution_batch_size."""
    from google.protobuf import wrappers_pb2

    raw = (
        b"\x4a"
        + bytes([len(wrappers_pb2.Int64Value(value=512).SerializeToString())])
        + wrappers_pb2.Int64Value(value=512).SerializeToString()
    )  # tag 9, length-delimited
    assert BatchingParameters.FromString(raw).max_execution_batch_size.value == 512
