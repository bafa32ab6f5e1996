"""The TF Serving messages the client speaks, as descriptors: no tensorflow, no generated code.

Transcribed field by field (same full names, numbers, types and labels) from the sources the
server compiles, so the bytes on the wire are the same as with tensorflow-serving-api:
  tensorflow/core/framework/{types,tensor_shape,resource_handle,tensor}.proto
  xla/tsl/protobuf/error_codes.proto                    (tensorflow.error.Code)
  tensorflow/core/protobuf/meta_graph.proto             (TensorInfo, SignatureDef only)
  tensorflow_serving/apis/{model,predict,get_model_metadata,status,get_model_status}.proto

Every message a server sends is complete, except ``TensorInfo.composite_tensor`` (field 5,
the last of TensorInfo; it would drag in TensorFlow's whole struct.proto): a signature that
uses it still parses, the field kept as an unknown field and written back unchanged.
``PredictRequest`` has the fields this client sets; its newer streaming and LLM options
(fields 5 to 7) are likewise kept as unknown fields if a request ever carries them.
``client.protos`` builds these into a descriptor pool of its own, so they never clash with
the classes TensorFlow registers in the default pool when both live in one process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _BOOL = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_BOOL
_INT32, _INT64, _UINT32, _UINT64 = _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64
_FLOAT, _DOUBLE = _F.TYPE_FLOAT, _F.TYPE_DOUBLE
_MESSAGE, _ENUM = _F.TYPE_MESSAGE, _F.TYPE_ENUM


def _field(
    name: str,
    number: int,
    kind: int,
    type_name: str = "",
    *,
    repeated: bool = False,
    oneof: int | None = None,
) -> _F:
    # proto3: repeated scalars are packed by default, as TF's explicit [packed = true] asks.
    field = _F(
        name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    )
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _map_entry(name: str, value_kind: int, value_type: str = "") -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(
        name=name,
        options=descriptor_pb2.MessageOptions(map_entry=True),
        field=[_field("key", 1, _STRING), _field("value", 2, value_kind, value_type)],
    )


def _message(
    name: str, *fields: _F, nested: tuple = (), enums: tuple = (), oneofs: tuple[str, ...] = ()
) -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(
        name=name,
        field=list(fields),
        nested_type=list(nested),
        enum_type=list(enums),
        oneof_decl=[descriptor_pb2.OneofDescriptorProto(name=oneof) for oneof in oneofs],
    )


def _enum(name: str, values: list[tuple[str, int]]) -> descriptor_pb2.EnumDescriptorProto:
    return descriptor_pb2.EnumDescriptorProto(
        name=name, value=[descriptor_pb2.EnumValueDescriptorProto(name=n, number=v) for n, v in values]
    )


def _file(
    name: str, package: str, *, deps: tuple[str, ...] = (), messages: tuple = (), enums: tuple = ()
) -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto(
        name=name,
        package=package,
        syntax="proto3",
        dependency=list(deps),
        message_type=list(messages),
        enum_type=list(enums),
    )


_BASE_TYPES = [
    "FLOAT",
    "DOUBLE",
    "INT32",
    "UINT8",
    "INT16",
    "INT8",
    "STRING",
    "COMPLEX64",
    "INT64",
    "BOOL",
    "QINT8",
    "QUINT8",
    "QINT32",
    "BFLOAT16",
    "QINT16",
    "QUINT16",
    "UINT16",
    "COMPLEX128",
    "HALF",
    "RESOURCE",
    "VARIANT",
    "UINT32",
    "UINT64",
    "FLOAT8_E5M2",
    "FLOAT8_E4M3FN",
    "FLOAT8_E4M3FNUZ",
    "FLOAT8_E4M3B11FNUZ",
    "FLOAT8_E5M2FNUZ",
    "INT4",
    "UINT4",
    "INT2",
    "UINT2",
    "FLOAT4_E2M1FN",
]
# types.proto numbers the base types 1..33 in this order and each reference type 100 above it.
_DATA_TYPES = (
    [("DT_INVALID", 0)]
    + [(f"DT_{name}", number) for number, name in enumerate(_BASE_TYPES, 1)]
    + [(f"DT_{name}_REF", number + 100) for number, name in enumerate(_BASE_TYPES, 1)]
)

_ERROR_CODES = [
    ("OK", 0),
    ("CANCELLED", 1),
    ("UNKNOWN", 2),
    ("INVALID_ARGUMENT", 3),
    ("DEADLINE_EXCEEDED", 4),
    ("NOT_FOUND", 5),
    ("ALREADY_EXISTS", 6),
    ("PERMISSION_DENIED", 7),
    ("UNAUTHENTICATED", 16),
    ("RESOURCE_EXHAUSTED", 8),
    ("FAILED_PRECONDITION", 9),
    ("ABORTED", 10),
    ("OUT_OF_RANGE", 11),
    ("UNIMPLEMENTED", 12),
    ("INTERNAL", 13),
    ("UNAVAILABLE", 14),
    ("DATA_LOSS", 15),
    ("DO_NOT_USE_RESERVED_FOR_FUTURE_EXPANSION_USE_DEFAULT_IN_SWITCH_INSTEAD_", 20),
]

_DATA_TYPE = ".tensorflow.DataType"
_SHAPE = ".tensorflow.TensorShapeProto"
_TENSOR = ".tensorflow.TensorProto"
_TENSOR_INFO = ".tensorflow.TensorInfo"
_SPEC = ".tensorflow.serving.ModelSpec"

TYPES = _file(
    "tensorflow/core/framework/types.proto",
    "tensorflow",
    messages=(_message("SerializedDType", _field("datatype", 1, _ENUM, _DATA_TYPE)),),
    enums=(_enum("DataType", _DATA_TYPES),),
)

TENSOR_SHAPE = _file(
    "tensorflow/core/framework/tensor_shape.proto",
    "tensorflow",
    messages=(
        _message(
            "TensorShapeProto",
            _field("dim", 2, _MESSAGE, ".tensorflow.TensorShapeProto.Dim", repeated=True),
            _field("unknown_rank", 3, _BOOL),
            nested=(_message("Dim", _field("size", 1, _INT64), _field("name", 2, _STRING)),),
        ),
    ),
)

RESOURCE_HANDLE = _file(
    "tensorflow/core/framework/resource_handle.proto",
    "tensorflow",
    deps=(TENSOR_SHAPE.name, TYPES.name),
    messages=(
        _message(
            "ResourceHandleProto",
            _field("device", 1, _STRING),
            _field("container", 2, _STRING),
            _field("name", 3, _STRING),
            _field("hash_code", 4, _UINT64),
            _field("maybe_type_name", 5, _STRING),
            _field(
                "dtypes_and_shapes",
                6,
                _MESSAGE,
                ".tensorflow.ResourceHandleProto.DtypeAndShape",
                repeated=True,
            ),
            nested=(
                _message(
                    "DtypeAndShape",
                    _field("dtype", 1, _ENUM, _DATA_TYPE),
                    _field("shape", 2, _MESSAGE, _SHAPE),
                ),
            ),
        ),
    ),
)

TENSOR = _file(
    "tensorflow/core/framework/tensor.proto",
    "tensorflow",
    deps=(RESOURCE_HANDLE.name, TENSOR_SHAPE.name, TYPES.name),
    messages=(
        _message(
            "TensorProto",
            _field("dtype", 1, _ENUM, _DATA_TYPE),
            _field("tensor_shape", 2, _MESSAGE, _SHAPE),
            _field("version_number", 3, _INT32),
            _field("tensor_content", 4, _BYTES),
            _field("half_val", 13, _INT32, repeated=True),
            _field("float_val", 5, _FLOAT, repeated=True),
            _field("double_val", 6, _DOUBLE, repeated=True),
            _field("int_val", 7, _INT32, repeated=True),
            _field("string_val", 8, _BYTES, repeated=True),
            _field("scomplex_val", 9, _FLOAT, repeated=True),
            _field("int64_val", 10, _INT64, repeated=True),
            _field("bool_val", 11, _BOOL, repeated=True),
            _field("dcomplex_val", 12, _DOUBLE, repeated=True),
            _field("resource_handle_val", 14, _MESSAGE, ".tensorflow.ResourceHandleProto", repeated=True),
            _field("variant_val", 15, _MESSAGE, ".tensorflow.VariantTensorDataProto", repeated=True),
            _field("uint32_val", 16, _UINT32, repeated=True),
            _field("uint64_val", 17, _UINT64, repeated=True),
            _field("float8_val", 18, _BYTES),
        ),
        _message(
            "VariantTensorDataProto",
            _field("type_name", 1, _STRING),
            _field("metadata", 2, _BYTES),
            _field("tensors", 3, _MESSAGE, _TENSOR, repeated=True),
        ),
    ),
)

ERROR_CODES = _file(
    "xla/tsl/protobuf/error_codes.proto", "tensorflow.error", enums=(_enum("Code", _ERROR_CODES),)
)

META_GRAPH = _file(
    "tensorflow/core/protobuf/meta_graph.proto",
    "tensorflow",
    deps=(TENSOR.name, TENSOR_SHAPE.name, TYPES.name),
    messages=(
        _message(
            "TensorInfo",
            _field("name", 1, _STRING, oneof=0),
            _field("coo_sparse", 4, _MESSAGE, ".tensorflow.TensorInfo.CooSparse", oneof=0),
            _field("dtype", 2, _ENUM, _DATA_TYPE),
            _field("tensor_shape", 3, _MESSAGE, _SHAPE),
            nested=(
                _message(
                    "CooSparse",
                    _field("values_tensor_name", 1, _STRING),
                    _field("indices_tensor_name", 2, _STRING),
                    _field("dense_shape_tensor_name", 3, _STRING),
                ),
            ),
            oneofs=("encoding",),
        ),
        _message(
            "SignatureDef",
            _field("inputs", 1, _MESSAGE, ".tensorflow.SignatureDef.InputsEntry", repeated=True),
            _field("outputs", 2, _MESSAGE, ".tensorflow.SignatureDef.OutputsEntry", repeated=True),
            _field("method_name", 3, _STRING),
            _field("defaults", 4, _MESSAGE, ".tensorflow.SignatureDef.DefaultsEntry", repeated=True),
            nested=(
                _map_entry("InputsEntry", _MESSAGE, _TENSOR_INFO),
                _map_entry("OutputsEntry", _MESSAGE, _TENSOR_INFO),
                _map_entry("DefaultsEntry", _MESSAGE, _TENSOR),
            ),
        ),
    ),
)

MODEL = _file(
    "tensorflow_serving/apis/model.proto",
    "tensorflow.serving",
    deps=("google/protobuf/wrappers.proto",),
    messages=(
        _message(
            "ModelSpec",
            _field("name", 1, _STRING),
            _field("version", 2, _MESSAGE, ".google.protobuf.Int64Value", oneof=0),
            _field("version_label", 4, _STRING, oneof=0),
            _field("signature_name", 3, _STRING),
            oneofs=("version_choice",),
        ),
    ),
)

PREDICT = _file(
    "tensorflow_serving/apis/predict.proto",
    "tensorflow.serving",
    deps=(TENSOR.name, MODEL.name),
    messages=(
        _message(
            "PredictRequest",
            _field("model_spec", 1, _MESSAGE, _SPEC),
            _field("inputs", 2, _MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry", repeated=True),
            _field("output_filter", 3, _STRING, repeated=True),
            nested=(_map_entry("InputsEntry", _MESSAGE, _TENSOR),),
        ),
        _message(
            "PredictResponse",
            _field("model_spec", 2, _MESSAGE, _SPEC),
            _field("outputs", 1, _MESSAGE, ".tensorflow.serving.PredictResponse.OutputsEntry", repeated=True),
            nested=(_map_entry("OutputsEntry", _MESSAGE, _TENSOR),),
        ),
    ),
)

GET_MODEL_METADATA = _file(
    "tensorflow_serving/apis/get_model_metadata.proto",
    "tensorflow.serving",
    deps=("google/protobuf/any.proto", META_GRAPH.name, MODEL.name),
    messages=(
        _message(
            "SignatureDefMap",
            _field(
                "signature_def",
                1,
                _MESSAGE,
                ".tensorflow.serving.SignatureDefMap.SignatureDefEntry",
                repeated=True,
            ),
            nested=(_map_entry("SignatureDefEntry", _MESSAGE, ".tensorflow.SignatureDef"),),
        ),
        _message(
            "GetModelMetadataRequest",
            _field("model_spec", 1, _MESSAGE, _SPEC),
            _field("metadata_field", 2, _STRING, repeated=True),
        ),
        _message(
            "GetModelMetadataResponse",
            _field("model_spec", 1, _MESSAGE, _SPEC),
            _field(
                "metadata",
                2,
                _MESSAGE,
                ".tensorflow.serving.GetModelMetadataResponse.MetadataEntry",
                repeated=True,
            ),
            nested=(_map_entry("MetadataEntry", _MESSAGE, ".google.protobuf.Any"),),
        ),
    ),
)

STATUS = _file(
    "tensorflow_serving/apis/status.proto",
    "tensorflow.serving",
    deps=(ERROR_CODES.name,),
    messages=(
        _message(
            "StatusProto",
            _field("error_code", 1, _ENUM, ".tensorflow.error.Code"),
            _field("error_message", 2, _STRING),
        ),
    ),
)

GET_MODEL_STATUS = _file(
    "tensorflow_serving/apis/get_model_status.proto",
    "tensorflow.serving",
    deps=(MODEL.name, STATUS.name),
    messages=(
        _message("GetModelStatusRequest", _field("model_spec", 1, _MESSAGE, _SPEC)),
        _message(
            "ModelVersionStatus",
            _field("version", 1, _INT64),
            _field("state", 2, _ENUM, ".tensorflow.serving.ModelVersionStatus.State"),
            _field("status", 3, _MESSAGE, ".tensorflow.serving.StatusProto"),
            enums=(
                _enum(
                    "State",
                    [
                        ("UNKNOWN", 0),
                        ("START", 10),
                        ("LOADING", 20),
                        ("AVAILABLE", 30),
                        ("UNLOADING", 40),
                        ("END", 50),
                    ],
                ),
            ),
        ),
        _message(
            "GetModelStatusResponse",
            _field(
                "model_version_status", 1, _MESSAGE, ".tensorflow.serving.ModelVersionStatus", repeated=True
            ),
        ),
    ),
)

# In dependency order, for DescriptorPool.Add.
FILES = (
    TYPES,
    TENSOR_SHAPE,
    RESOURCE_HANDLE,
    TENSOR,
    ERROR_CODES,
    META_GRAPH,
    MODEL,
    PREDICT,
    GET_MODEL_METADATA,
    STATUS,
    GET_MODEL_STATUS,
)


def serialized_files() -> tuple[bytes, ...]:
    """FILES as the bytes ``DescriptorPool.AddSerializedFile`` takes (what protoc embeds in *_pb2)."""
    return tuple(proto.SerializeToString(deterministic=True) for proto in FILES)


def render_descriptors_module() -> str:
    """The source of client/_proto_descriptors.py: FILES serialized, so a client need not build them."""
    lines = [
        '"""FILES of client/_proto_schema.py, serialized by ``python -m client._proto_schema``.',
        "",
        "Loading these bytes spares every client start the import of descriptor_pb2 and the building",
        "of the descriptors (about 15 ms). Do not edit: change _proto_schema.py and run the command",
        "again; tests/test_client_protos.py fails while the two differ.",
        '"""',
        "",
        "FILES = (",
    ]
    for blob in serialized_files():
        lines.append("    (")
        chunk = b""
        for byte in blob:  # lines of at most 100 characters, escapes included
            if len(repr(chunk + bytes([byte]))) > 92:
                lines.append(f"        {chunk!r}")
                chunk = b""
            chunk += bytes([byte])
        lines += [f"        {chunk!r}", "    ),"]
    lines.append(")")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).with_name("_proto_descriptors.py")
    temporary = target.with_suffix(".tmp")
    temporary.write_text(render_descriptors_module())
    temporary.replace(target)
    print(f"wrote {target}")
