"""TF Serving config messages the tensorflow-serving-api wheel does not ship.

The wheel has model_server_config_pb2 but neither monitoring_config_pb2, ssl_config_pb2 nor the
batching parameters. Their messages are transcribed here, field by field, from TF Serving's sources:
  tensorflow_serving/config/monitoring_config.proto               (PrometheusConfig, MonitoringConfig)
  tensorflow_serving/config/ssl_config.proto                      (SSLConfig)
  tensorflow_serving/servables/tensorflow/session_bundle_config.proto  (BatchingParameters)
and built into a private descriptor pool, so ``text_format.Parse`` rejects any field name or
type the real server would reject. The embedded server reads --monitoring-config-file with
MonitoringConfig; the tests parse the checkout's configs with all three.
tests/test_tf_serving_config_protos.py holds every field's name, number and type to a table
transcribed from those .proto files.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> _F:
    field = _F(
        name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    )
    if type_name:
        field.type_name = type_name
    return field


def _message(name: str, *fields: _F) -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(name=name, field=list(fields))


_INT64_VALUE = ".google.protobuf.Int64Value"
_STRING_VALUE = ".google.protobuf.StringValue"
_BOOL_VALUE = ".google.protobuf.BoolValue"

MONITORING_CONFIG_PROTO = descriptor_pb2.FileDescriptorProto(
    name="tensorflow_serving/config/monitoring_config.proto",
    package="tensorflow.serving",
    syntax="proto3",
    message_type=[
        _message("PrometheusConfig", _field("enable", 1, _F.TYPE_BOOL), _field("path", 2, _F.TYPE_STRING)),
        _message(
            "MonitoringConfig",
            _field("prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig"),
        ),
    ],
)

# Only BatchingParameters of session_bundle_config.proto: SessionBundleConfig itself needs
# TensorFlow's ConfigProto and is not what --batching_parameters_file holds.
BATCHING_PARAMETERS_PROTO = descriptor_pb2.FileDescriptorProto(
    name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
    package="tensorflow.serving",
    syntax="proto3",
    dependency=["google/protobuf/wrappers.proto"],
    message_type=[
        _message(
            "BatchingParameters",
            _field("max_batch_size", 1, _F.TYPE_MESSAGE, _INT64_VALUE),
            _field("batch_timeout_micros", 2, _F.TYPE_MESSAGE, _INT64_VALUE),
            _field("max_enqueued_batches", 3, _F.TYPE_MESSAGE, _INT64_VALUE),
            _field("num_batch_threads", 4, _F.TYPE_MESSAGE, _INT64_VALUE),
            _field("thread_pool_name", 5, _F.TYPE_MESSAGE, _STRING_VALUE),
            _field("allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True),
            _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
            _field("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, _BOOL_VALUE),
            _field("max_execution_batch_size", 9, _F.TYPE_MESSAGE, _INT64_VALUE),
        ),
    ],
)


SSL_CONFIG_PROTO = descriptor_pb2.FileDescriptorProto(
    name="tensorflow_serving/config/ssl_config.proto",
    package="tensorflow.serving",
    syntax="proto3",
    message_type=[
        _message(
            "SSLConfig",
            _field("server_key", 1, _F.TYPE_STRING),
            _field("server_cert", 2, _F.TYPE_STRING),
            _field("custom_ca", 3, _F.TYPE_STRING),
            _field("client_verify", 4, _F.TYPE_BOOL),
        ),
    ],
)


def _build_pool() -> descriptor_pool.DescriptorPool:
    # A private pool: no clash with anything TensorFlow registers in the default one.
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    for file_proto in (wrappers, MONITORING_CONFIG_PROTO, BATCHING_PARAMETERS_PROTO, SSL_CONFIG_PROTO):
        pool.Add(file_proto)
    return pool


_POOL = _build_pool()
MonitoringConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
)
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
)
SSLConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.serving.SSLConfig"))
