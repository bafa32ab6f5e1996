"""client.protos speaks TF Serving's bytes: byte-for-byte what tensorflow-serving-api writes and reads.

Specification: tensorflow-serving-api's generated classes (compiled from
tensorflow_serving/apis/{predict,model,get_model_metadata,get_model_status,status}.proto and
tensorflow/core/framework/{tensor,tensor_shape,types,resource_handle}.proto,
tensorflow/core/protobuf/meta_graph.proto). Both sets of classes live in this one process,
with TensorFlow imported: ours in their own descriptor pool, theirs in the default one.
"""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import (
    resource_handle_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorflow.core.protobuf import meta_graph_pb2, struct_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    status_pb2,
)

from client import _proto_schema, protos
from tests.support.processes import PYTHON, REPO, cli_env

OURS = protos
THEIRS = types.SimpleNamespace(
    types_pb2=types_pb2,
    tensor_shape_pb2=tensor_shape_pb2,
    resource_handle_pb2=resource_handle_pb2,
    tensor_pb2=tensor_pb2,
    meta_graph_pb2=meta_graph_pb2,
    model_pb2=model_pb2,
    predict_pb2=predict_pb2,
    get_model_metadata_pb2=get_model_metadata_pb2,
    status_pb2=status_pb2,
    get_model_status_pb2=get_model_status_pb2,
)

# Fields of TF Serving's messages that client.protos leaves out on purpose (see client/_proto_schema.py):
# a server's TensorInfo never needs composite_tensor here, and the client never sends the others.
OMITTED = {
    "tensorflow.TensorInfo": {"composite_tensor"},
    "tensorflow.serving.PredictRequest": {"predict_streamed_options", "client_id", "request_options"},
}


def _messages(descriptor):
    yield descriptor
    for nested in descriptor.nested_types:
        yield from _messages(nested)


def _our_messages():
    for file_proto in _proto_schema.FILES:
        file = protos.predict_pb2.DESCRIPTOR.pool.FindFileByName(file_proto.name)
        for message in file.message_types_by_name.values():
            yield from _messages(message)


def _field_key(field):
    return (
        field.name,
        field.number,
        field.type,
        field.is_repeated,
        field.has_presence,
        field.message_type.full_name if field.message_type else None,
        field.enum_type.full_name if field.enum_type else None,
        field.containing_oneof.name if field.containing_oneof else None,
    )


@pytest.mark.parametrize("ours", list(_our_messages()), ids=lambda d: d.full_name)
def test_every_message_has_tf_servings_fields_and_numbers(ours):
    theirs = descriptor_pool.Default().FindMessageTypeByName(ours.full_name)
    assert ours is not theirs and ours.file.pool is not descriptor_pool.Default()
    assert {f.name: _field_key(f) for f in ours.fields} == {
        f.name: _field_key(f) for f in theirs.fields if f.name not in OMITTED.get(ours.full_name, ())
    }
    for field in ours.fields:
        if field.enum_type is not None:
            assert {v.name: v.number for v in field.enum_type.values} == {
                v.name: v.number for v in theirs.fields_by_name[field.name].enum_type.values
            }


def test_the_omitted_fields_are_last_so_unknown_fields_keep_their_place():
    # An omitted field comes back as an unknown field, written after the known ones; it keeps the
    # bytes identical only if TF Serving numbers it after every field we define.
    for name, omitted in OMITTED.items():
        theirs = descriptor_pool.Default().FindMessageTypeByName(name)
        kept = [f.number for f in theirs.fields if f.name not in omitted]
        assert min(theirs.fields_by_name[field].number for field in omitted) > max(kept), name


# --- the same data built with both sets of classes ---------------------------------------------

_DTYPES = st.sampled_from([v.number for v in types_pb2.DataType.DESCRIPTOR.values])
_NAMES = st.text(max_size=8)
_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_UINT32 = st.integers(0, 2**32 - 1)
_UINT64 = st.integers(0, 2**64 - 1)
_FLOAT32 = st.floats(width=32, allow_nan=False)
_DOUBLE = st.floats(allow_nan=False)
_SHAPES = st.fixed_dictionaries(
    {"dim": st.lists(st.tuples(st.integers(-1, 2**40), _NAMES), max_size=4), "unknown_rank": st.booleans()}
)
_VALUE_FIELDS = {
    "float_val": _FLOAT32,
    "double_val": _DOUBLE,
    "int_val": _INT32,
    "half_val": _INT32,
    "string_val": st.binary(max_size=8),
    "scomplex_val": _FLOAT32,
    "int64_val": _INT64,
    "bool_val": st.booleans(),
    "dcomplex_val": _DOUBLE,
    "uint32_val": _UINT32,
    "uint64_val": _UINT64,
}
_RESOURCE_HANDLES = st.fixed_dictionaries(
    {
        "device": _NAMES,
        "container": _NAMES,
        "name": _NAMES,
        "hash_code": _UINT64,
        "maybe_type_name": _NAMES,
        "dtypes_and_shapes": st.lists(st.tuples(_DTYPES, _SHAPES), max_size=2),
    }
)


def _tensors(depth: int = 1):
    variants = (
        st.lists(
            st.fixed_dictionaries(
                {
                    "type_name": _NAMES,
                    "metadata": st.binary(max_size=8),
                    "tensors": st.lists(_tensors(depth - 1), max_size=2),
                }
            ),
            max_size=2,
        )
        if depth
        else st.just([])
    )
    return st.fixed_dictionaries(
        {
            "dtype": _DTYPES,
            "tensor_shape": _SHAPES,
            "version_number": _INT32,
            "tensor_content": st.binary(max_size=32),
            "float8_val": st.binary(max_size=4),
            "resource_handle_val": st.lists(_RESOURCE_HANDLES, max_size=2),
            "variant_val": variants,
        },
        optional={name: st.lists(values, max_size=6) for name, values in _VALUE_FIELDS.items()},
    )


_SPECS = st.fixed_dictionaries(
    {"name": _NAMES, "signature_name": _NAMES, "version": st.one_of(st.none(), _INT64, _NAMES)}
)
_TENSOR_INFOS = st.fixed_dictionaries(
    {
        "encoding": st.one_of(_NAMES, st.tuples(_NAMES, _NAMES, _NAMES)),  # name or coo_sparse
        "dtype": _DTYPES,
        "tensor_shape": _SHAPES,
    }
)
_SIGNATURES = st.fixed_dictionaries(
    {
        "inputs": st.dictionaries(_NAMES, _TENSOR_INFOS, max_size=2),
        "outputs": st.dictionaries(_NAMES, _TENSOR_INFOS, max_size=3),
        "method_name": st.sampled_from(["tensorflow/serving/predict", "tensorflow/serving/classify", ""]),
        "defaults": st.dictionaries(_NAMES, _tensors(0), max_size=1),
    }
)


def _shape(ns, message, data):
    for size, name in data["dim"]:
        message.dim.add(size=size, name=name)
    message.unknown_rank = data["unknown_rank"]


def _tensor(ns, message, data):
    message.dtype, message.version_number = data["dtype"], data["version_number"]
    message.tensor_content, message.float8_val = data["tensor_content"], data["float8_val"]
    _shape(ns, message.tensor_shape, data["tensor_shape"])
    for name in _VALUE_FIELDS:
        getattr(message, name).extend(data.get(name, []))
    for handle in data["resource_handle_val"]:
        added = message.resource_handle_val.add(
            device=handle["device"],
            container=handle["container"],
            name=handle["name"],
            hash_code=handle["hash_code"],
            maybe_type_name=handle["maybe_type_name"],
        )
        for dtype, shape in handle["dtypes_and_shapes"]:
            pair = added.dtypes_and_shapes.add(dtype=dtype)
            _shape(ns, pair.shape, shape)
    for variant in data["variant_val"]:
        added = message.variant_val.add(type_name=variant["type_name"], metadata=variant["metadata"])
        for tensor in variant["tensors"]:
            _tensor(ns, added.tensors.add(), tensor)
    return message


def _spec(message, data):
    message.name, message.signature_name = data["name"], data["signature_name"]
    if isinstance(data["version"], int):
        message.version.value = data["version"]
    elif isinstance(data["version"], str):
        message.version_label = data["version"]


def _tensor_info(ns, message, data):
    if isinstance(data["encoding"], str):
        message.name = data["encoding"]
    else:
        values, indices, dense_shape = data["encoding"]
        message.coo_sparse.values_tensor_name = values
        message.coo_sparse.indices_tensor_name = indices
        message.coo_sparse.dense_shape_tensor_name = dense_shape
    message.dtype = data["dtype"]
    _shape(ns, message.tensor_shape, data["tensor_shape"])


def predict_request(ns, data):
    message = ns.predict_pb2.PredictRequest(output_filter=data["output_filter"])
    _spec(message.model_spec, data["spec"])
    for key, tensor in data["tensors"].items():
        _tensor(ns, message.inputs[key], tensor)
    return message


def predict_response(ns, data):
    message = ns.predict_pb2.PredictResponse()
    _spec(message.model_spec, data["spec"])
    for key, tensor in data["tensors"].items():
        _tensor(ns, message.outputs[key], tensor)
    return message


def signature_def_map(ns, signatures):
    message = ns.get_model_metadata_pb2.SignatureDefMap()
    for name, data in signatures.items():
        signature = message.signature_def[name]
        signature.method_name = data["method_name"]
        for side in ("inputs", "outputs"):
            for key, info in data[side].items():
                _tensor_info(ns, getattr(signature, side)[key], info)
        for key, tensor in data["defaults"].items():
            _tensor(ns, signature.defaults[key], tensor)
    return message


def metadata_response(ns, data):
    message = ns.get_model_metadata_pb2.GetModelMetadataResponse()
    _spec(message.model_spec, data["spec"])
    message.metadata["signature_def"].Pack(signature_def_map(ns, data["signatures"]))
    return message


def metadata_request(ns, data):
    message = ns.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=data["fields"])
    _spec(message.model_spec, data["spec"])
    return message


def status_response(ns, data):
    message = ns.get_model_status_pb2.GetModelStatusResponse()
    for version, state, code, text in data["versions"]:
        status = message.model_version_status.add(version=version, state=state)
        status.status.error_code, status.status.error_message = code, text
    return message


def status_request(ns, data):
    message = ns.get_model_status_pb2.GetModelStatusRequest()
    _spec(message.model_spec, data["spec"])
    return message


_STATES = st.sampled_from([v.number for v in get_model_status_pb2.ModelVersionStatus.State.DESCRIPTOR.values])
_CODES = st.sampled_from(
    [v.number for v in status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type.values]
)
CASES = {
    predict_request: st.fixed_dictionaries(
        {
            "spec": _SPECS,
            "tensors": st.dictionaries(_NAMES, _tensors(), max_size=2),
            "output_filter": st.lists(_NAMES, max_size=3),
        }
    ),
    predict_response: st.fixed_dictionaries(
        {"spec": _SPECS, "tensors": st.dictionaries(_NAMES, _tensors(), max_size=3)}
    ),
    metadata_request: st.fixed_dictionaries({"spec": _SPECS, "fields": st.lists(_NAMES, max_size=2)}),
    metadata_response: st.fixed_dictionaries(
        {"spec": _SPECS, "signatures": st.dictionaries(_NAMES, _SIGNATURES, max_size=3)}
    ),
    status_request: st.fixed_dictionaries({"spec": _SPECS}),
    status_response: st.fixed_dictionaries(
        {"versions": st.lists(st.tuples(_INT64, _STATES, _CODES, _NAMES), max_size=3)}
    ),
}


@pytest.mark.parametrize("build", list(CASES), ids=lambda build: build.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_both_sets_of_classes_write_and_read_the_same_bytes(build, data):
    values = data.draw(CASES[build])
    ours, theirs = build(OURS, values), build(THEIRS, values)
    assert type(ours) is not type(theirs)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    assert type(theirs).FromString(ours.SerializeToString()) == theirs  # ours -> TF Serving
    assert type(ours).FromString(theirs.SerializeToString()) == ours  # TF Serving -> ours


@settings(max_examples=40, deadline=None)
@given(signatures=st.dictionaries(_NAMES, _SIGNATURES, min_size=1, max_size=3))
def test_a_signature_def_map_packed_by_tf_serving_unpacks_into_ours(signatures):
    theirs = metadata_response(
        THEIRS, {"spec": {"name": "m", "signature_name": "", "version": 1}, "signatures": signatures}
    )
    ours = protos.get_model_metadata_pb2.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    unpacked = protos.get_model_metadata_pb2.SignatureDefMap()
    assert ours.metadata["signature_def"].Unpack(unpacked)
    assert unpacked == signature_def_map(OURS, signatures)


def test_a_composite_tensor_signature_passes_through_unchanged():
    """TensorInfo.composite_tensor (meta_graph.proto) is not defined here: it survives as unknown bytes."""
    theirs = get_model_metadata_pb2.SignatureDefMap()
    info = theirs.signature_def["ragged"].inputs["x"]
    info.composite_tensor.type_spec.type_spec_class = struct_pb2.TypeSpecProto.RAGGED_TENSOR_SPEC
    info.composite_tensor.type_spec.type_spec_class_name = "RaggedTensorSpec"
    info.composite_tensor.components.add(name="values:0", dtype=types_pb2.DT_FLOAT)
    info.dtype = types_pb2.DT_FLOAT
    info.tensor_shape.dim.add(size=-1)
    wire = theirs.SerializeToString()
    ours = protos.get_model_metadata_pb2.SignatureDefMap.FromString(wire)
    assert ours.signature_def["ragged"].inputs["x"].dtype == protos.types_pb2.DT_FLOAT
    assert ours.SerializeToString() == wire


def test_tensorflows_default_pool_keeps_its_own_classes():
    default = descriptor_pool.Default()
    assert default.FindMessageTypeByName("tensorflow.TensorProto") is tensor_pb2.TensorProto.DESCRIPTOR
    assert protos.tensor_pb2.TensorProto.DESCRIPTOR.full_name == "tensorflow.TensorProto"
    assert protos.tensor_pb2.TensorProto is not tensor_pb2.TensorProto


OURS_THEN_TENSORFLOW = """
from client.protos import predict_pb2, types_pb2
ours = predict_pb2.PredictRequest()
ours.inputs["x"].dtype = types_pb2.DT_FLOAT
from tensorflow_serving.apis import predict_pb2 as theirs
assert theirs.PredictRequest.FromString(ours.SerializeToString()).inputs["x"].dtype == 1
print("both loaded")
"""


def test_our_classes_first_then_tensorflows_in_one_process():
    # The other order from this module's (which imports TensorFlow first): neither pool may refuse the other.
    result = subprocess.run(
        [PYTHON, "-c", OURS_THEN_TENSORFLOW],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "both loaded" in result.stdout, result.stderr[-2000:]


def test_the_serialized_descriptors_are_the_schemas():
    """client/_proto_descriptors.py is what `python -m client._proto_schema` writes from the schema."""
    path = Path(_proto_schema.__file__).with_name("_proto_descriptors.py")
    assert path.read_text() == _proto_schema.render_descriptors_module(), (
        "client/_proto_schema.py changed: run python -m client._proto_schema"
    )
