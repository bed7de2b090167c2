import pytest

from agent.podattr import wire
from agent.podattr.podresources import decode_list_response


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint_round_trip(n):
    data = wire.encode_varint(n)
    assert wire.decode_varint(data, 0) == (n, len(data))


def test_negative_int64_takes_ten_bytes():
    data = wire.encode_varint(-1)
    assert len(data) == 10
    assert wire.decode_varint(data, 0)[0] == 2**64 - 1


def test_unknown_fixed_width_fields_are_skipped():
    msg = (
        bytes([1 << 3 | wire.FIXED64])
        + b"\0" * 8
        + bytes([2 << 3 | wire.FIXED32])
        + b"\0" * 4
        + wire.field_string(3, "x")
    )
    assert [(n, t) for n, t, _ in wire.fields(msg)] == [(1, 1), (2, 5), (3, 2)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x0a\x05ab", "runs past the end"),
        (b"\x08\xff", "truncated varint"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x00\x01", "field number 0"),
        (b"\x08\x01", "field 1 should be a message"),
        (b"\x0a\x02\x08\x01", "field 1 should be a string"),
    ],
)
def test_malformed_messages_raise(data, message):
    with pytest.raises(wire.WireError, match=message):
        decode_list_response(data)
