"""Byte fixtures: known-good encodings, checked in both directions.

Every fixture says where its bytes come from. Each was also checked by hand, field by field,
against the ASN.1 in ``asn1/`` (the breakdown is in the comment above it). Decoding a fixture
must give the listed values; encoding those values must give the fixture back, byte for byte.

Sources:

* ``ilp-packet`` = github.com/interledgerjs/ilp-packet, ``test/data/*/valid/example01.json``
  and ``test/error.spec.ts`` (commit 699d24bd, v3.0.9).
* ``btp-packet`` = github.com/interledgerjs/btp-packet ``test/index.spec.ts`` (v2.2.1, the copy
  in ``tests/interop/node_modules/btp-packet/test``).
* ``ilp-protocol-ildcp`` = github.com/interledgerjs/ilp-protocol-ildcp ``test/index.test.ts``
  (commit 5860f93, v2.0.2).
* "node" = produced by the reference packages installed in ``tests/interop/node_modules``
  (ilp-packet 3.1.3, btp-packet 2.2.1) from the values shown, for cases none of their test
  suites cover.
* RFC 30 = ``0030-notes-on-oer-encoding.md``, the "Examples" tables.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from ilptx.codec import btp, ildcp, ilp
from ilptx.codec.oer import DecodeError, Reader, encode_length, encode_var_octet_string, encode_uint

UTC = timezone.utc


def h(text: str) -> bytes:
    """Hex with any whitespace in it, as bytes."""
    return bytes.fromhex("".join(text.split()))


# -- ILP ------------------------------------------------------------------------------------

# ilp-packet test/data/ilp_prepare/valid/example01.json
#   0c type 12 | 68 length 104 = 8 + 17 + 32 + (1+13) + (1+32)
#   000000000000006b amount 107 | "20171223012140549" | 74e1..7de1 condition
#   0d "example.alice" | 20 + 32 bytes data
PREPARE_HEX = h("""
    0c 68
    000000000000006b
    3230313731323233303132313430353439
    74e1136dc71c9e5f283bec83461cbf1261c4014f72d48f8dd65453a0b84e7de1
    0d 6578616d706c652e616c696365
    20 5db343fdc41898f6df4202329139dc242dd0f558a811b46b28918fdab37c6cb0
""")
PREPARE = ilp.Prepare(
    amount=107,
    expires_at=datetime(2017, 12, 23, 1, 21, 40, 549000, tzinfo=UTC),
    execution_condition=h("74e1136dc71c9e5f283bec83461cbf1261c4014f72d48f8dd65453a0b84e7de1"),
    destination="example.alice",
    data=h("5db343fdc41898f6df4202329139dc242dd0f558a811b46b28918fdab37c6cb0"),
)

# ilp-packet test/data/ilp_fulfill/valid/example01.json
#   0d type 13 | 41 length 65 = 32 + (1+32) | fulfillment | 20 + 32 bytes data
FULFILL_HEX = h("""
    0d 41
    c3866b48749ccf113b2e15c25d2407fbfc14476fe7296bb1bf1bcd9e6e416650
    20 673febd78a33b28e1c0db14c9a06251a05fa831ed4ed91ebcd150e7249c2e600
""")
FULFILL = ilp.Fulfill(
    fulfillment=h("c3866b48749ccf113b2e15c25d2407fbfc14476fe7296bb1bf1bcd9e6e416650"),
    data=h("673febd78a33b28e1c0db14c9a06251a05fa831ed4ed91ebcd150e7249c2e600"),
)

# ilp-packet test/data/ilp_reject/valid/example01.json
#   0e type 14 | 41 length 65 = 3 + (1+14) + (1+39) + (1+6)
#   "F01" | 0e "example.us.bob" | 27 "missing destination. ledger=example.us." | 06 data
REJECT_HEX = h("""
    0e 41
    463031
    0e 6578616d706c652e75732e626f62
    27 6d697373696e672064657374696e6174696f6e2e206c65646765723d6578616d706c652e75732e
    06 000000041041
""")
REJECT = ilp.Reject(
    code="F01",
    triggered_by="example.us.bob",
    message="missing destination. ledger=example.us.",
    data=h("000000041041"),  # base64 "AAAABBBB" in the JSON
)

# The F08 data (receivedAmount 255, maximumAmount 65535) is ilp-packet test/error.spec.ts;
# the whole Reject is "node": ilp-packet serializeIlpReject({code: 'F08', triggeredBy:
# 'example.connie', message: 'amount too large', data}).
#   0e | 34 length 52 = 3 + (1+14) + (1+16) + (1+16)
#   "F08" | 0e "example.connie" | 10 "amount too large" | 10 + 2 x UInt64
AMOUNT_TOO_LARGE_DATA_HEX = h("00000000000000ff 000000000000ffff")
F08_REJECT_HEX = h("""
    0e 34
    463038
    0e 6578616d706c652e636f6e6e6965
    10 616d6f756e7420746f6f206c61726765
    10 00000000000000ff000000000000ffff
""")
F08_REJECT = ilp.Reject("F08", "example.connie", "amount too large", AMOUNT_TOO_LARGE_DATA_HEX)

ILP_FIXTURES = [
    pytest.param(PREPARE_HEX, PREPARE, id="prepare"),
    pytest.param(FULFILL_HEX, FULFILL, id="fulfill"),
    pytest.param(REJECT_HEX, REJECT, id="reject"),
    pytest.param(F08_REJECT_HEX, F08_REJECT, id="reject-f08"),
]


@pytest.mark.parametrize("raw, value", ILP_FIXTURES)
def test_ilp_fixture_decodes_to_values(raw, value):
    """decode_packet turns each reference ILP fixture into exactly the listed dataclass."""
    assert ilp.decode_packet(raw) == value


@pytest.mark.parametrize("raw, value", ILP_FIXTURES)
def test_ilp_fixture_encodes_to_bytes(raw, value):
    """encode_packet turns the listed values into the reference bytes, byte for byte."""
    assert ilp.encode_packet(value) == raw


def test_prepare_fixture_decodes_with_decode_prepare():
    """decode_prepare accepts the reference Prepare and returns the same value as decode_packet."""
    assert ilp.decode_prepare(PREPARE_HEX) == PREPARE


@pytest.mark.parametrize("raw, value", ILP_FIXTURES[1:])
def test_response_fixtures_decode_with_decode_response(raw, value):
    """decode_response accepts the reference Fulfill and Rejects."""
    assert ilp.decode_response(raw) == value


def test_amount_too_large_data_fixture():
    """AmountTooLargeData matches ilp-packet's F08 data bytes (received 255, maximum 65535) both ways."""
    value = ilp.AmountTooLargeData(received_amount=255, maximum_amount=65535)
    assert value.encode() == AMOUNT_TOO_LARGE_DATA_HEX
    assert ilp.AmountTooLargeData.decode(AMOUNT_TOO_LARGE_DATA_HEX) == value
    assert ilp.AmountTooLargeData.decode(ilp.decode_packet(F08_REJECT_HEX).data) == value


def test_prepare_fixture_fulfillment_relation():
    """fulfillment_matches is SHA-256(fulfillment) == condition, and rejects a wrong preimage."""
    preimage = b"\x01" * 32
    assert ilp.fulfillment_matches(preimage, hashlib.sha256(preimage).digest())
    assert not ilp.fulfillment_matches(preimage, PREPARE.execution_condition)
    assert not ilp.fulfillment_matches(b"\x02" * 32, hashlib.sha256(preimage).digest())


# -- IL-DCP ---------------------------------------------------------------------------------

# ilp-protocol-ildcp test/index.test.ts, "should serialize an IL-DCP request" (the clock is faked
# at 2015-06-16T00:00:00Z and the request expires 60 s later).
#   0c | 46 length 70 = 8 + 17 + 32 + (1+11) + 1
#   amount 0 | "20150616000100000" | SHA-256(32 zero bytes) | 0b "peer.config" | 00 empty data
ILDCP_REQUEST_HEX = h("""
    0c 46
    0000000000000000
    3230313530363136303030313030303030
    66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
    0b 706565722e636f6e666967
    00
""")
# ilp-protocol-ildcp test/index.test.ts, "should serialize an IL-DCP response".
#   0d | 35 length 53 = 32 + (1+20) | 32 zero bytes
#   14 data: 0e "example.client" | 0d scale 13 | 03 "XAM"
ILDCP_RESPONSE_DATA_HEX = h("0e 6578616d706c652e636c69656e74 0d 03 58414d")
ILDCP_RESPONSE_HEX = h("0d 35") + bytes(32) + h("14") + ILDCP_RESPONSE_DATA_HEX


def test_ildcp_condition_constant():
    """PEER_PROTOCOL_CONDITION is SHA-256 of 32 zero bytes, 66687aad..., as the reference uses."""
    assert ildcp.PEER_PROTOCOL_CONDITION == h("66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925")
    assert ildcp.PEER_PROTOCOL_FULFILLMENT == bytes(32)


def test_ildcp_request_fixture():
    """request_prepare() encodes to the reference IL-DCP request, and the bytes decode back to it."""
    expires = datetime(2015, 6, 16, 0, 1, tzinfo=UTC)
    request = ildcp.request_prepare(expires)
    assert ilp.encode_packet(request) == ILDCP_REQUEST_HEX
    assert ilp.decode_prepare(ILDCP_REQUEST_HEX) == ilp.Prepare(
        0, expires, ildcp.PEER_PROTOCOL_CONDITION, "peer.config", b""
    )


def test_ildcp_response_fixture():
    """response_fulfill() encodes to the reference IL-DCP response, and its data decodes back."""
    value = ildcp.IldcpResponse(client_address="example.client", asset_scale=13, asset_code="XAM")
    assert value.encode() == ILDCP_RESPONSE_DATA_HEX
    assert ilp.encode_packet(ildcp.response_fulfill(value)) == ILDCP_RESPONSE_HEX
    fulfill = ilp.decode_response(ILDCP_RESPONSE_HEX)
    assert fulfill == ilp.Fulfill(bytes(32), ILDCP_RESPONSE_DATA_HEX)
    assert ildcp.IldcpResponse.decode(fulfill.data) == value


# -- BTP ------------------------------------------------------------------------------------

# btp-packet test/index.spec.ts, the shared protocolData: count 01 04, then
#   03 "ilp" 00 00 | 03 "foo" 00 03 "bar" | 04 "beep" 01 04 "boop" | 04 "json" 02 02 "{}"
BTP_PROTOCOL_DATA_HEX = h("""
    01 04
    03 696c70 00 00
    03 666f6f 00 03 626172
    04 62656570 01 04 626f6f70
    04 6a736f6e 02 02 7b7d
""")
BTP_PROTOCOL_DATA = (
    btp.ProtocolDataEntry("ilp", btp.CONTENT_OCTET_STREAM, b""),
    btp.ProtocolDataEntry("foo", btp.CONTENT_OCTET_STREAM, b"bar"),
    btp.ProtocolDataEntry("beep", btp.CONTENT_TEXT_PLAIN_UTF8, b"boop"),
    btp.ProtocolDataEntry("json", btp.CONTENT_JSON, b"{}"),
)
# btp-packet buffers.response: 01 type | 00000001 request id | 25 length 37 | protocol data
BTP_RESPONSE_HEX = h("01 00000001 25") + BTP_PROTOCOL_DATA_HEX
# btp-packet buffers.message: 06 type | 00000001 | 25 | protocol data
BTP_MESSAGE_HEX = h("06 00000001 25") + BTP_PROTOCOL_DATA_HEX
# btp-packet buffers.transfer: 07 | 00000001 | 2d length 45 = 8 + 37 | amount 100 | protocol data
BTP_TRANSFER_HEX = h("07 00000001 2d 0000000000000064") + BTP_PROTOCOL_DATA_HEX
# btp-packet buffers.error: 02 | 00000001 | 4a length 74 = 3 + 10 + 20 + 4 + 37
#   "L13" | 09 "errorName" | 13 "20170828183200.000Z" | 03 "boo" | protocol data
BTP_ERROR_HEX = h("""
    02 00000001 4a
    4c3133
    09 6572726f724e616d65
    13 32303137303832383138333230302e3030305a
    03 626f6f
""") + BTP_PROTOCOL_DATA_HEX

# "node": btp-packet serialize({type: TYPE_MESSAGE, requestId: 0xdeadbeef, data: {protocolData:
# [{protocolName: 'ilp', contentType: 0, data: <PREPARE_HEX>}]}}) -- an ILP Prepare over BTP.
#   06 | deadbeef | 72 length 114 = 2 + (1+3) + 1 + (1+106) | 01 01 one entry
#   03 "ilp" | 00 octet-stream | 6a + the 106-byte Prepare
BTP_ILP_MESSAGE_HEX = h("06 deadbeef 72 01 01 03 696c70 00 6a") + PREPARE_HEX
# "node": ilp-plugin-btp's auth Message ({auth: empty, auth_username: '', auth_token: 'secret'})
# serialized by btp-packet with request id 1.
#   06 | 00000001 | 2c length 44 | 01 03 three entries
#   04 "auth" 00 00 | 0d "auth_username" 01 00 | 0a "auth_token" 01 06 "secret"
BTP_AUTH_HEX = h("""
    06 00000001 2c
    01 03
    04 61757468 00 00
    0d 617574685f757365726e616d65 01 00
    0a 617574685f746f6b656e 01 06 736563726574
""")
# "node": btp-packet serialize({type: TYPE_RESPONSE, requestId: 2, data: {protocolData: []}})
#   01 | 00000002 | 02 | 01 00 (zero entries)
BTP_EMPTY_RESPONSE_HEX = h("01 00000002 02 0100")
# "node": btp-packet serialize({type: TYPE_TRANSFER, requestId: 3, data: {amount:
# '18446744073709551615', protocolData: []}}) -- the largest UInt64 amount.
BTP_MAX_TRANSFER_HEX = h("07 00000003 0a ffffffffffffffff 0100")

BTP_FIXTURES = [
    pytest.param(BTP_RESPONSE_HEX, btp.Response(1, BTP_PROTOCOL_DATA), id="response"),
    pytest.param(BTP_MESSAGE_HEX, btp.Message(1, BTP_PROTOCOL_DATA), id="message"),
    pytest.param(BTP_TRANSFER_HEX, btp.Transfer(1, 100, BTP_PROTOCOL_DATA), id="transfer"),
    pytest.param(
        BTP_ERROR_HEX,
        btp.Error(1, "L13", "errorName", "20170828183200.000Z", b"boo", BTP_PROTOCOL_DATA),
        id="error",
    ),
    pytest.param(
        BTP_ILP_MESSAGE_HEX,
        btp.Message(0xDEADBEEF, (btp.ProtocolDataEntry("ilp", btp.CONTENT_OCTET_STREAM, PREPARE_HEX),)),
        id="message-ilp",
    ),
    pytest.param(BTP_AUTH_HEX, btp.auth_message(1, "secret"), id="auth"),
    pytest.param(BTP_EMPTY_RESPONSE_HEX, btp.Response(2, ()), id="response-empty"),
    pytest.param(BTP_MAX_TRANSFER_HEX, btp.Transfer(3, 2**64 - 1, ()), id="transfer-max"),
]


@pytest.mark.parametrize("raw, value", BTP_FIXTURES)
def test_btp_fixture_decodes_to_values(raw, value):
    """decode_frame turns each reference BTP fixture into exactly the listed frame."""
    assert btp.decode_frame(raw) == value


@pytest.mark.parametrize("raw, value", BTP_FIXTURES)
def test_btp_fixture_encodes_to_bytes(raw, value):
    """encode_frame turns the listed frame into the reference bytes, byte for byte."""
    assert btp.encode_frame(value) == raw


@pytest.mark.parametrize("raw, value", BTP_FIXTURES)
def test_peek_request_id_on_fixtures(raw, value):
    """peek_request_id reads the request id of every fixture without decoding the body."""
    assert btp.peek_request_id(raw) == value.request_id
    assert btp.peek_request_id(raw[:5]) == value.request_id
    assert btp.peek_request_id(raw[:4]) is None


def test_btp_ilp_message_carries_the_prepare():
    """The 'ilp' entry of the BTP Message fixture holds the reference Prepare, unchanged."""
    frame = btp.decode_frame(BTP_ILP_MESSAGE_HEX)
    entry = btp.find_entry(frame.protocol_data, "ilp")
    assert entry is not None and entry.content_type == btp.CONTENT_OCTET_STREAM
    assert ilp.decode_packet(entry.data) == PREPARE


def test_btp_auth_fixture_parses():
    """parse_auth extracts ('', b'secret') from the ilp-plugin-btp auth Message fixture."""
    assert btp.parse_auth(btp.decode_frame(BTP_AUTH_HEX)) == ("", b"secret")


def test_btp_auth_with_username_parses():
    """parse_auth returns the auth_username text and the raw auth_token bytes."""
    frame = btp.decode_frame(btp.encode_frame(btp.auth_message(9, "tok\u00e9n", "alice")))
    assert btp.parse_auth(frame) == ("alice", "tok\u00e9n".encode("utf-8"))


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(btp.Response(1, btp.auth_message(1, "t").protocol_data), id="not-a-message"),
        pytest.param(btp.Message(1, ()), id="no-entries"),
        pytest.param(btp.Message(1, btp.auth_message(1, "t").protocol_data[1:]), id="auth-not-primary"),
        pytest.param(btp.Message(1, btp.auth_message(1, "t").protocol_data[:2]), id="no-token"),
        pytest.param(
            btp.Message(1, btp.auth_message(1, "t").protocol_data + (btp.ProtocolDataEntry("auth_token", 1, b"x"),)),
            id="duplicate-name",
        ),
        pytest.param(
            btp.Message(1, (
                btp.ProtocolDataEntry("auth", 0, b""),
                btp.ProtocolDataEntry("auth_username", 1, b"\xff"),
                btp.ProtocolDataEntry("auth_token", 1, b"t"),
            )),
            id="username-not-utf8",
        ),
    ],
)
def test_parse_auth_rejects_bad_auth_messages(frame):
    """parse_auth raises DecodeError for each way RFC 23's auth Message can be wrong."""
    with pytest.raises(DecodeError):
        btp.parse_auth(frame)


def test_generalized_time_matches_btp_packet():
    """generalized_time formats like btp-packet: '20170828183200.000Z' for 2017-08-28T18:32Z."""
    assert btp.generalized_time(datetime(2017, 8, 28, 18, 32, tzinfo=UTC)) == "20170828183200.000Z"
    plus2 = timezone(timedelta(hours=2))
    assert btp.generalized_time(datetime(2017, 12, 24, 18, 14, 32, 279112, tzinfo=plus2)) == "20171224161432.279Z"


# -- OER primitives and timestamps: RFC 30 examples ----------------------------------------

RFC30_LENGTHS = [
    ("07", 7),
    ("8182", 130),
    ("821234", 4660),
    ("83ABCDEF", 11259375),
    ("88AC01055A1DEBAC1E", 12394193534107495454),
]


@pytest.mark.parametrize("raw, value", RFC30_LENGTHS)
def test_rfc30_length_determinants(raw, value):
    """Length determinants decode and encode as in RFC 30's examples table."""
    r = Reader(h(raw))
    assert r.read_length() == value
    assert r.remaining() == 0
    assert encode_length(value) == h(raw)


def test_rfc30_fixed_uints():
    """UInt32 ABABABAB and UInt64 AC01055A1DEBAC1E match RFC 30's examples both ways."""
    assert Reader(h("ABABABAB")).read_uint32() == 2880154539
    assert Reader(h("AC01055A1DEBAC1E")).read_uint64() == 12394193534107495454
    assert encode_uint(2880154539, 4) == h("ABABABAB")
    assert encode_uint(12394193534107495454, 8) == h("AC01055A1DEBAC1E")
    assert encode_uint(4660, 2) == h("1234")


RFC30_LONG_ADDRESS = (
    "example.very.long.address.to.exceed.127.characters.and.trigger.a.long.form."
    "length.determinant.to.show.how.that.works.great.as.well"
)


@pytest.mark.parametrize(
    "raw, address",
    [
        ("18 6578616D706C652E746F702E6D6964646C652E6C6F776572", "example.top.middle.lower"),
        ("8182" + RFC30_LONG_ADDRESS.encode("ascii").hex(), RFC30_LONG_ADDRESS),
    ],
)
def test_rfc30_address_encodings(raw, address):
    """ILP addresses are length-prefixed IA5Strings, with a long-form prefix past 127 characters (RFC 30)."""
    assert len(RFC30_LONG_ADDRESS) == 130
    assert Reader(h(raw)).read_ascii() == address
    assert encode_var_octet_string(address.encode("ascii")) == h(raw)


def test_rfc30_long_address_in_a_prepare():
    """A Prepare to RFC 30's 130-character address puts the 81 82 long-form prefix on the wire."""
    packet = ilp.Prepare(1, PREPARE.expires_at, bytes(32), RFC30_LONG_ADDRESS)
    raw = ilp.encode_packet(packet)
    assert h("8182") + RFC30_LONG_ADDRESS.encode("ascii") in raw
    assert ilp.decode_packet(raw) == packet


@pytest.mark.parametrize(
    "raw, when",
    [
        ("32303137 31323234 31363134 33323237 39", datetime(2017, 12, 24, 16, 14, 32, 279000, tzinfo=UTC)),
        ("32303137 31323234 31363134 33323230 30", datetime(2017, 12, 24, 16, 14, 32, 200000, tzinfo=UTC)),
        ("32303137 31323235 30303030 30303030 30", datetime(2017, 12, 25, tzinfo=UTC)),
    ],
)
def test_rfc30_timestamp_encodings(raw, when):
    """ILP Timestamps encode and decode as the 17-byte strings of RFC 30's examples."""
    assert ilp.encode_timestamp(when) == h(raw)
    assert ilp.decode_timestamp(h(raw)) == when


@pytest.mark.parametrize(
    "text, when",
    [
        ("20171224161432279", datetime(2017, 12, 24, 16, 14, 32, 279000, tzinfo=UTC)),
        ("20171224161432270", datetime(2017, 12, 24, 16, 14, 32, 270000, tzinfo=UTC)),
        ("20171224161432000", datetime(2017, 12, 24, 16, 14, 32, tzinfo=UTC)),
        ("20161231235959852", datetime(2016, 12, 31, 23, 59, 59, 852000, tzinfo=UTC)),
        ("20171225000000000", datetime(2017, 12, 25, tzinfo=UTC)),
        ("99991224161432279", datetime(9999, 12, 24, 16, 14, 32, 279000, tzinfo=UTC)),
    ],
)
def test_rfc30_valid_timestamps_decode(text, when):
    """Every RFC 30 "valid" fixed-length timestamp decodes to the stated UTC instant."""
    assert ilp.decode_timestamp(text.encode("ascii")) == when


@pytest.mark.parametrize(
    "text",
    [
        "20171224235312.431+0200",
        "201712242153124318",
        "20171324161432200",  # month 13
        "20171224230000000.",
        "20171224240000000",  # hour 24 instead of the next day's 00
        "20171224215300",
        "2017122421531",
        "201712242153",
        "2017122421",
        "20161231235960852",  # unsmeared leap second
        "2017-12-24T16:14:3",  # 17 characters, not digits
        "2017122416143227\u0661",  # non-ASCII digit
    ],
)
def test_rfc30_invalid_timestamps_rejected(text):
    """Every RFC 30 "invalid" fixed-length timestamp (and non-digit variants) raises DecodeError."""
    with pytest.raises(DecodeError):
        ilp.decode_timestamp(text.encode("utf-8"))


def test_rfc30_timestamp_encoding_rules():
    """encode_timestamp drops sub-millisecond digits and converts other zones to UTC (RFC 30)."""
    assert ilp.encode_timestamp(datetime(2017, 12, 24, 16, 14, 32, 279112, tzinfo=UTC)) == b"20171224161432279"
    plus2 = timezone(timedelta(hours=2))
    assert ilp.encode_timestamp(datetime(2017, 12, 24, 18, 14, 32, tzinfo=plus2)) == b"20171224161432000"
    assert ilp.encode_timestamp(datetime(17, 1, 2, 3, 4, 5, tzinfo=UTC)) == b"00170102030405000"
