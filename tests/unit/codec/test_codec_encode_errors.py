"""Encoders refuse values the wire format cannot carry, with ``EncodeError`` and nothing else.

Each case is a single bad field in an otherwise valid value, so the test fails if the
encoder silently writes it (wraps, truncates, pads) or crashes with another exception type.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from ilptx.codec import btp, ildcp, ilp
from ilptx.codec.oer import EncodeError, encode_uint, encode_var_uint

UTC = timezone.utc
WHEN = datetime(2020, 1, 1, tzinfo=UTC)
PREPARE = ilp.Prepare(1, WHEN, bytes(32), "g.bob", b"")
FULFILL = ilp.Fulfill(bytes(32), b"")
REJECT = ilp.Reject("F02", "g.conn", "unreachable", b"")


def test_baseline_values_encode():
    """The valid base values used below do encode (so each failure is due to its one bad field)."""
    for packet in (PREPARE, FULFILL, REJECT):
        assert ilp.decode_packet(ilp.encode_packet(packet)) == packet
    assert btp.encode_frame(btp.Transfer(1, 5)) and btp.encode_frame(btp.Error(1, "F00", "n", "t"))


BAD_PACKETS = [
    pytest.param(replace(PREPARE, amount=-1), id="amount=-1"),
    pytest.param(replace(PREPARE, amount=2**64), id="amount=2**64"),
    pytest.param(replace(PREPARE, amount=1.0), id="amount=1.0"),
    pytest.param(replace(PREPARE, amount=True), id="amount=True"),
    pytest.param(replace(PREPARE, amount="1"), id="amount='1'"),
    pytest.param(replace(PREPARE, execution_condition=bytes(31)), id="condition-31-bytes"),
    pytest.param(replace(PREPARE, execution_condition=bytes(33)), id="condition-33-bytes"),
    pytest.param(replace(PREPARE, execution_condition="0" * 32), id="condition-str"),
    pytest.param(replace(PREPARE, expires_at=datetime(2020, 1, 1)), id="naive-expiry"),
    pytest.param(replace(PREPARE, expires_at="2020-01-01T00:00:00Z"), id="expiry-str"),
    pytest.param(replace(PREPARE, expires_at=1577836800), id="expiry-int"),
    pytest.param(replace(PREPARE, data=b"\x00" * 32768), id="prepare-data-32768"),
    pytest.param(replace(PREPARE, data="text"), id="prepare-data-str"),
    pytest.param(replace(PREPARE, destination="g.bob smith"), id="destination-space"),
    pytest.param(replace(PREPARE, destination="g.b\u00f6b"), id="destination-non-ascii"),
    pytest.param(replace(PREPARE, destination="g.bob!"), id="destination-bang"),
    pytest.param(replace(PREPARE, destination="g." + "a" * 1022), id="destination-1024-chars"),
    pytest.param(replace(PREPARE, destination=None), id="destination-None"),
    pytest.param(replace(FULFILL, fulfillment=bytes(31)), id="fulfillment-31-bytes"),
    pytest.param(replace(FULFILL, data=b"\x00" * 32768), id="fulfill-data-32768"),
    pytest.param(replace(REJECT, code="F0"), id="code-2-chars"),
    pytest.param(replace(REJECT, code="F000"), id="code-4-chars"),
    pytest.param(replace(REJECT, code="F\u00e90"), id="code-non-ascii"),
    pytest.param(replace(REJECT, code=8), id="code-int"),
    pytest.param(replace(REJECT, triggered_by="g.conn\n"), id="triggered-by-newline"),
    pytest.param(replace(REJECT, message=None), id="message-None"),
    pytest.param(replace(REJECT, message=b"bytes"), id="message-bytes"),
    pytest.param(replace(REJECT, data=b"\x00" * 32768), id="reject-data-32768"),
    pytest.param(ilp.AmountTooLargeData(1, 2), id="not-a-packet"),
]


@pytest.mark.parametrize("packet", BAD_PACKETS)
def test_encode_packet_refuses(packet):
    """encode_packet raises EncodeError for an out-of-range, wrong-size or wrong-type field."""
    with pytest.raises(EncodeError):
        ilp.encode_packet(packet)


def test_data_at_the_limit_is_fine():
    """Exactly 32767 bytes of data (the ASN.1 maximum) encodes in every packet type."""
    for packet in (PREPARE, FULFILL, REJECT):
        assert ilp.encode_packet(replace(packet, data=b"\x00" * 32767))


def test_expiry_out_of_range_after_utc_conversion():
    """An aware expiry that cannot be converted to UTC (year 0 after conversion) raises EncodeError."""
    early = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(EncodeError):
        ilp.encode_timestamp(early)
    with pytest.raises(EncodeError):
        ilp.encode_packet(replace(PREPARE, expires_at=early))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(ilp.AmountTooLargeData(-1, 0), id="received=-1"),
        pytest.param(ilp.AmountTooLargeData(0, 2**64), id="maximum=2**64"),
        pytest.param(ilp.AmountTooLargeData(1.5, 0), id="received=1.5"),
        pytest.param(ilp.AmountTooLargeData(0, True), id="maximum=True"),
    ],
)
def test_amount_too_large_data_refuses(value):
    """AmountTooLargeData.encode raises EncodeError for amounts that are not UInt64 ints."""
    with pytest.raises(EncodeError):
        value.encode()


BAD_FRAMES = [
    pytest.param(btp.Message(-1), id="request-id=-1"),
    pytest.param(btp.Message(2**32), id="request-id=2**32"),
    pytest.param(btp.Message(1.0), id="request-id=1.0"),
    pytest.param(btp.Message(True), id="request-id=True"),
    pytest.param(btp.Transfer(1, -1), id="transfer=-1"),
    pytest.param(btp.Transfer(1, 2**64), id="transfer=2**64"),
    pytest.param(btp.Transfer(1, 10.0), id="transfer=float"),
    pytest.param(btp.Error(1, "F0", "n", "t"), id="error-code-2-chars"),
    pytest.param(btp.Error(1, "F\u00e90", "n", "t"), id="error-code-non-ascii"),
    pytest.param(btp.Error(1, "F00", "n\u00e9", "t"), id="error-name-non-ascii"),
    pytest.param(btp.Error(1, "F00", "n", "t\u00e9"), id="error-triggered-at-non-ascii"),
    pytest.param(btp.Error(1, "F00", "n", datetime(2020, 1, 1, tzinfo=UTC)), id="error-triggered-at-datetime"),
    pytest.param(btp.Error(1, "F00", None, "t"), id="error-name-None"),
    pytest.param(btp.Error(1, "F00", "n", "t", b"\x00" * 8193), id="error-data-8193"),
    pytest.param(btp.Error(1, "F00", "n", "t", "some text"), id="error-data-str"),
    pytest.param(btp.Message(1, (btp.ProtocolDataEntry("\u00eflp", 0, b""),)), id="name-non-ascii"),
    pytest.param(btp.Message(1, (btp.ProtocolDataEntry("ilp", 256, b""),)), id="content-type-256"),
    pytest.param(btp.Message(1, (btp.ProtocolDataEntry("ilp", -1, b""),)), id="content-type=-1"),
    pytest.param(btp.Message(1, (btp.ProtocolDataEntry("ilp", False, b""),)), id="content-type=False"),
    pytest.param(btp.Message(1, (btp.ProtocolDataEntry("ilp", 0, "str"),)), id="entry-data-str"),
    pytest.param(btp.Message(1, (("ilp", 0, b""),)), id="entry-plain-tuple"),
    pytest.param(btp.Message(1, None), id="protocol-data-None"),
    pytest.param(ilp.Fulfill(bytes(32)), id="not-a-frame"),
]


@pytest.mark.parametrize("frame", BAD_FRAMES)
def test_encode_frame_refuses(frame):
    """encode_frame raises EncodeError for an out-of-range, wrong-size or wrong-type field."""
    with pytest.raises(EncodeError):
        btp.encode_frame(frame)


def test_btp_error_data_at_the_limit_is_fine():
    """A BTP Error with exactly 8192 bytes of data encodes."""
    assert btp.encode_frame(btp.Error(1, "F00", "n", "t", b"\x00" * 8192))


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(datetime(2020, 1, 1, 12, 0), id="naive"),
        pytest.param("2020-01-01T12:00:00Z", id="str"),
        pytest.param(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), id="year-0-in-utc"),
    ],
)
def test_generalized_time_refuses(when):
    """generalized_time raises EncodeError for a naive datetime instead of reading it as local time."""
    with pytest.raises(EncodeError):
        btp.generalized_time(when)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(ildcp.IldcpResponse("g.a b", 2, "XRP"), id="address-space"),
        pytest.param(ildcp.IldcpResponse("g." + "a" * 1022, 2, "XRP"), id="address-1024"),
        pytest.param(ildcp.IldcpResponse(None, 2, "XRP"), id="address-None"),
        pytest.param(ildcp.IldcpResponse("g.a", 256, "XRP"), id="scale-256"),
        pytest.param(ildcp.IldcpResponse("g.a", -1, "XRP"), id="scale=-1"),
        pytest.param(ildcp.IldcpResponse("g.a", 2.0, "XRP"), id="scale-float"),
        pytest.param(ildcp.IldcpResponse("g.a", 2, None), id="code-None"),
        pytest.param(ildcp.IldcpResponse("g.a", 2, b"XRP"), id="code-bytes"),
    ],
)
def test_ildcp_response_refuses(value):
    """IldcpResponse.encode raises EncodeError for a bad address, scale or asset code."""
    with pytest.raises(EncodeError):
        value.encode()


@pytest.mark.parametrize("value, size", [(-1, 1), (256, 1), (2**32, 4), (1.0, 8), (True, 1), ("1", 1)])
def test_encode_uint_refuses(value, size):
    """encode_uint raises EncodeError for negatives, overflow and non-int values."""
    with pytest.raises(EncodeError):
        encode_uint(value, size)


@pytest.mark.parametrize("value", [-1, 2**64, 1.0, False, None])
def test_encode_var_uint_refuses(value):
    """encode_var_uint raises EncodeError outside UInt64 and for non-int values."""
    with pytest.raises(EncodeError):
        encode_var_uint(value)
