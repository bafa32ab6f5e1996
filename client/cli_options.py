"""Command-line values and their environment defaults, parsed one way for every CLI of ours.

``python -m client.predict``, ``client.bench``, ``serving.local`` and ``serving.launch`` take
their flags' defaults from environment variables and their values through the parsers here,
so ``--port``, ``SERVING_LOCAL_PORT`` and ``GRPC_PORT`` accept and refuse the same things, and a
bad value is one line naming the flag or the variable (argparse's usage error, exit 2), never a
traceback. ``export`` keeps its own argument parsing: it imports nothing of ours.

Environment rules, the same for every variable: unset or blank means the flag's default
(``make serve TFS_IMAGE=`` asks for the default image); a value is parsed as the flag's own
value would be, after the command line is read, so a flag given on the command line wins over a
bad variable; booleans are 1/0, true/false, yes/no or on/off, anything else is an error.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class EnvValue:
    """A flag's default read from the environment, converted by ``parse_args`` like a flag value."""

    name: str
    raw: str

    def __str__(self) -> str:  # what --help shows as the default
        return self.raw


def env_default(name: str, default: Any = None) -> Any:
    """The default for a flag: ``EnvValue`` when variable ``name`` is set and not blank, else default."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return EnvValue(name, raw.strip())


def env_text(name: str, default: str | None = None) -> str | None:
    """A variable's text, outside argparse (blank means default)."""
    raw = os.environ.get(name)
    return raw.strip() if raw is not None and raw.strip() else default


def parse_bool(text: str) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case."""
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise argparse.ArgumentTypeError(f"must be one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}, got {text!r}")


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable outside argparse; ValueError naming it for a bad value."""
    raw = env_text(name)
    if raw is None:
        return default
    try:
        return parse_bool(raw)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{name}={raw!r}: {exc}") from None


def _integer(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def integer(text: str) -> int:
    """Any integer, negative ones included."""
    return _integer(text, "an integer")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _integer(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _integer(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port, or none where the flag says so)."""
    value = _integer(text, "a port number (0-65535)")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {value}")
    return value


def positive_seconds(text: str) -> float:
    """A positive, finite number: gRPC deadlines are finite (an infinite one would expire at once)."""
    value = _number(text, "a positive, finite number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """A finite number >= 0 (0 often turns a poll or a wait off)."""
    value = _number(text, "a finite number of seconds >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, "a number in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {value}")
    return value


def byte_size(text: str) -> int:
    """'4194304', '4M', '512K', '1G' (binary units); >= 0."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(cleaned[-1:], 1)
    try:
        value = float(cleaned[:-1] if scale > 1 else cleaned) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a size like 4194304, 64M or 1G, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a size like 4194304, 64M or 1G, got {text!r}")
    return int(value)


def at_least(parse: Callable[[str], Any], minimum: Any, why: str = "") -> Callable[[str], Any]:
    """``parse``, refusing values below ``minimum``."""

    def parse_bounded(text: str) -> Any:
        value = parse(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be at least {minimum}{f' ({why})' if why else ''}, got {text!r}"
            )
        return value

    parse_bounded.__name__ = getattr(parse, "__name__", "value")
    return parse_bounded


def _flag_of(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.dest


def _convert(action: argparse.Action, raw: str) -> Any:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return parse_bool(raw)
    value = action.type(raw) if callable(action.type) else raw
    if action.choices is not None and value not in action.choices:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, action.choices))}, got {raw!r}")
    return value


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args``, then each default left from the environment parsed as its flag's value.

    A bad variable is one line and exit 2, as a usage error, without the usage text (the command
    line is fine): ``prog: error: SERVE_TIMEOUT='abc': must be ... (the default of --timeout)``.
    """
    args = parser.parse_args(argv)
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of its actions
        value = getattr(args, action.dest, None)
        if not isinstance(value, EnvValue):
            continue
        try:
            setattr(args, action.dest, _convert(action, value.raw))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            parser.exit(
                2,
                f"{parser.prog}: error: {value.name}={value.raw!r}: {exc} "
                f"(the default of {_flag_of(action)})\n",
            )
    return args


def add_hidden_alias(container: argparse._ActionsContainer, alias: str, action: argparse.Action) -> None:
    """Accept ``alias`` as another spelling of ``action``'s flag, left out of --help (an old name)."""
    container.add_argument(
        alias,
        dest=action.dest,
        type=action.type,
        choices=action.choices,
        metavar=action.metavar,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
