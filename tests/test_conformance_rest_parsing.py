"""Request bodies are read as TF Serving reads them: rapidjson 1.1.0 with json_tensor.cc's flags.

TF Serving: tensorflow_serving/util/json_tensor.cc ParseJson (kParseIterativeFlag |
kParseNanAndInfFlag | kParseStopWhenDoneFlag over an EncodedInputStream<UTF8<>, MemoryStream>);
rapidjson v1.1.0 (the version tensorflow_serving/workspace.bzl pins) reader.h and error/en.h.
"""

from __future__ import annotations

import json

import pytest

from tests.support.rest_client import rest_answer

PREDICT = "/v1/models/threshold:predict"


def error_bytes(server, body: bytes) -> tuple[int, bytes]:
    """(HTTP status, the error message's bytes as sent): json.dumps would hide how a string is written."""
    answer = rest_answer(server.rest_port, "POST", PREDICT, body)
    prefix, suffix = b'{\n    "error": "', b'"\n}'
    assert answer.body.startswith(prefix) and answer.body.endswith(suffix), answer.body
    return answer.status, answer.body[len(prefix) : -len(suffix)]


@pytest.mark.parametrize(
    "body,offset",
    [
        (rb'{"signature_name": "\ud800", "instances": [[1]]}', 20),
        (rb'{"instances": [["\ud800\u0041"]]}', 17),
        (rb'{"instances": [{"x\udbff": [1]}]}', 18),
    ],
)
def test_a_high_surrogate_escape_without_its_low_half_is_a_parse_error(server, body, offset):
    """rapidjson reader.h ParseStringToStream: after \\uD800-\\uDBFF a \\uDC00-\\uDFFF escape must
    follow, else kParseErrorStringUnicodeSurrogateInvalid at the first backslash."""
    message = f"JSON Parse error: The surrogate pair in string is invalid. at offset: {offset}"
    assert error_bytes(server, body) == (400, message.encode())


@pytest.mark.parametrize(
    "body,message",
    [
        (
            rb'{"signature_name": "\udc00", "instances": [[1]]}',
            b'Serving signature name: \\"\xed\xb0\x80\\" not found in signature def',
        ),
        (
            rb'{"instances": [["\udc00"]]}',
            b"Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            b'JSON Value: \\"\xed\xb0\x80\\" Type: String is not of expected type: float',
        ),
        (
            rb'{"instances": [{"\udc00": [1]}]}',
            b"Failed to process element: 0 key: \xed\xb0\x80 of 'instances' list. Error: "
            b"INVALID_ARGUMENT: JSON object: does not have named input: \xed\xb0\x80",
        ),
    ],
)
def test_a_lone_low_surrogate_escape_is_kept_as_three_bytes(server, body, message):
    """rapidjson reader.h: a \\uDC00 escape on its own is encoded as UTF-8 (ED B0 80) unchecked, and
    the request fails as any unknown name or wrong-typed string does (http_rest_api_handler.cc
    GetInfoMap; json_tensor.cc TypeError, AddInstanceItem), its bytes written back as they are."""
    assert error_bytes(server, body) == (400, message)


def test_nan_and_infinity_spellings_rapidjson_reads_are_numbers(server):
    """rapidjson reader.h ParseNumber with kParseNanAndInfFlag: NaN, -NaN, Inf, -Inf, Infinity and
    -Infinity; an exponent up to 308 is in range even where the value overflows to infinity."""
    body = b'{"instances": [[Inf, -Inf, Infinity, -Infinity, NaN, -NaN, 2e308, -10e308]]}'
    answer = rest_answer(server.rest_port, "POST", PREDICT, body)
    assert (answer.status, json.loads(answer.body)) == (200, {"predictions": [[1, 1, 1, 1, 0, 0, 1, 1]]})


@pytest.mark.parametrize(
    "number",
    ["1e309", "0.5e310", "-1" + "0" * 309, "2" + "0" * 308],
)
def test_numbers_past_rapidjsons_limits_are_too_big(server, number):
    """rapidjson reader.h ParseNumber: an exponent above 308 less the fraction digits read, or an
    integer that reaches DBL_MAX / 10 with digits left, is kParseErrorNumberTooBig at its start."""
    body = f'{{"instances": [[0.5, {number}]]}}'.encode()
    message = b"JSON Parse error: Number too big to be stored in double. at offset: 21"
    assert error_bytes(server, body) == (400, message)


def test_the_largest_numbers_rapidjson_stores_are_read(server):
    """rapidjson reader.h ParseNumber: 1 and 308 zeros, and 1.5e308, are in range."""
    body = f'{{"instances": [[1{"0" * 308}, 1.5e308, 0.001e310]]}}'.encode()
    answer = rest_answer(server.rest_port, "POST", PREDICT, body)
    assert (answer.status, json.loads(answer.body)) == (200, {"predictions": [[1, 1, 1]]})


@pytest.mark.parametrize(
    "body,message",
    [
        (b'{"instances": [tru]}', "Invalid value. at offset: 18"),
        (b'{"instances": [[Infinit]]}', "Invalid value. at offset: 23"),
        (b'{"instances": [[-]]}', "Invalid value. at offset: 17"),
        (b'{"instances": [[1, ]]}', "Invalid value. at offset: 19"),
        (b'{"instances": [[1.]]}', "Miss fraction part in number. at offset: 18"),
        (b'{"instances": [[1e]]}', "Miss exponent in number. at offset: 18"),
        (
            b'{"signature_name": "a\x01b", "instances": [[1]]}',
            "Invalid escape character in string. at offset: 21",
        ),
        (rb'{"signature_name": "\u12G4"}', "Incorrect hex digit after \\u escape in string. at offset: 20"),
        (b'{"signature_name": "abc', "Missing a closing quotation mark in string. at offset: 23"),
        (b"\0", "The document is empty. at offset: 0"),
        (b" \n", "The document is empty. at offset: 2"),
    ],
)
def test_parse_errors_have_rapidjsons_words_and_offsets(server, body, message):
    """rapidjson reader.h (IterativeParse, HandleError, ParseTrue, ParseNumber, ParseStringToStream):
    the offset is where the reader stopped, past the characters it took; a NUL byte ends the input."""
    status, text = error_bytes(server, body)
    assert (status, text.decode().replace("\\\\", "\\")) == (400, f"JSON Parse error: {message}")


def test_a_byte_order_mark_is_skipped(server):
    """rapidjson encodedstream.h EncodedInputStream<UTF8<>, MemoryStream> skips EF BB BF."""
    answer = rest_answer(server.rest_port, "POST", PREDICT, b'\xef\xbb\xbf{"instances": [[0.5]]}')
    assert (answer.status, json.loads(answer.body)) == (200, {"predictions": [[1.0]]})
