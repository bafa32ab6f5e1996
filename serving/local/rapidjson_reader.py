"""Where and why rapidjson 1.1.0 stops reading a request body, as TF Serving's ParseJson reads it.

util/json_tensor.cc parses with kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag
from an EncodedInputStream<UTF8<>, MemoryStream>. Python's json reads the documents both accept;
this reader is asked only where the two can disagree (a body json refuses, a ``\\uD800`` escape, a
number beyond a double), to answer with rapidjson's words and byte offset, or to say that rapidjson
accepts what json refused (``Inf``, ``-NaN``, a byte-order mark) and how json can read it.
The states and checks follow reader.h's IterativeParse, ParseString and ParseNumber.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMPTY = "The document is empty."
INVALID_VALUE = "Invalid value."
TOO_BIG = "Number too big to be stored in double."
_MISS_NAME = "Missing a name for object member."
_MISS_COLON = "Missing a colon after a name of object member."
_MISS_OBJECT_COMMA = "Missing a comma or '}' after an object member."
_MISS_ARRAY_COMMA = "Missing a comma or ']' after an array element."
_BAD_HEX = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE = "The surrogate pair in string is invalid."
_BAD_ESCAPE = "Invalid escape character in string."
_MISS_QUOTE = "Missing a closing quotation mark in string."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."

_WHITESPACE = re.compile(rb"[ \n\r\t]*")
_PLAIN_CHARS = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")
# Array elements that cannot fail: at most 17 integer digits and a two-digit exponent stay far
# below rapidjson's limits, so a run of them is skipped in one regex call.
_PLAIN_ELEMENTS = re.compile(
    rb"(?:-?(?:0|[1-9][0-9]{0,16})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,2})?[ \n\r\t]*,[ \n\r\t]*)*"
)
_ESCAPES = frozenset(b'"\\/bfnrt')
_DIGITS = frozenset(b"0123456789")
_DBL_MAX_TENTH = 1.7976931348623157e307
# IterativeParsingState, as far as the error it reports when the next token does not fit.
_START, _OBJECT_INITIAL, _MEMBER_KEY, _KEY_VALUE, _MEMBER_VALUE, _MEMBER_DELIMITER = range(6)
_ARRAY_INITIAL, _ELEMENT, _ELEMENT_DELIMITER, _FINISH = range(6, 10)
_RETURN_STATES = {
    _START: _START,
    _KEY_VALUE: _MEMBER_VALUE,
    _ARRAY_INITIAL: _ELEMENT,
    _ELEMENT_DELIMITER: _ELEMENT,
}
_CLOSERS = {
    (_OBJECT_INITIAL, ord("}")),
    (_MEMBER_VALUE, ord("}")),
    (_ARRAY_INITIAL, ord("]")),
    (_ELEMENT, ord("]")),
}
_STATE_ERRORS = {
    _START: EMPTY,
    _OBJECT_INITIAL: _MISS_NAME,
    _MEMBER_DELIMITER: _MISS_NAME,
    _MEMBER_KEY: _MISS_COLON,
    _MEMBER_VALUE: _MISS_OBJECT_COMMA,
    _KEY_VALUE: INVALID_VALUE,
    _ARRAY_INITIAL: INVALID_VALUE,
    _ELEMENT_DELIMITER: INVALID_VALUE,
    _ELEMENT: _MISS_ARRAY_COMMA,
}


class RapidJsonError(Exception):
    """rapidjson's GetParseError_En message and the byte offset it reports."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message, self.offset = message, offset


@dataclass
class Reading:
    """What rapidjson made of a document it accepts: the bytes json reads the same way."""

    start: int  # after the byte-order mark bytes EncodedInputStream skips
    respelled: list[tuple[int, int, bytes]] = field(default_factory=list)  # NaN/Inf spellings json lacks

    def for_json(self, raw: bytes) -> bytes:
        parts, position = [], self.start
        for begin, end, spelling in self.respelled:
            parts += [raw[position:begin], spelling]
            position = end
        parts.append(raw[position:])
        return b"".join(parts)


def bom_length(raw: bytes) -> int:
    """EncodedInputStream<UTF8<>, MemoryStream> skips an EF, then a BB, then a BF byte, each if present."""
    position = 0
    for byte in b"\xef\xbb\xbf":
        if raw[position : position + 1] == bytes([byte]):
            position += 1
    return position


def read(raw: bytes) -> Reading:
    """rapidjson's reading of raw; RapidJsonError where it stops with an error."""
    reader = _Reader(raw)
    reader.document()
    return reader.reading


def number_error(raw: bytes, start: int) -> RapidJsonError | None:
    """The error rapidjson's ParseNumber gives for the number at start (None when it reads it)."""
    try:
        _Reader(raw).number(start)
    except RapidJsonError as error:
        return error
    return None


class _Reader:
    def __init__(self, raw: bytes):
        self.raw = raw
        self.end = raw.find(b"\0")  # MemoryStream's Peek() is '\0' at the end: a NUL byte ends it too
        if self.end < 0:
            self.end = len(raw)
        self.reading = Reading(bom_length(raw))

    def peek(self, position: int) -> int:
        return self.raw[position] if position < self.end else 0

    def skip(self, position: int) -> int:
        return _WHITESPACE.match(self.raw, position, self.end).end()

    def document(self) -> None:
        """IterativeParse, with its Predict table folded into the branches below."""
        stack: list[int] = []  # the state to return to after each open array or object
        state = _START
        position = self.skip(self.reading.start)
        while position < self.end:
            char = self.raw[position]
            if state in (_START, _KEY_VALUE, _ARRAY_INITIAL, _ELEMENT_DELIMITER) and char in b"[{":
                stack.append(_RETURN_STATES[state])
                state = _ARRAY_INITIAL if char == ord("[") else _OBJECT_INITIAL
                position += 1
            elif state in (_ARRAY_INITIAL, _ELEMENT_DELIMITER) and char not in b"]}:,":
                run = _PLAIN_ELEMENTS.match(self.raw, position, self.end).end()
                if run > position:
                    position, state = run, _ELEMENT_DELIMITER
                    continue
                position, state = self.value(position), _ELEMENT
            elif state in (_START, _KEY_VALUE) and char not in b"]}:,":
                position = self.value(position)
                state = _FINISH if state == _START else _MEMBER_VALUE
            elif state in (_OBJECT_INITIAL, _MEMBER_DELIMITER) and char == ord('"'):
                position, state = self.string(position), _MEMBER_KEY
            elif state == _MEMBER_KEY and char == ord(":"):
                position, state = position + 1, _KEY_VALUE
            elif (state, char) in ((_MEMBER_VALUE, ord(",")), (_ELEMENT, ord(","))):
                position += 1
                state = _MEMBER_DELIMITER if state == _MEMBER_VALUE else _ELEMENT_DELIMITER
            elif (state, char) in _CLOSERS:
                position, state = position + 1, stack.pop()
            elif state == _MEMBER_DELIMITER and char == ord("}"):  # no trailing commas
                raise RapidJsonError(_MISS_NAME, position)
            elif state == _ELEMENT_DELIMITER and char == ord("]"):
                raise RapidJsonError(INVALID_VALUE, position)
            else:
                raise RapidJsonError(_STATE_ERRORS[state], position)
            if state == _START:
                state = _FINISH
            if state == _FINISH:  # kParseStopWhenDoneFlag: what follows the root is not read
                return
            position = self.skip(position)
        raise RapidJsonError(_STATE_ERRORS[state], position)

    def value(self, position: int) -> int:
        char = self.peek(position)
        for word in (b"null", b"true", b"false"):
            if char == word[0]:  # ParseNull/True/False: the offset is past the letters that match
                taken = 1
                while taken < len(word) and self.peek(position + taken) == word[taken]:
                    taken += 1
                if taken < len(word):
                    raise RapidJsonError(INVALID_VALUE, position + taken)
                return position + taken
        if char == ord('"'):
            return self.string(position)
        return self.number(position)

    def string(self, position: int) -> int:
        """ParseStringToStream without encoding validation: any byte >= 0x20 is taken as it is."""
        position += 1
        while True:
            position = _PLAIN_CHARS.match(self.raw, position, self.end).end()
            char = self.peek(position)
            if char == ord('"'):
                return position + 1
            if char == 0:
                raise RapidJsonError(_MISS_QUOTE, position)
            if char != ord("\\"):
                raise RapidJsonError(_BAD_ESCAPE, position)  # a raw control character
            escape = position
            kind = self.peek(position + 1)
            if kind in _ESCAPES:
                position += 2
                continue
            if kind != ord("u"):
                raise RapidJsonError(_BAD_ESCAPE, escape)
            codepoint = self.hex4(position + 2, escape)
            position += 6
            if 0xD800 <= codepoint <= 0xDBFF:  # a high surrogate: a \\u low surrogate must follow
                if self.raw[position : position + 2] != b"\\u" or position + 2 > self.end:
                    raise RapidJsonError(_BAD_SURROGATE, escape)
                if not 0xDC00 <= self.hex4(position + 2, escape) <= 0xDFFF:
                    raise RapidJsonError(_BAD_SURROGATE, escape)
                position += 6

    def hex4(self, position: int, escape: int) -> int:
        digits = _HEX4.match(self.raw, position, self.end)
        if digits is None:
            raise RapidJsonError(_BAD_HEX, escape)
        return int(digits[0], 16)

    def number(self, start: int) -> int:
        """ParseNumber (normal precision): only its errors and where it ends matter here."""
        position = start
        minus = self.peek(position) == ord("-")
        position += minus
        char = self.peek(position)
        significant = 0  # significandDigit
        small = large = 0  # i (32 bits) and i64
        use64 = use_double = False
        value = 0.0
        if char == ord("0"):
            position += 1
        elif char in _DIGITS:
            small = char - ord("0")
            position += 1
            limit, last = (214748364, ord("8")) if minus else (429496729, ord("5"))
            while self.peek(position) in _DIGITS:
                if small >= limit and (small != limit or self.peek(position) > last):
                    large, use64 = small, True
                    break
                small = small * 10 + self.peek(position) - ord("0")
                position += 1
                significant += 1
        elif char in b"IN":
            position = self.nan_or_inf(start, position, minus)
        else:
            raise RapidJsonError(INVALID_VALUE, position)
        if use64:
            limit, last = (0x0CCCCCCCCCCCCCCC, ord("8")) if minus else (0x1999999999999999, ord("5"))
            while self.peek(position) in _DIGITS:
                if large >= limit and (large != limit or self.peek(position) > last):
                    value, use_double = float(large), True
                    break
                large = large * 10 + self.peek(position) - ord("0")
                position += 1
                significant += 1
        if use_double:
            while self.peek(position) in _DIGITS:
                if value >= _DBL_MAX_TENTH:
                    raise RapidJsonError(TOO_BIG, start)
                value = value * 10 + self.peek(position) - ord("0")
                position += 1
        fraction_exponent = 0  # expFrac
        if self.peek(position) == ord("."):
            position += 1
            if self.peek(position) not in _DIGITS:
                raise RapidJsonError(_MISS_FRACTION, position)
            if not use_double:
                if not use64:
                    large = small
                while self.peek(position) in _DIGITS and large <= 0x1FFFFFFFFFFFFF:
                    large = large * 10 + self.peek(position) - ord("0")
                    position += 1
                    fraction_exponent -= 1
                    significant += large != 0
                value, use_double = float(large), True
            while self.peek(position) in _DIGITS:
                if significant < 17:
                    value = value * 10.0 + self.peek(position) - ord("0")
                    fraction_exponent -= 1
                    significant += value > 0.0
                position += 1
        if self.peek(position) in b"eE":
            position += 1
            sign = self.peek(position)
            negative = sign == ord("-")
            position += sign in b"+-"
            if self.peek(position) not in _DIGITS:
                raise RapidJsonError(_MISS_EXPONENT, position)
            exponent = 0
            while self.peek(position) in _DIGITS:
                exponent = exponent * 10 + self.peek(position) - ord("0")
                position += 1
                if not negative and exponent > 308 - fraction_exponent:
                    raise RapidJsonError(TOO_BIG, start)
        return position

    def nan_or_inf(self, start: int, position: int, minus: bool) -> int:
        """kParseNanAndInfFlag: NaN, Inf or Infinity, each maybe after a minus (which NaN ignores)."""

        def consume(word: bytes) -> bool:
            nonlocal position
            for byte in word:
                if self.peek(position) != byte:
                    return False
                position += 1
            return True

        if consume(b"NaN"):
            spelling = b"NaN"
        elif consume(b"Inf"):
            if self.peek(position) == ord("i") and not consume(b"inity"):
                raise RapidJsonError(INVALID_VALUE, position)
            spelling = b"-Infinity" if minus else b"Infinity"
        else:
            raise RapidJsonError(INVALID_VALUE, position)
        if self.peek(position) in b".eE":
            spelling = b"-0" if minus else b"0"  # ParseNumber goes on from a significand of 0
        if self.raw[start:position] != spelling:
            self.reading.respelled.append((start, position, spelling))
        return position
