"""Round trips: for every packet and frame type, decode(encode(v)) == v and the encoding is canonical.

Values come from ``codec_strategies``; besides random values they hit amounts 0 and 2**64-1,
empty strings and data, and data long enough (200, 32767, 40000, 70000 bytes) to need
one-, two- and three-byte long-form length prefixes.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from ilptx.codec import btp, ildcp, ilp
from ilptx.codec.oer import Reader, encode_length, encode_var_octet_string, encode_var_uint

UTC = timezone.utc


@cs.FAST
@given(cs.packets)
def test_ilp_packet_round_trip(packet):
    """encode_packet then decode_packet gives back the same Prepare/Fulfill/Reject."""
    raw = ilp.encode_packet(packet)
    assert ilp.decode_packet(raw) == packet
    assert ilp.encode_packet(ilp.decode_packet(raw)) == raw


@cs.FAST
@given(cs.prepares)
def test_prepare_round_trip_via_decode_prepare(packet):
    """decode_prepare(encode_packet(p)) == p, and the envelope is type 12 + exact length."""
    raw = ilp.encode_packet(packet)
    assert raw[0] == ilp.TYPE_PREPARE
    r = Reader(raw, 1)
    assert r.read_length() == r.remaining()
    assert ilp.decode_prepare(raw) == packet


@cs.FAST
@given(st.one_of(cs.fulfills, cs.rejects))
def test_response_round_trip_via_decode_response(packet):
    """decode_response(encode_packet(p)) == p for Fulfill and Reject."""
    raw = ilp.encode_packet(packet)
    assert raw[0] == (ilp.TYPE_FULFILL if isinstance(packet, ilp.Fulfill) else ilp.TYPE_REJECT)
    assert ilp.decode_response(raw) == packet


@pytest.mark.parametrize("amount", [0, 1, 2**63, 2**64 - 1])
@pytest.mark.parametrize("size", [0, 127, 128, 200, 255, 256, 32767])
def test_prepare_amount_and_data_edges(amount, size):
    """Prepares with edge amounts and data lengths on both sides of each prefix form round-trip."""
    data = bytes(range(256)) * (size // 256 + 1)
    packet = ilp.Prepare(amount, datetime(2020, 2, 29, 23, 59, 59, 999000, tzinfo=UTC), b"\x07" * 32, "g.x", data[:size])
    raw = ilp.encode_packet(packet)
    r = Reader(raw, 1)
    assert r.read_length() == r.remaining() == 8 + 17 + 32 + 4 + len(encode_var_octet_string(packet.data))
    assert raw.endswith(encode_var_octet_string(packet.data))
    assert ilp.decode_packet(raw) == packet


def test_reject_all_empty_strings():
    """A Reject with empty triggeredBy, message and data encodes to 0e 06 code 00 00 00 and back."""
    packet = ilp.Reject("T00")
    raw = ilp.encode_packet(packet)
    assert raw == b"\x0e\x06T00\x00\x00\x00"
    assert ilp.decode_packet(raw) == packet


def test_reject_utf8_message_length_is_in_bytes():
    """A Reject message's length prefix counts UTF-8 bytes, not characters."""
    packet = ilp.Reject("F99", "g.a", "\u00e9\u20ac\U0001f600", b"")
    raw = ilp.encode_packet(packet)
    assert encode_var_octet_string("\u00e9\u20ac\U0001f600".encode("utf-8")) in raw
    # 0e | length | 'F99' | 03 'g.a' | message length at offset 2 + 3 + 4
    assert raw[9] == 2 + 3 + 4
    assert ilp.decode_packet(raw) == packet


@cs.FAST
@given(cs.amount_too_large)
def test_amount_too_large_round_trip(value):
    """AmountTooLargeData encodes to 16 bytes and decodes back to the same value."""
    raw = value.encode()
    assert len(raw) == 16
    assert ilp.AmountTooLargeData.decode(raw) == value


@cs.FAST
@given(cs.ildcp_responses)
def test_ildcp_response_round_trip(value):
    """IldcpResponse encodes and decodes back, also when carried inside a Fulfill."""
    assert ildcp.IldcpResponse.decode(value.encode()) == value
    fulfill = ilp.decode_response(ilp.encode_packet(ildcp.response_fulfill(value)))
    assert fulfill.fulfillment == ildcp.PEER_PROTOCOL_FULFILLMENT
    assert ildcp.IldcpResponse.decode(fulfill.data) == value


@cs.FAST
@given(cs.timestamps)
def test_timestamp_round_trip(when):
    """encode_timestamp/decode_timestamp round-trip every millisecond UTC datetime in years 1..9999."""
    raw = ilp.encode_timestamp(when)
    assert len(raw) == 17 and raw.isdigit()
    assert ilp.decode_timestamp(raw) == when


@cs.FAST
@given(cs.frames)
def test_btp_frame_round_trip(frame):
    """encode_frame then decode_frame gives back the same Response/Error/Message/Transfer."""
    raw = btp.encode_frame(frame)
    assert btp.decode_frame(raw) == frame
    assert btp.encode_frame(btp.decode_frame(raw)) == raw
    assert btp.peek_request_id(raw) == frame.request_id


@pytest.mark.parametrize("size", [0, 127, 128, 200, 40000, 70000])
@pytest.mark.parametrize("amount", [0, 2**64 - 1])
def test_btp_transfer_long_protocol_data(size, amount):
    """A Transfer with a 0..70000-byte entry round-trips; the body length uses the long form past 127."""
    frame = btp.Transfer(2**32 - 1, amount, (btp.ProtocolDataEntry("ilp", 0, b"\xab" * size),))
    raw = btp.encode_frame(frame)
    body_len = len(raw) - 5 - len(encode_length(len(raw) - 5))
    assert raw[5:5 + len(encode_length(body_len))] == encode_length(body_len)
    assert btp.decode_frame(raw) == frame


def test_btp_error_max_data_round_trip():
    """A BTP Error with exactly 8192 bytes of data (the ASN.1 maximum) round-trips."""
    frame = btp.Error(7, "T00", "", "", b"\x01" * 8192, ())
    assert btp.decode_frame(btp.encode_frame(frame)) == frame


def test_btp_many_entries_round_trip():
    """A Message with 300 entries encodes the count as 02 01 2c (two bytes) and round-trips."""
    frame = btp.Message(5, tuple(btp.ProtocolDataEntry(str(i), i % 256, b"") for i in range(300)))
    raw = btp.encode_frame(frame)
    body_len = len(raw) - 5 - len(encode_length(len(raw) - 5))
    assert raw[-body_len:][:3] == b"\x02\x01\x2c"
    assert btp.decode_frame(raw) == frame


@cs.FAST
@given(st.integers(0, 2**64 - 1))
def test_var_uint_round_trip(value):
    """encode_var_uint uses the fewest bytes (at least one) and Reader.read_var_uint reads it back."""
    raw = encode_var_uint(value)
    assert raw[0] == max(1, (value.bit_length() + 7) // 8)
    r = Reader(raw)
    assert r.read_var_uint() == value
    assert r.remaining() == 0


@cs.FAST
@given(st.integers(0, 2**64 - 1))
def test_length_round_trip(n):
    """encode_length is canonical (short form under 128, no leading zeros) and read_length inverts it."""
    raw = encode_length(n)
    if n < 128:
        assert raw == bytes((n,))
    else:
        assert raw[0] & 0x80 and raw[1] != 0 and len(raw) == 1 + (raw[0] & 0x7F)
    r = Reader(raw)
    assert r.read_length() == n
    assert r.remaining() == 0


def test_timestamp_at_is_whole_milliseconds_and_inverts():
    """timestamp_at truncates a clock reading to whole ms (the wire's precision); to_milliseconds inverts it."""
    from datetime import datetime, timezone

    from ilptx.codec.ilp import decode_timestamp, encode_timestamp, timestamp_at, to_milliseconds

    when = timestamp_at(1_700_000_000.1234567, 250)
    assert when == datetime(2023, 11, 14, 22, 13, 20, 373000, tzinfo=timezone.utc)
    assert to_milliseconds(when) == 1_700_000_000_373
    assert decode_timestamp(encode_timestamp(when)) == when
