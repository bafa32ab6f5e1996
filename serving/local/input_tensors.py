"""A request's input TensorProto as the array fed to the session, whatever its dtype.

TF Serving decodes every input with ``Tensor::FromProto`` and leaves dtypes to the session, which
refuses a feed of the wrong one in its own words (``Expects arg[0] to be float but bfloat16 is
provided``). The dtypes plain numpy holds go through ``client.tensors`` (the shared codec, a view
of the request's bytes); the others (strings, bfloat16, complex, quantized, float8, int4, ...) are
decoded by TensorFlow's own parser, ``ParseTensor``, which runs ``Tensor::FromProto`` itself, and
fed as the numpy types TensorFlow converts back (object arrays of bytes, ml_dtypes, the quantized
record dtypes). Their value fields are bounded by the same budget before TensorFlow allocates.
"""

from __future__ import annotations

import math

import numpy as np

from client.tensors import (
    TensorBudget,
    TensorDecodeError,
    check_allocation,
    check_numpy_rank,
    from_tensor_proto,
    has_numpy_dtype,
    valid_shape,
)
from export.quiet_tensorflow import import_tensorflow

# What one decoded string costs beyond its bytes: TensorFlow's tstring, the numpy object pointer
# and the Python bytes object that carry it to the session.
STRING_OVERHEAD = 96


class TensorNotFeedable(TensorDecodeError):
    """TensorFlow decodes the tensor, but its dtype has no numpy form to feed the session with."""


def decode_input(proto, content: memoryview | None, name: str, budget: TensorBudget) -> np.ndarray:
    """The array Tensor::FromProto makes of an input, in the form the session takes.

    Raises:
        TensorDecodeError: where Tensor::FromProto fails.
        TensorRankUnsupported: a valid shape of more dimensions than numpy arrays have.
        TensorNotFeedable: a resource or variant tensor.
        TensorTooLarge: where expanding a value field would pass the budget.
    """
    if has_numpy_dtype(proto.dtype):
        return from_tensor_proto(proto, content, name=name, budget=budget)
    return _parsed_by_tensorflow(proto, content, name, budget)


def _parsed_by_tensorflow(proto, content: memoryview | None, name: str, budget: TensorBudget) -> np.ndarray:
    tf = import_tensorflow()
    shape = valid_shape(tuple(dim.size for dim in proto.tensor_shape.dim))
    try:
        dtype = tf.as_dtype(proto.dtype)
    except TypeError:
        raise TensorDecodeError(f"unknown tensor dtype {proto.dtype}") from None
    if dtype in (tf.resource, tf.variant):
        raise TensorNotFeedable(f"{name} is a {dtype.name} tensor")
    check_numpy_rank(name, shape)
    numpy_type = np.dtype(dtype.as_numpy_dtype)
    check_allocation(name, shape, numpy_type)
    if content is not None:
        proto = _with_content(proto, content)
    _check_budget(proto, name, shape, numpy_type, budget)
    try:
        tensor = tf.raw_ops.ParseTensor(serialized=proto.SerializeToString(), out_type=dtype)
    except tf.errors.OpError:
        raise TensorDecodeError(f"{name}: TensorFlow cannot parse it") from None
    array = tensor.numpy()
    if array.dtype != numpy_type:  # quantized dtypes come back as their plain integers
        array = array.view(numpy_type)
    return array


def _with_content(proto, content: memoryview):
    whole = type(proto)()
    whole.CopyFrom(proto)
    whole.tensor_content = bytes(content)
    return whole


def _check_budget(proto, name: str, shape: tuple[int, ...], numpy_type: np.dtype, budget) -> None:
    """What TensorFlow's decoder would allocate, against the budget, before it does.

    Fixed-width tensor_content is checked against the shape before anything is allocated
    (Helper<T>::Decode), so only value fields expand; but strings are allocated one per element
    first either way, and a repeated string_val value is copied into each.
    """
    content = proto.tensor_content
    if not numpy_type.hasobject:
        if not content:
            budget.check(name, shape, numpy_type)
        return
    count = math.prod(shape)
    if content:
        nbytes = len(content)
    else:
        given = list(proto.string_val[:count])
        nbytes = sum(map(len, given)) + (count - len(given)) * (len(given[-1]) if given else 0)
    budget.check_bytes(name, shape, count * STRING_OVERHEAD + nbytes)
