"""Protobuf's wire format at the byte level: varints, length-delimited headers, a field walker.

Used by the tensor codec (``client.tensors``) and the Predict wire codec (``client.wire``) to
write bytes around numpy buffers and to read fields in place, where protobuf's API would copy.
Varints of whole arrays are encoded and decoded with numpy operations, never a Python loop per
element. Wire types and the varint layout are protobuf's (``encoding`` in protobuf's docs).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class UnsupportedLayout(Exception):
    """The bytes need protobuf's own parser (groups, a layout the fast paths do not take)."""


def varint(value: int) -> bytes:
    """One protobuf varint; a negative int64 as protobuf writes it (ten bytes, two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def len_header(field: int, length: int) -> bytes:
    """The key and length that precede a length-delimited field's ``length`` bytes."""
    return varint(field << 3 | LEN) + varint(length)


def read_varint(buffer: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``; IndexError if the buffer ends inside it."""
    result = shift = 0
    while True:
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def as_int64(value: int) -> int:
    """A varint read as protobuf's int64 (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(buffer: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(number, wire type, key start, value start, value) of each field in ``buffer[start:end]``.

    ``value`` is the integer of a VARINT field and the end offset of any other (for LEN, the
    bytes are ``buffer[value_start:value]``). ValueError for a field that runs past ``end``,
    UnsupportedLayout for groups.
    """
    pos = start
    while pos < end:
        key_start = pos
        key, pos = read_varint(buffer, pos)
        number, wire_type = key >> 3, key & 7
        value_start = pos
        if wire_type == VARINT:
            value, pos = read_varint(buffer, pos)
        elif wire_type == LEN:
            length, value_start = read_varint(buffer, pos)
            pos = value = value_start + length
        elif wire_type in (FIXED64, FIXED32):
            pos = value = pos + (8 if wire_type == FIXED64 else 4)
        else:
            raise UnsupportedLayout(f"wire type {wire_type}")
        if pos > end:
            raise ValueError("field runs past its message")
        yield number, wire_type, key_start, value_start, value


def encode_varints(values: np.ndarray) -> np.ndarray:
    """Packed varints of integer values (negatives as 64-bit two's complement), as uint8 bytes."""
    if values.dtype.itemsize == 1 and values.dtype != np.int8 and not np.any(values.view(np.uint8) & 0x80):
        return values.reshape(-1).view(np.uint8)  # 0..127: every varint is the byte itself
    wide = values.reshape(-1).astype(np.int64).view(np.uint64)
    lengths = np.ones(wide.size, dtype=np.int64)
    for shift in range(7, 64, 7):
        lengths += wide >= np.uint64(1 << shift)
    ends = np.cumsum(lengths)
    out = np.empty(int(ends[-1]) if ends.size else 0, dtype=np.uint8)
    starts = ends - lengths
    for index in range(int(lengths.max()) if lengths.size else 0):
        holds = lengths > index
        chunk = (wide[holds] >> np.uint64(7 * index)) & np.uint64(0x7F)
        more = (lengths[holds] > index + 1).astype(np.uint64) << np.uint64(7)
        out[starts[holds] + index] = (chunk | more).astype(np.uint8)
    return out


def decode_varints(raw: np.ndarray) -> np.ndarray:
    """Packed varints (uint8 bytes, the last one ending a varint) as uint64, by array operations.

    UnsupportedLayout for a varint longer than 64 bits (protobuf decides what that means).
    """
    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10 or (longest == 10 and int(raw[ends[lengths == 10]].max()) > 1):
        raise UnsupportedLayout("a varint of more than 64 bits")
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    shifted = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(shifted, starts)
