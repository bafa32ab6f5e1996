"""The checker: the rule computed locally, and a report that names the first wrong answers."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from client.checker import ResponseChecker, expected_mask
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def test_reference_vector_matches_the_exact_mask():
    assert expected_mask(np.array(REFERENCE_INPUT), -0.1, 0.1).astype(int).tolist() == REFERENCE_MASK


def test_boundaries_and_nan_map_to_zero_infinities_to_one():
    x = np.array([-0.1, 0.1, np.nan, np.inf, -np.inf], np.float32)
    assert expected_mask(x, -0.1, 0.1).tolist() == [False, False, False, True, True]


@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=16),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    ),
    st.floats(-2, 2, width=32),
    st.floats(0, 2, width=32),
)
def test_rule_matches_a_scalar_reading_of_the_definition(x, low, width):
    high = np.float32(low + width)
    got = expected_mask(x, low, high)
    want = [[bool(v < np.float32(low) or v > high) for v in row] for row in x]
    assert got.tolist() == want


def test_report_counts_every_mismatch_and_keeps_the_first_few():
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10)
    got = expected_mask(x, -0.1, 0.1).astype(np.float32)
    got[1, 2] = 1 - got[1, 2]
    got[3, :] = 2  # not a mask value at all
    checker = ResponseChecker(-0.1, 0.1, np.float32)
    assert checker.check_layout("rows 100-103", got, x.shape)
    checker.check_values(100, 0, x, got)
    report = checker.report
    assert not report.ok and report.mismatches == 11 and report.not_binary == 10 and report.checked == 40
    first = report.examples[0]
    assert (first.row, first.col, first.expected) == (101, 2, int(expected_mask(x, -0.1, 0.1)[1, 2]))
    assert "11 of 40 checked values differ from (x < -0.1) | (x > 0.1)" in report.summary()
    assert report.details()[-1] == "  ... and 6 more"


def test_wrong_shape_or_dtype_is_a_problem_even_when_values_would_match():
    checker = ResponseChecker(-0.1, 0.1, np.uint8)
    assert not checker.check_layout("rows 0-1", np.zeros((2, 3), np.uint8), (2, 4))
    assert checker.check_layout("rows 2-3", np.zeros((2, 4), np.float32), (2, 4))
    assert checker.report.problem_count == 2 and not checker.report.ok
    assert "dtype float32, the signature declares uint8" in checker.report.problems[1]


@given(
    hnp.arrays(np.float32, (3, 5), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
    hnp.arrays(np.float32, (3, 5), elements=st.sampled_from([0.0, 1.0, -0.0, 2.0, np.nan, 0.5])),
    st.sampled_from([np.float32, np.uint8, np.int32]),
)
def test_counts_are_exact_for_every_answer_dtype(x, answers, dtype):
    """The check compares answers in their own dtype; the verdict is the elementwise one."""
    got = answers.astype(dtype) if dtype == np.float32 else np.nan_to_num(answers).astype(dtype)
    checker = ResponseChecker(-0.1, 0.1, dtype)
    rule = expected_mask(x, -0.1, 0.1)
    count = checker.check_values(0, 0, x, got)
    with np.errstate(invalid="ignore"):
        assert count == checker.report.mismatches == int(np.count_nonzero(got != rule))
        assert checker.report.not_binary == int(np.count_nonzero(~((got == 0) | (got == 1))))


@given(
    hnp.arrays(np.float32, (3, 5), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
    st.sampled_from([np.float32, np.float64, np.uint8, np.int8, np.int32, np.bool_]),
)
def test_verify_hands_back_an_own_array_bit_for_bit_the_right_answer(x, dtype):
    got = expected_mask(x, -0.1, 0.1).astype(dtype)
    served = np.frombuffer(got.tobytes(), dtype=dtype).reshape(got.shape)  # read-only, like a response view
    checker = ResponseChecker(-0.1, 0.1, dtype)
    kept = checker.verify(0, 0, x, served)
    assert kept is not None and kept.dtype == np.dtype(dtype) and kept.flags.writeable
    assert not np.shares_memory(kept, served) and kept.tobytes() == served.tobytes()
    assert checker.report.ok and checker.report.checked == x.size


def test_verify_returns_nothing_for_answers_that_are_not_the_rules_bits():
    x = np.array([[0.0, 0.5, -0.5, 0.05]], np.float32)
    rule = expected_mask(x, -0.1, 0.1).astype(np.float32)
    wrong = rule.copy()
    wrong[0, 1] = 0.0
    checker = ResponseChecker(-0.1, 0.1, np.float32)
    assert checker.verify(0, 0, x, wrong) is None and checker.report.mismatches == 1
    # -0.0 equals 0 (the check passes) but is not the bits of TF's Cast: the caller keeps the answer itself
    signed = rule.copy()
    signed[0, 0] = -0.0
    checker = ResponseChecker(-0.1, 0.1, np.float32)
    assert checker.verify(0, 0, x, signed) is None and checker.report.ok and checker.report.checked == 4
