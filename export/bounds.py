"""The filter's bounds and their validation (import-light: the CLI checks flags before TF loads)."""

from __future__ import annotations

import math

DEFAULT_LOW = -0.1
DEFAULT_HIGH = 0.1


class InvalidBounds(ValueError):
    """The bounds cannot define a filter (NaN, infinite, or low > high)."""


def validate_bounds(low: float, high: float) -> tuple[float, float]:
    """Return (low, high) as floats, or raise InvalidBounds saying what is wrong."""
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError) as exc:
        raise InvalidBounds(f"bounds must be numbers, got low={low!r} high={high!r}") from exc
    for label, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise InvalidBounds(f"{label} must be a finite number, got {value}")
    if low > high:
        raise InvalidBounds(f"low must be <= high, got low={low} > high={high}")
    return low, high
