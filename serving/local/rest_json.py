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
from dataclasses import dataclass

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2

from client.tensors import has_numpy_dtype, numpy_dtype
from serving.local import rapidjson_reader
from serving.local.errors import InvalidRequest, RequestError

MAX_RANK = 32  # numpy's limit; TensorFlow's own is 254, far beyond any real request
_DEBUG_LIMIT = 256  # kMaxJsonDebugStringBytes: values in error messages are cut after this many bytes
_INT_RANGES = {  # rapidjson's IsInt / IsInt64 / IsUint / IsUint64 for each integer dtype
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}
_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
}
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BIG_EXPONENT = re.compile(rb"[eE]\+?0*[1-9][0-9]{2}")
_LONG_DIGITS = re.compile(rb"(?<![0-9])[0-9]{309}")
_SCAN_CHUNK = 1 << 20
_ROWS_PER_CALL = 256
_HIGH_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")
_DECODER = json.JSONDecoder()
_STEP_DEPTH = 4  # deeper than this, values are parsed in one call (no batch is nested deeper)


def dtype_name(dtype: int) -> str:
    """DataTypeString: "float", "half", "bfloat16", "uint16", ... (the enum's name, lower case)."""
    try:
        return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return str(dtype)


class ConversionUnimplemented(RequestError):
    """AddValueToTensor has no case for the input's dtype (float16, bfloat16, uint16, ...)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class JsonParseError(InvalidRequest):
    """The body is not JSON rapidjson would read: reported as it is, never wrapped per instance."""


def parse_error(message: str, offset: int) -> JsonParseError:
    return JsonParseError(f"JSON Parse error: {message} at offset: {offset}")


def parse_object(raw: bytes) -> dict:
    """The request's top-level JSON object, read as rapidjson with TF Serving's flags reads it.

    json reads it; rapidjson's reader is asked only where the two can disagree: a body json refuses
    (rapidjson's words and offset, or the NaN/Inf spellings and byte-order mark json lacks) and a
    high-surrogate escape, which json takes alone and rapidjson only as the first of a pair.
    """
    if not raw:
        raise InvalidRequest("JSON Parse error: The document is empty")
    try:
        try:
            document = _read_with_json(raw)
        except _JsonRefused:
            document = _read_with_json(rapidjson_reader.read(raw).for_json(raw))
        else:
            if b"\\u" in raw and _HIGH_SURROGATE_ESCAPE.search(raw):
                rapidjson_reader.read(raw)
    except rapidjson_reader.RapidJsonError as error:
        raise parse_error(error.message, error.offset) from None
    except _JsonRefused as refused:  # rapidjson reads it, json cannot (e.g. nested past its recursion limit)
        raise InvalidRequest(f"JSON Parse error: {refused}") from None
    if not isinstance(document, dict):
        raise format_error(document, "Is not object")
    return document


class _JsonRefused(Exception):
    """json cannot read the body."""


def _read_with_json(raw: bytes):
    text = raw.decode("utf-8", "replace")
    start = _WHITESPACE.match(text).end()
    try:
        return _object_in_steps(text, start)
    except (ValueError, RecursionError, IndexError, _NotInSteps):
        pass  # parse it again in one go
    try:
        document, _ = _DECODER.raw_decode(text, start)  # kParseStopWhenDoneFlag: what follows is ignored
    except RecursionError:
        raise _JsonRefused(f"nested too deeply (a tensor has at most {MAX_RANK} dimensions)") from None
    except ValueError as exc:
        raise _JsonRefused(str(exc)) from None
    return document


class _NotInSteps(Exception):
    """The document is not what the stepwise parser expects; json parses it in one go instead."""


def _object_in_steps(text: str, start: int) -> dict:
    """The top-level object, parsed so that no single C call holds the GIL for long.

    json.loads never releases the GIL, so a large body parsed in one call stalls every other
    thread, gRPC handlers included. Here arrays of arrays (the rows of a batch) are parsed one
    element per call, and other threads get the GIL between elements.
    """
    document, _ = _value_in_steps(text, start, depth=0)
    return document


def _value_in_steps(text: str, index: int, depth: int):
    index = _WHITESPACE.match(text, index).end()
    opener = text[index : index + 1]
    if depth >= _STEP_DEPTH or opener not in ("{", "["):
        return _DECODER.raw_decode(text, index)
    if opener == "[":
        first = _WHITESPACE.match(text, index + 1).end()
        if text[first : first + 1] not in ("[", "{"):
            return _DECODER.raw_decode(text, index)  # numbers: one call for the row
        items, closer = [], "]"
    else:
        items, closer = {}, "}"
    index = _WHITESPACE.match(text, index + 1).end()
    if text[index : index + 1] == closer:
        return items, index + 1
    while True:
        if closer == "}":
            key, index = _DECODER.raw_decode(text, index)
            index = _WHITESPACE.match(text, index).end()
            if not isinstance(key, str) or text[index : index + 1] != ":":
                raise _NotInSteps
            items[key], index = _value_in_steps(text, index + 1, depth + 1)
        else:
            value, index = _value_in_steps(text, index, depth + 1)
            items.append(value)
        index = _WHITESPACE.match(text, index).end()
        separator = text[index : index + 1]
        if separator == closer:
            return items, index + 1
        if separator != ",":
            raise _NotInSteps
        index = _WHITESPACE.match(text, index + 1).end()


class JsonBody:
    """A request body and what is learnt about its text only when needed."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self._literals: bool | None = None
        self._huge_checked = False

    @property
    def literals(self) -> bool:
        """The body spells true, false or null somewhere (maybe only inside a string), so numpy's
        own conversion, which takes true for 1, cannot be trusted to have seen only numbers."""
        if self._literals is None:
            self._literals = b"true" in self.raw or b"false" in self.raw or b"null" in self.raw
        return self._literals

    def refuse_huge_numbers(self) -> None:
        """rapidjson's error for a number beyond a double (Python reads 1e400 as inf, 10**400 exactly)."""
        if self._huge_checked:
            return
        self._huge_checked = True
        offset = _huge_number(self.raw)
        if offset is not None:
            raise parse_error("Number too big to be stored in double.", offset)


def _huge_number(raw: bytes) -> int | None:
    """Where the first number rapidjson cannot store in a double starts, or None; the candidates (a
    three-digit exponent, 309 digits in a row) are found a chunk per call, then read as ParseNumber
    reads them."""
    for pattern in (_BIG_EXPONENT, _LONG_DIGITS):
        for start in range(0, len(raw), _SCAN_CHUNK):
            stop = min(len(raw), start + _SCAN_CHUNK)
            for match in pattern.finditer(raw, start, min(len(raw), stop + 400)):
                if match.start() >= stop:
                    break
                begin = match.start()
                while begin and raw[begin - 1 : begin] in b"0123456789.+-eE":
                    begin -= 1
                error = rapidjson_reader.number_error(raw, begin)
                if error is not None and error.message == rapidjson_reader.TOO_BIG:
                    return begin
    return None


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
            stack.extend(
                (element, depth + 1, ", " if index else "")
                for index, element in reversed(list(enumerate(item)))
            )
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
        size += len(utf8(piece))
    return "".join(out)


class _Close:
    def __init__(self, text: str):
        self.text = text


def format_error(value, *words: str) -> InvalidRequest:
    """FormatError: 'JSON Value: <value> <words>'."""
    return InvalidRequest(f"JSON Value: {debug_string(value)} " + "".join(words))


def type_error(value, dtype: int) -> InvalidRequest:
    return InvalidRequest(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


# --- JSON value -> numpy array (FillTensorProto) ----------------------------------------------


def dense_shape(value) -> tuple[int, ...]:
    """GetDenseTensorShape: the sizes down the first element of each nested list."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if len(dims) > MAX_RANK:
            raise InvalidRequest(
                f"JSON Value: nested more than {MAX_RANK} lists deep; a tensor has at most "
                f"{MAX_RANK} dimensions"
            )
        value = value[0] if value else None
    return tuple(dims)


def tensor_from_json(value, dtype: int, body: JsonBody, walk: bool = False) -> np.ndarray:
    """The tensor a JSON value of body stands for, checked as FillTensorProto checks it.

    walk: check value by value even where numpy could convert it at once.
    """
    if dtype == types_pb2.DT_STRING:
        raise InvalidRequest(
            f"Conversion of JSON Value: {debug_string(value)} to type: string is not supported by this server"
        )
    shape = dense_shape(value)
    if dtype not in _NUMPY:  # AddValueToTensor has no case for it: the first value reached fails
        return _walk(value, shape, dtype, body)
    if not walk and dtype != types_pb2.DT_BOOL and not body.literals:
        fast = _numeric_array(value, shape, dtype)
        if fast is not None:
            if fast.dtype.kind == "f" and not np.isfinite(fast).all():
                body.refuse_huge_numbers()
            return fast
    return _walk(value, shape, dtype, body)


def _numeric_array(value, shape: tuple[int, ...], dtype: int) -> np.ndarray | None:
    try:
        if len(shape) > 1 and shape[0] > _ROWS_PER_CALL:  # a block of rows per call: the GIL is shared
            blocks = [
                np.asarray(value[start : start + _ROWS_PER_CALL])
                for start in range(0, shape[0], _ROWS_PER_CALL)
            ]
            array = np.concatenate(blocks) if len({block.shape[1:] for block in blocks}) == 1 else None
        else:
            array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if array is None:
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


def _walk(value, shape: tuple[int, ...], dtype: int, body: JsonBody) -> np.ndarray:
    """FillTensorProto, depth first in document order, so the first bad value is the one named."""
    rank = len(shape)
    values = []
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, list):
            if level != rank:
                raise InvalidRequest(
                    f"JSON Value: {debug_string(item)} found at incorrect level: "
                    f"{level + 1} in the JSON DOM. Expected at level: {rank}"
                )
            values.append(_leaf(item, dtype, body))
            continue
        if level >= rank:
            raise InvalidRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(item) != shape[level]:
            raise InvalidRequest(
                f"Encountered list at unexpected size: {len(item)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        stack.extend((element, level + 1) for element in reversed(item))
    if dtype in _NUMPY:
        return np.asarray(values, dtype=_NUMPY[dtype]).reshape(shape)
    if has_numpy_dtype(dtype):  # no value, so nothing to convert: an empty tensor of that dtype
        return np.empty(shape, numpy_dtype(dtype))
    raise InvalidRequest(f"an empty tensor of type {dtype_name(dtype)} is not supported by this server")


def _leaf(item, dtype: int, body: JsonBody):
    if dtype not in _NUMPY:
        if isinstance(item, dict):
            raise type_error(item, dtype)
        body.refuse_huge_numbers()  # rapidjson refuses the whole body before any value is converted
        raise ConversionUnimplemented(
            f"Conversion of JSON Value: {debug_string(item)} to type: {dtype_name(dtype)}"
        )
    if dtype == types_pb2.DT_BOOL:
        if isinstance(item, bool):
            return item
        raise type_error(item, dtype)
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise type_error(item, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        try:
            number = float(item)
        except OverflowError:
            number = math.inf
        if math.isinf(number):
            body.refuse_huge_numbers()
        return number
    low, high = _INT_RANGES[dtype]
    if not isinstance(item, int) or not low <= item <= high:
        body.refuse_huge_numbers()  # 1e400 or 10**400: rapidjson refuses the whole body first
        raise type_error(item, dtype)
    return item


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


@dataclass(frozen=True)
class UnwrittenTensor:
    """An output of a dtype AddSingleValueAndAdvance has no case for (float16, bfloat16, uint16, ...):
    its shape is laid out as any other's, and writing its first value fails."""

    shape: tuple[int, ...]
    dtype: int

    @property
    def ndim(self) -> int:
        return len(self.shape)


def has_json_writer(dtype: int) -> bool:
    """Whether AddSingleValueAndAdvance has a case for dtype."""
    return dtype in _NUMPY or dtype == types_pb2.DT_STRING


def _texts(array: np.ndarray | UnwrittenTensor) -> np.ndarray:
    """Each value's JSON text, formatting each distinct value once (masks have two)."""
    if isinstance(array, UnwrittenTensor):
        if math.prod(array.shape):
            raise InvalidRequest(f"Failed to write JSON value for tensor type: {dtype_name(array.dtype)}")
        return np.empty(array.shape, dtype=object)
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


# rapidjson's PrettyWriter, as json_tensor.cc drives it: four spaces a level; rows of a row-format
# answer on one line (kFormatSingleLineArray), columnar answers one value per line.
_INDENT = "    "


def _nested(texts: np.ndarray | str) -> str:
    """A value on one line: [[0.0, 1.0], [1.0, 0.0]]."""
    if isinstance(texts, str):
        return texts
    if texts.ndim == 0:
        return texts.item()
    if texts.ndim == 1:
        return "[" + ", ".join(texts.tolist()) + "]"
    return "[" + ", ".join(_nested(row) for row in texts) + "]"


def _pretty(texts: np.ndarray, level: int) -> str:
    """A value one element per line, its elements at nesting level ``level``."""
    if texts.ndim == 0:
        return texts.item()
    if not texts.shape[0]:
        return "[]"
    inner = "\n" + _INDENT * level
    elements = texts.tolist() if texts.ndim == 1 else [_pretty(element, level + 1) for element in texts]
    return "[" + inner + ("," + inner).join(elements) + "\n" + _INDENT * (level - 1) + "]"


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def utf8(text: str) -> bytes:
    """text as rapidjson writes it: a lone surrogate (from a \\uDC00 escape, which rapidjson keeps)
    as the three bytes rapidjson's reader made of it."""
    return text.encode("utf-8", "surrogatepass")


def error_json(message: str) -> bytes:
    """MakeJsonFromStatus: the body of every failed request."""
    return utf8("{\n" + _INDENT + '"error": ' + _key(message) + "\n}")


def outputs_json(outputs: dict[str, np.ndarray | UnwrittenTensor], row_format: bool) -> bytes:
    """{"predictions": ...} (row format) or {"outputs": ...} (columnar), as MakeJsonFromTensors writes."""
    if not outputs:
        raise InvalidRequest("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            body = _pretty(_texts(outputs[names[0]]), 2)
        else:
            members = [f"\n{_INDENT * 2}{_key(name)}: {_pretty(_texts(outputs[name]), 3)}" for name in names]
            body = "{" + ",".join(members) + "\n" + _INDENT + "}"
        return ("{\n" + _INDENT + '"outputs": ' + body + "\n}").encode()
    batch = -1
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise InvalidRequest(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise InvalidRequest(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    texts = {name: _texts(outputs[name]) for name in names}
    if len(names) == 1:  # each row after SetFormatOptions(kFormatSingleLineArray): on one line
        rows = [_nested(row) for row in texts[names[0]]]
        lead = ""
    else:  # each row's StartObject comes before SetFormatOptions: on a line of its own
        lead = "\n" + _INDENT * 2
        rows = [
            "{"
            + ",".join(f"\n{_INDENT * 3}{_key(name)}: {_nested(texts[name][index])}" for name in names)
            + "\n"
            + _INDENT * 2
            + "}"
            for index in range(batch)
        ]
    predictions = "[" + lead + ("," + (lead or " ")).join(rows) + "\n" + _INDENT + "]" if rows else "[]"
    return ("{\n" + _INDENT + '"predictions": ' + predictions + "\n}").encode()
