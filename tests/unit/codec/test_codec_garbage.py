"""Hostile input: every decoder returns a value or raises ``DecodeError`` -- never anything else.

A peer controls every byte we decode. An ``IndexError``, ``struct.error``, ``UnicodeDecodeError``,
``OverflowError`` or ``MemoryError`` escaping a decoder would bypass the callers' error
handling (they catch ``DecodeError`` to answer with F01 / a BTP Error), so these tests call
each decoder on random bytes and on damaged valid encodings and fail on any other exception.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from ilptx.codec import btp, ildcp, ilp
from ilptx.codec.oer import DecodeError, Reader, encode_length, encode_var_octet_string

UTC = timezone.utc

DECODERS = {
    "decode_packet": ilp.decode_packet,
    "decode_prepare": ilp.decode_prepare,
    "decode_response": ilp.decode_response,
    "decode_frame": btp.decode_frame,
    "IldcpResponse.decode": ildcp.IldcpResponse.decode,
    "AmountTooLargeData.decode": ilp.AmountTooLargeData.decode,
    "decode_timestamp": ilp.decode_timestamp,
}


def decodes_or_raises_decode_error(decoder, raw: bytes):
    """Run ``decoder(raw)``; :returns: the value, or ``None`` if it raised DecodeError.

    Any other exception propagates and fails the test.
    """
    try:
        return decoder(raw)
    except DecodeError:
        return None


def all_decoders_behave(raw: bytes) -> None:
    for decoder in DECODERS.values():
        decodes_or_raises_decode_error(decoder, raw)


#: A valid encoding of any kind, as bytes.
valid_encodings = st.one_of(
    cs.packets.map(ilp.encode_packet),
    cs.frames.map(btp.encode_frame),
    cs.ildcp_responses.map(lambda v: v.encode()),
    cs.amount_too_large.map(lambda v: v.encode()),
)


@st.composite
def damaged(draw):
    """A valid encoding, truncated, with bytes flipped, inserted or appended."""
    raw = bytearray(draw(valid_encodings))
    how = draw(st.sampled_from(["truncate", "flip", "append", "insert", "flip-many"]))
    if how == "truncate":
        del raw[draw(st.integers(0, len(raw) - 1)):]
    elif how == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] ^= draw(st.integers(1, 255))
    elif how == "flip-many":
        for _ in range(draw(st.integers(2, 6))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
    elif how == "append":
        raw += draw(st.binary(min_size=1, max_size=20))
    else:
        i = draw(st.integers(0, len(raw)))
        raw[i:i] = draw(st.binary(min_size=1, max_size=20))
    return bytes(raw)


@cs.FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(raw):
    """Every decoder either decodes arbitrary bytes or raises DecodeError."""
    all_decoders_behave(raw)


@cs.FAST
@given(st.sampled_from([12, 13, 14, 1, 2, 6, 7]), st.binary(max_size=200))
def test_plausible_headers_with_garbage_bodies(type_id, body):
    """A real type byte and a correct length prefix over random bytes still only yields DecodeError."""
    all_decoders_behave(bytes((type_id,)) + encode_length(len(body)) + body)
    all_decoders_behave(bytes((type_id,)) + b"\x00\x00\x00\x01" + encode_length(len(body)) + body)


@cs.FAST
@given(damaged())
def test_damaged_encodings_never_raise_anything_but_decode_error(raw):
    """Truncated, flipped, inserted or appended bytes in valid encodings only ever raise DecodeError."""
    all_decoders_behave(raw)


@cs.FAST
@given(cs.packets, st.data())
def test_truncated_ilp_packets_always_fail(packet, data):
    """Any proper prefix of a valid ILP packet raises DecodeError (the length prefix no longer matches)."""
    raw = ilp.encode_packet(packet)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        ilp.decode_packet(raw[:cut])


@cs.FAST
@given(cs.packets, st.binary(min_size=1, max_size=20))
def test_ilp_packets_with_trailing_bytes_fail(packet, extra):
    """A valid ILP packet followed by extra bytes raises DecodeError."""
    with pytest.raises(DecodeError):
        ilp.decode_packet(ilp.encode_packet(packet) + extra)


@cs.FAST
@given(cs.frames, st.data())
def test_truncated_btp_frames_always_fail(frame, data):
    """Any proper prefix of a valid BTP frame raises DecodeError."""
    raw = btp.encode_frame(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        btp.decode_frame(raw[:cut])


@cs.FAST
@given(cs.frames, st.binary(min_size=1, max_size=20))
def test_btp_frames_with_trailing_bytes_fail(frame, extra):
    """A valid BTP frame followed by extra bytes raises DecodeError."""
    with pytest.raises(DecodeError):
        btp.decode_frame(btp.encode_frame(frame) + extra)


@cs.FAST
@given(st.one_of(cs.ildcp_responses, cs.amount_too_large), st.data())
def test_truncated_or_extended_ildcp_and_f08_data_fail(value, data):
    """IL-DCP response data and F08 data with bytes cut off or added raise DecodeError."""
    raw = value.encode()
    decode = type(value).decode
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode(raw[:cut])
    with pytest.raises(DecodeError):
        decode(raw + data.draw(st.binary(min_size=1, max_size=5)))


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xff" * 9, b"\x0c\xff", b"\x06\xff\xff\xff\xff\x8f"])
def test_short_and_degenerate_inputs(name, raw):
    """Empty, one-byte and all-0xff inputs raise DecodeError from every decoder."""
    with pytest.raises(DecodeError):
        DECODERS[name](raw)


@pytest.mark.parametrize("decoder", [ilp.decode_packet, btp.decode_frame])
@pytest.mark.parametrize("value", [None, "0c00", 12, [12, 0]])
def test_non_bytes_input_raises_decode_error(decoder, value):
    """decode_packet and decode_frame turn a non-bytes argument into DecodeError too."""
    with pytest.raises(DecodeError):
        decoder(value)


@pytest.mark.parametrize("decoder", [ilp.decode_packet, btp.decode_frame])
def test_bytearray_and_memoryview_accepted(decoder):
    """bytearray and memoryview inputs decode like bytes (what transports hand us)."""
    raw = ilp.encode_packet(ilp.Fulfill(bytes(32))) if decoder is ilp.decode_packet else btp.encode_frame(btp.Message(1))
    assert decoder(bytearray(raw)) == decoder(raw)
    assert decoder(memoryview(raw)) == decoder(raw)


# -- length prefixes ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("80", id="long-form-of-length-0"),
        pytest.param("8120", id="long-form-for-32"),
        pytest.param("817f", id="long-form-for-127"),
        pytest.param("820020", id="leading-zero"),
        pytest.param("82007f", id="leading-zero-127"),
        pytest.param("89010000000000000000", id="nine-byte-length"),
        pytest.param("ff", id="length-of-length-127"),
        pytest.param("88ffffffffffffffff", id="2**64-1-bytes"),
    ],
)
def test_non_canonical_or_absurd_length_prefixes(prefix):
    """read_length rejects non-canonical long forms and lengths beyond the input, with DecodeError."""
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(prefix) + b"\x00" * 40).read_var_octet_string()


def test_long_form_accepted_at_128():
    """The long form 81 80 is canonical for 128 and is accepted."""
    assert Reader(b"\x81\x80" + b"x" * 128).read_var_octet_string() == b"x" * 128


def _fulfill_with_data_prefix(prefix: bytes, data: bytes) -> bytes:
    body = bytes(32) + prefix + data
    return b"\x0d" + encode_length(len(body)) + body


def test_non_canonical_data_prefix_in_fulfill():
    """A Fulfill whose data length is written 81 05 (long form for 5) raises DecodeError."""
    assert ilp.decode_packet(_fulfill_with_data_prefix(b"\x05", b"hello")) == ilp.Fulfill(bytes(32), b"hello")
    with pytest.raises(DecodeError):
        ilp.decode_packet(_fulfill_with_data_prefix(b"\x81\x05", b"hello"))
    with pytest.raises(DecodeError):
        ilp.decode_packet(_fulfill_with_data_prefix(b"\x82\x00\x05", b"hello"))


def test_non_canonical_envelope_prefix():
    """An ILP envelope length written 81 21 (long form for 33) raises DecodeError."""
    body = bytes(32) + b"\x00"
    assert ilp.decode_packet(b"\x0d\x21" + body) == ilp.Fulfill(bytes(32))
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0d\x81\x21" + body)
    with pytest.raises(DecodeError):
        btp.decode_frame(b"\x06\x00\x00\x00\x01\x81\x02\x01\x00")


@pytest.mark.parametrize("declared", [0, 1, 32, 35])
def test_envelope_length_must_match(declared):
    """An ILP envelope whose length is not exactly the bytes that follow raises DecodeError."""
    body = bytes(32) + b"\x00"
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0d" + encode_length(declared) + body)


def test_ilp_data_longer_than_32767_rejected():
    """A Fulfill carrying 32768 bytes of data (over the ASN.1 maximum) raises DecodeError."""
    body = bytes(32) + encode_var_octet_string(b"\x00" * 32768)
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0d" + encode_length(len(body)) + body)


def test_btp_error_data_longer_than_8192_rejected():
    """A BTP Error whose data is 8193 bytes raises DecodeError."""
    body = b"F00" + b"\x00" + b"\x00" + encode_var_octet_string(b"\x00" * 8193) + b"\x01\x00"
    with pytest.raises(DecodeError):
        btp.decode_frame(b"\x02\x00\x00\x00\x01" + encode_length(len(body)) + body)


@pytest.mark.parametrize("raw", ["00", "09010203040506070809", "0201", "8101"])
def test_bad_var_uints(raw):
    """read_var_uint rejects a zero-length, over-64-bit or truncated integer with DecodeError."""
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(raw)).read_var_uint()


# -- protocol data counts -------------------------------------------------------------------

def _message(body: bytes) -> bytes:
    return b"\x06\x00\x00\x00\x07" + encode_length(len(body)) + body


@pytest.mark.parametrize(
    "count_field",
    [
        pytest.param("04ffffffff", id="4-billion"),
        pytest.param("08ffffffffffffffff", id="2**64-1"),
        pytest.param("0102", id="two-but-one-present"),
        pytest.param("0105", id="five-but-one-present"),
    ],
)
def test_protocol_data_count_larger_than_input(count_field):
    """A count claiming more entries than the frame holds raises DecodeError (without a huge loop)."""
    one_entry = b"\x03ilp\x00\x00"
    with pytest.raises(DecodeError):
        btp.decode_frame(_message(bytes.fromhex(count_field) + one_entry))


@pytest.mark.parametrize("count_field", ["00", "09010000000000000000"])
def test_protocol_data_count_with_bad_length(count_field):
    """A protocol data count of length 0 or longer than 8 bytes raises DecodeError."""
    with pytest.raises(DecodeError):
        btp.decode_frame(_message(bytes.fromhex(count_field)))


def test_protocol_data_fewer_entries_than_bytes():
    """A count of 1 followed by two entries leaves trailing bytes: DecodeError."""
    with pytest.raises(DecodeError):
        btp.decode_frame(_message(b"\x01\x01" + b"\x03ilp\x00\x00" * 2))


def test_protocol_name_must_be_ascii():
    """A protocol name with a byte over 0x7f (IA5String) raises DecodeError."""
    assert btp.decode_frame(_message(b"\x01\x01\x03ilp\x00\x00")).protocol_data[0].protocol_name == "ilp"
    with pytest.raises(DecodeError):
        btp.decode_frame(_message(b"\x01\x01\x03il\xf0\x00\x00"))


# -- addresses, strings, timestamps -----------------------------------------------------------

def _prepare_body(destination: bytes, expires: bytes = b"20200101000000000") -> bytes:
    body = (5).to_bytes(8, "big") + expires + bytes(32) + encode_var_octet_string(destination) + b"\x00"
    return b"\x0c" + encode_length(len(body)) + body


@pytest.mark.parametrize(
    "destination",
    [b"g.b\xc3\xa9b", b"g.\xff", b"g.a b", b"g.a!", b"g.a\n", b"g.a\x00", b"g/a"],
)
def test_prepare_destination_outside_address_charset(destination):
    """A Prepare whose destination has non-ASCII or non-address characters raises DecodeError."""
    assert ilp.decode_packet(_prepare_body(b"g.bob")).destination == "g.bob"
    with pytest.raises(DecodeError):
        ilp.decode_packet(_prepare_body(destination))


def test_prepare_destination_over_1023_rejected():
    """A destination of 1024 characters (over the ASN.1 maximum) raises DecodeError; 1023 decodes."""
    assert len(ilp.decode_packet(_prepare_body(b"g." + b"a" * 1021)).destination) == 1023
    with pytest.raises(DecodeError):
        ilp.decode_packet(_prepare_body(b"g." + b"a" * 1022))


def test_reject_triggered_by_must_be_address_charset():
    """A Reject whose triggeredBy has a non-ASCII byte raises DecodeError; empty triggeredBy decodes."""
    good = b"\x0e\x06F00\x00\x00\x00"
    assert ilp.decode_packet(good) == ilp.Reject("F00")
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0e\x08F00\x02\xc3\xa9\x00\x00")


def test_reject_message_must_be_utf8():
    """A Reject whose message is not valid UTF-8 raises DecodeError."""
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0e\x08F00\x00\x02\xc3\x28\x00")
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0e\x0aF00\x00\x04\xed\xa0\x80\x41\x00")  # encoded surrogate


def test_reject_code_must_be_ascii():
    """A Reject whose code has a non-ASCII byte raises DecodeError."""
    with pytest.raises(DecodeError):
        ilp.decode_packet(b"\x0e\x06F\xc3\xa9\x00\x00\x00")


def test_ildcp_response_bad_fields():
    """IL-DCP data with a non-address client address or non-UTF-8 asset code raises DecodeError."""
    assert ildcp.IldcpResponse.decode(b"\x03g.a\x02\x03XRP") == ildcp.IldcpResponse("g.a", 2, "XRP")
    with pytest.raises(DecodeError):
        ildcp.IldcpResponse.decode(b"\x03g a\x02\x03XRP")
    with pytest.raises(DecodeError):
        ildcp.IldcpResponse.decode(b"\x03g.\xe9\x02\x03XRP")
    with pytest.raises(DecodeError):
        ildcp.IldcpResponse.decode(b"\x03g.a\x02\x02\xc3\x28")


@pytest.mark.parametrize(
    "expires",
    [b"20171324161432200", b"20170230000000000", b"20171224240000000", b"20171224236000000",
     b"20161231235960852", b"00000101000000000", b"2017122416143220x", b"2017-12-24T16:14Z"],
)
def test_prepare_with_invalid_timestamp(expires):
    """A Prepare whose expiresAt is not a real UTC instant (month 13, Feb 30, hour 24...) raises DecodeError."""
    assert ilp.decode_packet(_prepare_body(b"g.a")).expires_at == datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(DecodeError):
        ilp.decode_packet(_prepare_body(b"g.a", expires))


# -- unknown or unexpected types ------------------------------------------------------------

@pytest.mark.parametrize("type_id", [0, 1, 2, 6, 7, 11, 15, 16, 255])
def test_unknown_ilp_type(type_id):
    """An ILP envelope with a type other than 12, 13, 14 raises DecodeError."""
    body = bytes(32) + b"\x00"
    with pytest.raises(DecodeError):
        ilp.decode_packet(bytes((type_id,)) + encode_length(len(body)) + body)


@pytest.mark.parametrize("type_id", [0, 3, 4, 5, 8, 12, 255])
def test_unknown_or_unused_btp_type(type_id):
    """A BTP frame of type 0, 3-5 (unused in BTP 2.0), 8 or higher raises DecodeError."""
    with pytest.raises(DecodeError):
        btp.decode_frame(bytes((type_id,)) + b"\x00\x00\x00\x01\x02\x01\x00")


def test_decode_prepare_rejects_responses_and_decode_response_rejects_prepares():
    """decode_prepare refuses Fulfill/Reject and decode_response refuses a Prepare, with DecodeError."""
    prepare = ilp.encode_packet(ilp.Prepare(1, datetime(2020, 1, 1, tzinfo=UTC), bytes(32), "g.a"))
    fulfill = ilp.encode_packet(ilp.Fulfill(bytes(32)))
    reject = ilp.encode_packet(ilp.Reject("F00"))
    for raw in (fulfill, reject):
        with pytest.raises(DecodeError):
            ilp.decode_prepare(raw)
    with pytest.raises(DecodeError):
        ilp.decode_response(prepare)
