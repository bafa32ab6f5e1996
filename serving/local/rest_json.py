"""JSON <-> tensors for the REST API, with the rules and error words of TF Serving's util/json_tensor.cc.

TF Serving parses with rapidjson, so parse errors read ``JSON Parse error: <rapidjson's message>
at offset: <n>``, a value of the wrong type reads ``JSON Value: <value> Type: <JSON type> is not
of expected type: <dtype>``, and anything after the top-level object is ignored. Numbers go
through numpy in one call when the nested lists are dense and numeric; only a request with
``true``/``false``/``null``, strings or ragged lists is walked value by value, in TF Serving's
order, to name the first offending value exactly as it does. Floats are written as TF Serving
writes them: six significant digits when that reads back as the same float, else full precision,
and ``.0`` on whole numbers.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
from tensorflow.core.framework import types_pb2

from serving.local.errors import InvalidRequest

MAX_RANK = 32  # numpy's limit; TensorFlow's own is 254, far beyond any real request
_DEBUG_LIMIT = 256  # kMaxJsonDebugStringBytes: values in error messages are cut after this many bytes
_DTYPE_NAMES = {  # DataTypeString()
    types_pb2.DT_FLOAT: "float", types_pb2.DT_DOUBLE: "double", types_pb2.DT_INT32: "int32",
    types_pb2.DT_INT16: "int16", types_pb2.DT_INT8: "int8", types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_INT64: "int64", types_pb2.DT_BOOL: "bool", types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64", types_pb2.DT_STRING: "string", types_pb2.DT_HALF: "half",
}
_INT_RANGES = {  # rapidjson's IsInt / IsInt64 / IsUint / IsUint64 for each integer dtype
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1), types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1), types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1), types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}
_NUMPY = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64, types_pb2.DT_INT32: np.int32,
          types_pb2.DT_INT16: np.int16, types_pb2.DT_INT8: np.int8, types_pb2.DT_UINT8: np.uint8,
          types_pb2.DT_INT64: np.int64, types_pb2.DT_UINT32: np.uint32, types_pb2.DT_UINT64: np.uint64,
          types_pb2.DT_BOOL: np.bool_}
_PARSE_ERRORS = {  # Python's json message -> rapidjson's GetParseError_En
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MAYBE_HUGE = re.compile(rb"[0-9]{309}|[eE]\+?0*[1-9][0-9]{2}")
_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"?')
_LITERALS = re.compile(rb"true|false|null")


def parse_error(message: str, offset: int) -> InvalidRequest:
    return InvalidRequest(f"JSON Parse error: {message} at offset: {offset}")


def parse_object(raw: bytes) -> dict:
    """The request's top-level JSON object, parsed as rapidjson with TF Serving's flags would."""
    if not raw:
        raise InvalidRequest("JSON Parse error: The document is empty")
    huge = _huge_number(raw)
    if huge is not None:  # rapidjson refuses what does not fit a double; Python would keep a big int
        raise parse_error("Number too big to be stored in double.", huge)
    text = raw.decode("utf-8", "replace")
    start = _WHITESPACE.match(text).end()
    if start == len(text):
        raise parse_error("The document is empty.", len(raw))
    try:
        document, _ = json.JSONDecoder().raw_decode(text, start)  # kParseStopWhenDoneFlag: rest ignored
    except json.JSONDecodeError as exc:
        raise parse_error(_rapidjson_message(exc), len(text[: exc.pos].encode())) from None
    except RecursionError:
        raise InvalidRequest("JSON Parse error: nested too deeply (a tensor has at most "
                             f"{MAX_RANK} dimensions)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidRequest(f"JSON Parse error: {exc}") from None
    if not isinstance(document, dict):
        raise format_error(document, "Is not object")
    return document


def _huge_number(raw: bytes) -> int | None:
    if _MAYBE_HUGE.search(raw) is None:
        return None
    for match in _NUMBER.finditer(raw):
        if len(match[0]) > 300 or b"e" in match[0] or b"E" in match[0]:
            try:
                if math.isinf(float(match[0])):
                    return match.start()
            except (ValueError, OverflowError):
                return match.start()
    return None


def _rapidjson_message(exc: json.JSONDecodeError) -> str:
    if exc.msg == "Expecting ',' delimiter":
        return ("Missing a comma or '}' after an object member." if _innermost(exc.doc[: exc.pos]) == "{"
                else "Missing a comma or ']' after an array element.")
    return _PARSE_ERRORS.get(exc.msg, "Invalid value.")


def _innermost(text: str) -> str:
    stack: list[str] = []
    for bracket in re.findall(r"[\[\]{}]", _STRINGS.sub('""', text)):
        if bracket in "[{":
            stack.append(bracket)
        elif stack:
            stack.pop()
    return stack[-1] if stack else "["


# --- how TF Serving prints a JSON value inside an error message -------------------------------

def json_type(value) -> str:
    """rapidjson's type name (JsonTypeString)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _scalar_text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        return re.sub(r"e([-+])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], text)
    return str(value)


def debug_string(value) -> str:
    """JsonValueToDebugString: rapidjson's pretty writer, arrays on one line, cut after 256 bytes."""
    out: list[str] = []
    size = 0
    stack = [(value, 0, "")]
    while stack:
        item, depth, prefix = stack.pop()
        if size >= _DEBUG_LIMIT:
            break
        if isinstance(item, _Close):
            piece = prefix + item.text
        elif isinstance(item, list):
            piece = prefix + "["
            stack.append((_Close("]"), depth, ""))
            stack.extend((element, depth + 1, ", " if index else "")
                         for index, element in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            piece = prefix + "{"
            indent = "    " * (depth + 1)
            stack.append((_Close("\n" + "    " * depth + "}" if item else "}"), depth, ""))
            for index, (key, element) in reversed(list(enumerate(item.items()))):
                separator = ",\n" if index else "\n"
                stack.append((element, depth + 1, separator + indent + _scalar_text(str(key)) + ": "))
        else:
            piece = prefix + _scalar_text(item)
        out.append(piece)
        size += len(piece.encode())
    return "".join(out)


class _Close:
    def __init__(self, text: str):
        self.text = text


def format_error(value, *words: str) -> InvalidRequest:
    """FormatError: 'JSON Value: <value> <words>'."""
    return InvalidRequest(f"JSON Value: {debug_string(value)} " + "".join(words))


def type_error(value, dtype: int) -> InvalidRequest:
    return InvalidRequest(f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
                          f"is not of expected type: {_DTYPE_NAMES.get(dtype, str(dtype))}")


# --- JSON value -> numpy array (FillTensorProto) ----------------------------------------------

def dense_shape(value) -> tuple[int, ...]:
    """GetDenseTensorShape: the sizes down the first element of each nested list."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if len(dims) > MAX_RANK:
            raise InvalidRequest(f"JSON Value: nested more than {MAX_RANK} lists deep; a tensor has at most "
                                 f"{MAX_RANK} dimensions")
        value = value[0] if value else None
    return tuple(dims)


def tensor_from_json(value, dtype: int, literals: bool) -> np.ndarray:
    """The tensor a JSON value stands for, checked as FillTensorProto checks it.

    literals: the request body holds true/false/null somewhere, so numpy's own conversion (which
    turns true into 1) cannot be trusted to have seen only numbers.
    """
    if dtype not in _NUMPY:
        raise InvalidRequest(f"Conversion of JSON Value: {debug_string(value)} to type: "
                             f"{_DTYPE_NAMES.get(dtype, str(dtype))} is not supported by this server")
    shape = dense_shape(value)
    if not literals and dtype != types_pb2.DT_BOOL:
        fast = _numeric_array(value, shape, dtype)
        if fast is not None:
            return fast
    return _walk(value, shape, dtype)


def _numeric_array(value, shape: tuple[int, ...], dtype: int) -> np.ndarray | None:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.shape != shape:
        return None
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if array.dtype.kind not in "fiu":
            return None
        return array.astype(_NUMPY[dtype])
    if array.dtype.kind not in "iu" or not array.size:
        return None if array.size else np.zeros(shape, _NUMPY[dtype])
    low, high = _INT_RANGES[dtype]
    if int(array.min()) < low or int(array.max()) > high:
        return None
    return array.astype(_NUMPY[dtype])  # as Tensor::FromProto narrows int_val to the dtype


def _walk(value, shape: tuple[int, ...], dtype: int) -> np.ndarray:
    """FillTensorProto, depth first in document order, so the first bad value is the one named."""
    rank = len(shape)
    values = []
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, list):
            if level != rank:
                raise InvalidRequest(f"JSON Value: {debug_string(item)} found at incorrect level: "
                                     f"{level + 1} in the JSON DOM. Expected at level: {rank}")
            values.append(_leaf(item, dtype))
            continue
        if level >= rank:
            raise InvalidRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(item) != shape[level]:
            raise InvalidRequest(f"Encountered list at unexpected size: {len(item)} at level: {level} "
                                 f"expected size: {shape[level]}")
        stack.extend((element, level + 1) for element in reversed(item))
    return np.asarray(values, dtype=_NUMPY[dtype]).reshape(shape)


def _leaf(item, dtype: int):
    if dtype == types_pb2.DT_BOOL:
        if isinstance(item, bool):
            return item
        raise type_error(item, dtype)
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise type_error(item, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        return float(item)
    low, high = _INT_RANGES[dtype]
    if not isinstance(item, int) or not low <= item <= high:
        raise type_error(item, dtype)
    return item


def has_literals(raw: bytes) -> bool:
    """The body spells true, false or null somewhere (maybe only inside a string)."""
    return _LITERALS.search(raw) is not None


# --- numpy array -> JSON text (MakeJsonFromTensors) ---------------------------------------------

def _decimal(value: float, digits: int, narrow) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:.6g}"
    if narrow(float(text)) != narrow(value):
        text = f"{value:.{digits}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _texts(array: np.ndarray) -> np.ndarray:
    """Each value's JSON text, formatting each distinct value once (masks have two)."""
    flat = array.reshape(-1)
    if array.dtype == np.bool_:
        return np.where(flat, "true", "false").astype(object).reshape(array.shape)
    if not flat.size:
        return np.empty(array.shape, dtype=object)
    distinct, inverse = np.unique(flat, return_inverse=True)
    if array.dtype == np.float32:
        words = [_decimal(float(v), 9, np.float32) for v in distinct]
    elif array.dtype.kind == "f":
        words = [_decimal(float(v), 17, float) for v in distinct]
    else:
        words = [str(int(v)) for v in distinct]
    return np.asarray(words, dtype=object)[inverse.reshape(-1)].reshape(array.shape)


def _nested(texts: np.ndarray) -> str:
    if texts.ndim == 0:
        return texts.item()
    if texts.ndim == 1:
        return "[" + ", ".join(texts.tolist()) + "]"
    return "[" + ", ".join(_nested(row) for row in texts) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{json.dumps(key)}: {text}" for key, text in pairs) + "}"


def outputs_json(outputs: dict[str, np.ndarray], row_format: bool) -> bytes:
    """{"predictions": ...} (row format) or {"outputs": ...} (columnar), as MakeJsonFromTensors writes."""
    if not outputs:
        raise InvalidRequest("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            body = _nested(_texts(outputs[names[0]]))
        else:
            body = _object([(name, _nested(_texts(outputs[name]))) for name in names])
        return ('{"outputs": ' + body + "}").encode()
    batch = -1
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise InvalidRequest(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise InvalidRequest(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                                 f"expecting: {batch}")
        batch = array.shape[0]
    texts = {name: _texts(outputs[name]) for name in names}
    if len(names) == 1:
        rows = [_nested(row) for row in texts[names[0]]]
    else:
        rows = [_object([(name, _nested(texts[name][index])) for name in names]) for index in range(batch)]
    return ('{"predictions": [' + ", ".join(rows) + "]}").encode()
