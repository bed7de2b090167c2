"""Protocol Buffers wire format: just enough to read and write the pod-resources messages.

Hand-written rather than generated: the kubelet API needs five small messages, and this keeps
the agent free of generated code and of a protobuf runtime version to match. Unknown fields are
skipped by wire type, as protobuf requires, so newer kubelets with more fields still parse.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a valid protobuf message."""


def encode_varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values take ten bytes, as protobuf writes them."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message)."""
    return encode_varint(number << 3 | LENGTH) + encode_varint(len(payload)) + payload


def field_string(number: int, text: str) -> bytes:
    """A string field; proto3 omits empty strings."""
    return field_bytes(number, text.encode()) if text else b""


def field_varint(number: int, value: int) -> bytes:
    """A varint field; proto3 omits zeros."""
    return encode_varint(number << 3 | VARINT) + encode_varint(value) if value else b""


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field; fixed-width values come as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type == LENGTH:
            length, pos = decode_varint(data, pos)
            if pos + length > len(data):
                raise WireError(f"field {number} runs past the end of the message")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (FIXED64, FIXED32):
            width = 8 if wire_type == FIXED64 else 4
            if pos + width > len(data):
                raise WireError(f"field {number} runs past the end of the message")
            value, pos = data[pos : pos + width], pos + width
        else:
            raise WireError(f"field {number} has unsupported wire type {wire_type}")
        yield number, wire_type, value


def as_text(value: int | bytes, number: int) -> str:
    """A string field's value, checked."""
    if not isinstance(value, bytes):
        raise WireError(f"field {number} should be a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise WireError(f"field {number} is not UTF-8") from None


def as_message(value: int | bytes, number: int) -> bytes:
    """An embedded message field's bytes, checked."""
    if not isinstance(value, bytes):
        raise WireError(f"field {number} should be a message")
    return value
