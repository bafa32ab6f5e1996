"""The REST JSON codec in process: the stepwise parser reads what json reads; floats as TF Serving writes."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.local.rest_json import outputs_json, parse_object

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=5), values, max_size=4), st.sampled_from(["", " ", "\n\t"]))
def test_the_stepwise_parser_reads_what_json_reads(document, space):
    text = json.dumps(document, indent=1 if space else None).replace("\n", "\n" + space)
    assert parse_object(text.encode()) == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_outputs_read_back_exactly(value):
    """json_tensor.cc WriteDecimal: whatever the digits, the float32 reads back unchanged."""
    text = outputs_json({"y": np.asarray([value], np.float32)}, row_format=False)
    assert np.float32(json.loads(text)["outputs"][0]) == np.float32(value)


def test_floats_are_written_with_six_digits_when_they_round_trip():
    """json_tensor.cc WriteDecimal: %g (six digits) if that reads back, else max_digits10; '.0' on whole
    numbers."""
    array = np.asarray([0.1, 1.0, 9000000.0, 0.00003, 0.123456789, -2.5, np.inf, -np.inf], np.float32)
    text = outputs_json({"y": array}, row_format=False)
    assert json.loads(text) == {"outputs": [0.1, 1.0, 9e06, 3e-05, 0.123456791, -2.5, np.inf, -np.inf]}
    assert ",\n".join(line.strip(", ") for line in text.decode().splitlines()[2:10]) == (
        "0.1,\n1.0,\n9e+06,\n3e-05,\n0.123456791,\n-2.5,\nInfinity,\n-Infinity"
    )


def test_row_format_of_rank_one_and_several_outputs():
    """json_tensor.cc MakeRowFormatJsonFromTensors: a rank-1 output gives one value per row; several
    outputs give one object per row, each on a line of its own (StartObject comes before
    SetFormatOptions(kFormatSingleLineArray), so rapidjson's PrettyWriter breaks the line)."""
    assert outputs_json({"y": np.asarray([0, 1], np.float32)}, row_format=True) == (
        b'{\n    "predictions": [0.0, 1.0\n    ]\n}'
    )
    assert outputs_json({"a": np.asarray([[0, 1]], np.uint8), "b": np.asarray([2], np.int32)}, True) == (
        b'{\n    "predictions": [\n        {\n            "a": [0, 1],\n'
        b'            "b": 2\n        }\n    ]\n}'
    )
    two_rows = {"a": np.asarray([[1, 2], [3, 4]], np.float32), "b": np.asarray([5, 6], np.float32)}
    assert outputs_json(two_rows, True) == (
        b'{\n    "predictions": [\n        {\n            "a": [1.0, 2.0],\n            "b": 5.0\n'
        b'        },\n        {\n            "a": [3.0, 4.0],\n            "b": 6.0\n        }\n    ]\n}'
    )
    assert outputs_json({"a": np.zeros((0, 2), np.float32), "b": np.zeros(0, np.float32)}, True) == (
        b'{\n    "predictions": []\n}'
    )
