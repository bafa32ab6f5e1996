"""Check every response against the rule, computed locally with the bounds the server reported.

The rule is ``mask = (x < low) | (x > high)``: the bounds and NaN map to 0, ±inf to 1. A response
passes when its shape and dtype are what the signature declares, every value is 0 or 1, and
every value equals the rule. Failures are counted, and the first few (in input order, whatever
order the responses came in) kept for the report.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

MAX_EXAMPLES = 5


def float32_text(value: float) -> str:
    """The shortest text that reads back as the same float32 (-0.1, not -0.10000000149011612)."""
    return str(np.float32(value))


def expected_mask(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """The rule, as a bool array: True where x < low or x > high (NaN is False)."""
    x = np.asarray(x, dtype=np.float32)
    mask = np.less(x, np.float32(low))
    return np.logical_or(mask, np.greater(x, np.float32(high)), out=mask)


def _bits(array: np.ndarray) -> np.ndarray:
    """A contiguous array's bytes as unsigned integers, 8 bytes at a time where they divide evenly
    (the widest compare numpy has; comparing bits, 0.0 and -0.0 differ)."""
    flat = array.reshape(-1)
    width = 8 if flat.nbytes % 8 == 0 else array.dtype.itemsize
    return flat.view(np.dtype(f"u{width}"))


@dataclass(frozen=True)
class Mismatch:
    """One element whose answer differs from the rule."""

    row: int
    col: int
    x: float
    got: float
    expected: int

    def __str__(self) -> str:
        return (
            f"row {self.row}, col {self.col}: x={float32_text(self.x)} got {self.got!r}, "
            f"expected {self.expected}"
        )


@dataclass
class CheckReport:
    """What the checker found over a whole run."""

    low: float
    high: float
    checked: int = 0
    mismatches: int = 0
    not_binary: int = 0
    examples: list[Mismatch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.problem_count == 0

    def add_problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_EXAMPLES:
            self.problems.append(text)

    def summary(self) -> str:
        """One line: what failed, and how often."""
        parts = []
        if self.problem_count:
            parts.append(f"{self.problem_count} response(s) with the wrong shape or dtype")
        if self.mismatches:
            parts.append(
                f"{self.mismatches} of {self.checked} checked values differ from "
                f"(x < {float32_text(self.low)}) | (x > {float32_text(self.high)})"
            )
        if self.not_binary:
            parts.append(f"{self.not_binary} not 0 or 1")
        return "check failed: " + "; ".join(parts) if parts else "check passed"

    def details(self) -> list[str]:
        """The first few problems and mismatches, one per line."""
        lines = [f"  {text}" for text in self.problems]
        lines += [f"  {example}" for example in self.examples]
        hidden = self.mismatches - len(self.examples) + self.problem_count - len(self.problems)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
        return lines

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "mismatches": self.mismatches,
            "not_binary": self.not_binary,
            "bad_responses": self.problem_count,
            "problems": list(self.problems),
            "examples": [vars(example) for example in self.examples],
        }


class ResponseChecker:
    """Checks one response at a time and accumulates a CheckReport.

    Bounds are per model version: a run that follows a hot reload checks each answer against
    the bounds of the version that gave it. ``low``/``high`` are the first version's. Answers
    may be checked on several threads at once (the comparisons run without the GIL); the report
    is updated under a lock.
    """

    def __init__(self, low: float, high: float, dtype: np.dtype, version: int | None = None):
        self.low, self.high = float(low), float(high)
        self.dtype = np.dtype(dtype)
        self.report = CheckReport(self.low, self.high)
        self.bounds: dict[int | None, tuple[float, float]] = {version: (self.low, self.high)}
        self._lock = threading.Lock()

    def add_problem(self, text: str) -> None:
        """Record a response that could not be compared (unusable, wrong shape or dtype)."""
        with self._lock:
            self.report.add_problem(text)

    def add_version(self, version: int | None, low: float, high: float) -> None:
        """Bounds for answers from another version (after a hot reload)."""
        self.bounds[version] = (float(low), float(high))

    def check_layout(self, where: str, got: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Record a problem unless got has the requested shape and the declared dtype.

        Returns whether the values can be compared element by element (the shape matches).
        """
        if got.shape != shape:
            self.add_problem(f"{where}: shape {got.shape}, expected {shape}")
            return False
        if got.dtype != self.dtype:
            self.add_problem(f"{where}: dtype {got.dtype}, the signature declares {self.dtype}")
        return True

    def rule(self, x: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
        """The rule on x (bool) with ``bounds`` (default: the first version's).

        Computed before the request is sent, it reads x once while x is in cache (the request
        is built from it next) instead of again after the round trip has pushed it out; pass
        it to ``verify`` / ``check_values`` as ``expected``.
        """
        return expected_mask(x, *(bounds or (self.low, self.high)))

    def verify(
        self,
        row: int,
        col: int,
        x: np.ndarray,
        got: np.ndarray,
        bounds: tuple[float, float] | None = None,
        expected: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Check got (a block starting at (row, col)) against the rule on x, as ``check_values``.

        Returns the rule's answer in got's dtype when it is got bit for bit (every answer right,
        and written as TF's Cast writes 0 and 1): an array the caller owns, writable, so an output
        may keep it instead of copying the answer out of the response buffer. Otherwise None, with
        the mismatches counted by ``check_values`` (then the caller copies got itself).
        """
        if expected is None:
            expected = self.rule(x, bounds)
        if (
            got.dtype.kind not in "uibf"
            or got.dtype.itemsize not in (1, 2, 4, 8)
            or not got.flags.c_contiguous
        ):
            self.check_values(row, col, x, got, bounds, expected)
            return None
        if got.dtype.itemsize == 1:
            rule = expected.view(got.dtype)
        else:
            rule = expected.view(np.uint8).astype(got.dtype)
        if got.shape == rule.shape and np.array_equal(_bits(got), _bits(rule)):
            with self._lock:
                self.report.checked += x.size
            return rule
        self.check_values(row, col, x, got, bounds, expected)
        return None

    def check_values(
        self,
        row: int,
        col: int,
        x: np.ndarray,
        got: np.ndarray,
        bounds: tuple[float, float] | None = None,
        expected: np.ndarray | None = None,
    ) -> int:
        """Compare got with the rule on x (a block starting at (row, col)); return the mismatch count.

        ``bounds`` default to the first version's; ``expected`` is ``rule(x, bounds)`` if the
        caller made it already. One comparison, with no converted copy of either side, and no
        scan for values other than 0 and 1 unless some differ (a value equal to the 0/1 rule is
        0 or 1).
        """
        if expected is None:
            expected = self.rule(x, bounds)
        # One-byte answers (uint8, int8, bool) compare with the rule's bytes as they are.
        one_byte = got.dtype.itemsize == 1 and got.dtype.kind in "uib"
        rule = expected.view(got.dtype) if one_byte else expected
        with np.errstate(invalid="ignore"):
            wrong = np.not_equal(got, rule)
        count = int(np.count_nonzero(wrong))
        not_binary, found = 0, []
        if count:  # every value equal to the 0/1 rule is binary: only look for others when some differ
            with np.errstate(invalid="ignore"):
                binary = (got == 0) | (got == 1)
            not_binary = x.size - int(np.count_nonzero(binary))
            found = [
                Mismatch(row + int(r), col + int(c), float(x[r, c]), got[r, c].item(), int(expected[r, c]))
                for r, c in np.argwhere(wrong)[:MAX_EXAMPLES]
            ]
        with self._lock:
            self.report.checked += x.size
            if count:
                self.report.not_binary += not_binary
                self.report.mismatches += count
                # Blocks are checked in completion order; keep the first few in input order instead.
                self.report.examples = sorted(self.report.examples + found, key=lambda m: (m.row, m.col))[
                    :MAX_EXAMPLES
                ]
        return count
