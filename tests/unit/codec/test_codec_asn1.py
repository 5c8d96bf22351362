"""Differential tests: ``ilptx.codec`` against ``asn1tools`` (codec ``oer``) compiled from the RFC ASN.1.

The ASN.1 modules are vendored in ``asn1/`` (CC BY-SA 4.0, see ``asn1/README.md`` and
``asn1/LICENSE``) so that these tests do not need ``shared/`` beside the clone; when
``shared/specs/asn1`` is there, one test checks the copies have not drifted from it.

asn1tools cannot compile the information-object ``CLASS`` syntax of the two envelopes
(``InterledgerPacket``, ``BilateralTransferProtocolPacket``: "Type 'OpenType' not found"). So:

* the inner SEQUENCE types are compiled as written (for BTP: the module text up to the
  ``CALL ::= CLASS`` definition, i.e. without the class, the call set and the envelope);
* the envelopes are checked with a stand-in module, ``ENVELOPES`` below, that spells the open
  type as ``OCTET STRING``. That is exact for OER: X.696 encodes an open type as a length
  determinant followed by the encoding of the value, which is precisely an OCTET STRING whose
  contents are that encoding.

Each property encodes a value with both codecs and compares the bytes, then decodes each
codec's output with the other one. asn1tools runs with ``check_constraints=True``, so it also
verifies that what we emit satisfies the ASN.1 constraints (sizes, ranges, the address alphabet).

Representation differences bridged here: ILP ``Timestamp`` is a ``PrintableString`` for
asn1tools and an aware datetime for us; BTP ``triggeredAt`` is a datetime for asn1tools and a
``str`` for us (converted with asn1tools' own GeneralizedTime helpers).
"""

from __future__ import annotations

from datetime import datetime, timezone
import re
from dataclasses import replace
from pathlib import Path

import asn1tools
import pytest
from asn1tools.codecs import generalized_time_from_datetime, generalized_time_to_datetime
from hypothesis import assume, given
from hypothesis import strategies as st

import codec_strategies as cs
from ilptx.codec import btp, ildcp, ilp
from ilptx.codec.oer import DecodeError, encode_var_octet_string

UTC = timezone.utc
HERE = Path(__file__).resolve().parent
VENDORED = HERE / "asn1"
#: ``shared/`` sits beside the repository clone: <clone>/tests/unit/codec/this_file.
SHARED = HERE.parents[2] / ".." / "shared" / "specs" / "asn1"

ILP_MODULES = [
    "GenericTypes.asn",
    "InterledgerTypes.asn",
    "InterledgerProtocol.asn",
    "InterledgerErrorData.asn",
    "DynamicConfigurationProtocol.asn",
]
VENDORED_FILES = ILP_MODULES + ["InterledgerPacket.asn", "BilateralTransferProtocol.asn"]

ENVELOPES = """
Envelopes DEFINITIONS AUTOMATIC TAGS ::= BEGIN
-- InterledgerPacket with the open type PACKET.&Type spelled as its OER equivalent
InterledgerPacket ::= SEQUENCE {
    type INTEGER (0..255),
    data OCTET STRING
}
-- BilateralTransferProtocolPacket likewise (CALL.&Type)
BilateralTransferProtocolPacket ::= SEQUENCE {
    type INTEGER (0..255),
    requestId INTEGER (0..4294967295),
    data OCTET STRING
}
END
"""


#: The named values the ``Address`` alphabet refers to (InterledgerTypes.asn).
_ADDRESS_VALUE_REFERENCES = {"hyphen": '"-"', "period": '"."', "underscore": '"_"', "tilde": '"~"'}


def _compile_ilp():
    """Compile the ILP modules, with one work-around for asn1tools.

    asn1tools 0.16x reads the value references in ``Address``'s ``FROM (hyphen | period | ...)``
    as the letters of their names (its permitted alphabet comes out as "...abccdddd..." and
    rejects "."), so inside the ``Address`` definition they are replaced by the literal
    strings they are defined as. The encoding is unaffected; this only makes
    ``check_constraints=True`` check the real alphabet.
    """
    texts = []
    for name in ILP_MODULES:
        text = (VENDORED / name).read_text()
        if name == "InterledgerTypes.asn":
            head, sep, tail = text.partition("Address ::= IA5String")
            assert sep, "InterledgerTypes.asn no longer defines Address as expected"
            for ref, literal in _ADDRESS_VALUE_REFERENCES.items():
                tail = re.sub(rf"\b{ref}\b", literal, tail, count=1)
            text = head + sep + tail
        texts.append(text)
    return asn1tools.compile_string("\n".join(texts), "oer")


def _compile_btp():
    text = (VENDORED / "BilateralTransferProtocol.asn").read_text()
    cut = text.index("CALL ::= CLASS")  # the class, the call set and the envelope follow
    generic = (VENDORED / "GenericTypes.asn").read_text()
    return asn1tools.compile_string(generic + "\n" + text[:cut] + "\nEND\n", "oer")


ILP_SPEC = _compile_ilp()
BTP_SPEC = _compile_btp()
ENV_SPEC = asn1tools.compile_string(ENVELOPES, "oer")

ILP_TYPE_NAMES = {ilp.Prepare: "InterledgerPrepare", ilp.Fulfill: "InterledgerFulfill", ilp.Reject: "InterledgerReject"}
ILP_TYPE_IDS = {ilp.Prepare: 12, ilp.Fulfill: 13, ilp.Reject: 14}
BTP_TYPE_NAMES = {btp.Response: "Response", btp.Error: "Error", btp.Message: "Message", btp.Transfer: "Transfer"}
BTP_TYPE_IDS = {btp.Response: 1, btp.Error: 2, btp.Message: 6, btp.Transfer: 7}


# -- conversions between our dataclasses and asn1tools' dicts -------------------------------

def ilp_to_asn1(packet) -> dict:
    if isinstance(packet, ilp.Prepare):
        return {
            "amount": packet.amount,
            "expiresAt": ilp.encode_timestamp(packet.expires_at).decode("ascii"),
            "executionCondition": packet.execution_condition,
            "destination": packet.destination,
            "data": packet.data,
        }
    if isinstance(packet, ilp.Fulfill):
        return {"fulfillment": packet.fulfillment, "data": packet.data}
    return {"code": packet.code, "triggeredBy": packet.triggered_by, "message": packet.message, "data": packet.data}


def pd_to_asn1(protocol_data) -> list:
    return [{"protocolName": e.protocol_name, "contentType": e.content_type, "data": e.data} for e in protocol_data]


def btp_to_asn1(frame) -> dict:
    """asn1tools' dict for ``frame``; an Error's ``triggered_at`` must be GeneralizedTime text."""
    if isinstance(frame, btp.Error):
        return {
            "code": frame.code,
            "name": frame.name,
            "triggeredAt": generalized_time_to_datetime(frame.triggered_at),
            "data": frame.data,
            "protocolData": pd_to_asn1(frame.protocol_data),
        }
    if isinstance(frame, btp.Transfer):
        return {"amount": frame.amount, "protocolData": pd_to_asn1(frame.protocol_data)}
    return {"protocolData": pd_to_asn1(frame.protocol_data)}


def split_ilp(raw: bytes) -> tuple[int, bytes]:
    env = ENV_SPEC.decode("InterledgerPacket", raw)
    return env["type"], bytes(env["data"])


def split_btp(raw: bytes) -> tuple[int, int, bytes]:
    env = ENV_SPEC.decode("BilateralTransferProtocolPacket", raw)
    return env["type"], env["requestId"], bytes(env["data"])


# -- strategies: values inside what asn1tools' GeneralizedTime round-trips -----------------

#: GeneralizedTime as asn1tools writes it, from millisecond UTC datetimes (4-digit years).
asn1_generalized_times = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999000), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))

btp_errors_asn1 = st.builds(
    btp.Error,
    cs.uint32,
    st.text(cs.ASCII, min_size=3, max_size=3),
    st.text(cs.ASCII, max_size=40),
    asn1_generalized_times.map(generalized_time_from_datetime),
    cs.btp_error_data,
    cs.protocol_data,
)
frames_asn1 = st.one_of(cs.btp_messages, cs.btp_responses, cs.btp_transfers, btp_errors_asn1)


# -- the vendored spec ------------------------------------------------------------------------

def test_vendored_asn1_matches_shared_specs():
    """The vendored .asn files are byte-identical to shared/specs/asn1 (when that folder exists)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present; using the vendored copies only")
    for name in VENDORED_FILES:
        assert (VENDORED / name).read_bytes() == (SHARED / name).read_bytes(), name
    assert (VENDORED / "LICENSE").read_bytes() == (SHARED.parent / "LICENSE").read_bytes()


def test_asn1tools_checks_the_address_alphabet():
    """With the Address work-around, asn1tools accepts every RFC 15 character and rejects others."""
    ok = {"fulfillment": bytes(32), "data": b""}
    assert ILP_SPEC.encode("InterledgerFulfill", ok, check_constraints=True)
    value = {"code": "F00", "triggeredBy": "g.A-z_0~9.x", "message": "", "data": b""}
    assert ILP_SPEC.encode("InterledgerReject", value, check_constraints=True)
    for bad in ("g.a b", "g.a!", "g.\u00e9"):
        with pytest.raises(asn1tools.ConstraintsError):
            ILP_SPEC.encode("InterledgerReject", {**value, "triggeredBy": bad}, check_constraints=True)
    with pytest.raises(asn1tools.ConstraintsError):
        ILP_SPEC.encode("InterledgerReject", {**value, "triggeredBy": "g." + "a" * 1022}, check_constraints=True)


def test_envelope_modules_really_use_a_class():
    """The envelope modules use the CLASS syntax asn1tools cannot compile (why ENVELOPES exists)."""
    assert "PACKET ::= CLASS" in (VENDORED / "InterledgerPacket.asn").read_text()
    with pytest.raises(asn1tools.CompileError):
        asn1tools.compile_files([str(VENDORED / n) for n in ILP_MODULES + ["InterledgerPacket.asn"]], "oer")


# -- ILP ------------------------------------------------------------------------------------

@cs.FAST
@given(cs.packets)
def test_ilp_encoding_matches_asn1tools(packet):
    """Our ILP packet bytes equal asn1tools' envelope(type, OER(inner SEQUENCE)) for the same value."""
    name = ILP_TYPE_NAMES[type(packet)]
    inner = ILP_SPEC.encode(name, ilp_to_asn1(packet), check_constraints=True)
    expected = ENV_SPEC.encode("InterledgerPacket", {"type": ILP_TYPE_IDS[type(packet)], "data": inner})
    assert ilp.encode_packet(packet) == bytes(expected)


@cs.FAST
@given(cs.packets)
def test_asn1tools_decodes_our_ilp_packets(packet):
    """asn1tools decodes the envelope and inner SEQUENCE of our output to the same field values."""
    type_id, inner = split_ilp(ilp.encode_packet(packet))
    assert type_id == ILP_TYPE_IDS[type(packet)]
    decoded = ILP_SPEC.decode(ILP_TYPE_NAMES[type(packet)], inner, check_constraints=True)
    assert decoded == ilp_to_asn1(packet)


@cs.FAST
@given(cs.packets)
def test_we_decode_asn1tools_ilp_packets(packet):
    """decode_packet reads asn1tools' encoding of a value back to that value."""
    inner = ILP_SPEC.encode(ILP_TYPE_NAMES[type(packet)], ilp_to_asn1(packet))
    raw = ENV_SPEC.encode("InterledgerPacket", {"type": ILP_TYPE_IDS[type(packet)], "data": inner})
    assert ilp.decode_packet(bytes(raw)) == packet


@cs.FAST
@given(cs.amount_too_large)
def test_amount_too_large_matches_asn1tools(value):
    """AmountTooLargeData is byte-identical to asn1tools' AmountTooLargeErrorData, both directions."""
    as_dict = {"receivedAmount": value.received_amount, "maximumAmount": value.maximum_amount}
    theirs = bytes(ILP_SPEC.encode("AmountTooLargeErrorData", as_dict, check_constraints=True))
    assert value.encode() == theirs
    assert ILP_SPEC.decode("AmountTooLargeErrorData", value.encode()) == as_dict
    assert ilp.AmountTooLargeData.decode(theirs) == value


@cs.FAST
@given(cs.ildcp_responses)
def test_ildcp_response_matches_asn1tools(value):
    """IldcpResponse is byte-identical to asn1tools' DynamicConfigurationResponseData, both directions."""
    as_dict = {"clientAddress": value.client_address, "assetScale": value.asset_scale, "assetCode": value.asset_code}
    theirs = bytes(ILP_SPEC.encode("DynamicConfigurationResponseData", as_dict, check_constraints=True))
    assert value.encode() == theirs
    assert ILP_SPEC.decode("DynamicConfigurationResponseData", value.encode(), check_constraints=True) == as_dict
    assert ildcp.IldcpResponse.decode(theirs) == value


# -- BTP ------------------------------------------------------------------------------------

@cs.FAST
@given(frames_asn1)
def test_btp_encoding_matches_asn1tools(frame):
    """Our BTP frame bytes equal asn1tools' envelope(type, requestId, OER(inner SEQUENCE))."""
    inner = BTP_SPEC.encode(BTP_TYPE_NAMES[type(frame)], btp_to_asn1(frame), check_constraints=True)
    expected = ENV_SPEC.encode(
        "BilateralTransferProtocolPacket",
        {"type": BTP_TYPE_IDS[type(frame)], "requestId": frame.request_id, "data": inner},
    )
    assert btp.encode_frame(frame) == bytes(expected)


@cs.FAST
@given(frames_asn1)
def test_asn1tools_decodes_our_btp_frames(frame):
    """asn1tools decodes our BTP output (envelope and body) to the same field values."""
    type_id, request_id, inner = split_btp(btp.encode_frame(frame))
    assert (type_id, request_id) == (BTP_TYPE_IDS[type(frame)], frame.request_id)
    assert BTP_SPEC.decode(BTP_TYPE_NAMES[type(frame)], inner, check_constraints=True) == btp_to_asn1(frame)


@cs.FAST
@given(frames_asn1)
def test_we_decode_asn1tools_btp_frames(frame):
    """decode_frame reads asn1tools' encoding of a frame back to that frame."""
    inner = BTP_SPEC.encode(BTP_TYPE_NAMES[type(frame)], btp_to_asn1(frame))
    raw = ENV_SPEC.encode(
        "BilateralTransferProtocolPacket",
        {"type": BTP_TYPE_IDS[type(frame)], "requestId": frame.request_id, "data": inner},
    )
    assert btp.decode_frame(bytes(raw)) == frame


@cs.FAST
@given(asn1_generalized_times)
def test_generalized_time_is_valid_generalized_time(when):
    """btp.generalized_time's text is GeneralizedTime that asn1tools parses back to the same instant."""
    text = btp.generalized_time(when)
    assert generalized_time_to_datetime(text) == when
    frame = btp.Error(1, "F00", "x", text, b"", ())
    _, _, inner = split_btp(btp.encode_frame(frame))
    assert BTP_SPEC.decode("Error", inner)["triggeredAt"] == when


# -- what we accept, asn1tools accepts too ---------------------------------------------------

def _mutate(raw: bytes, data) -> bytes:
    i = data.draw(st.integers(0, len(raw) - 1))
    return raw[:i] + bytes((raw[i] ^ data.draw(st.integers(1, 255)),)) + raw[i + 1:]


@cs.FAST
@given(cs.packets, st.data())
def test_mutated_ilp_packets_we_accept_asn1tools_accepts(packet, data):
    """Whenever decode_packet accepts a byte-flipped packet, asn1tools decodes it to the same fields."""
    raw = _mutate(ilp.encode_packet(packet), data)
    try:
        ours = ilp.decode_packet(raw)
    except DecodeError:
        assume(False)
    type_id, inner = split_ilp(raw)
    assert ILP_SPEC.decode(ILP_TYPE_NAMES[type(ours)], inner) == ilp_to_asn1(ours)


@cs.FAST
@given(frames_asn1, st.data())
def test_mutated_btp_frames_we_accept_asn1tools_accepts(frame, data):
    """Whenever decode_frame accepts a byte-flipped frame, asn1tools decodes it to the same fields.

    One deliberate difference: we keep an Error's triggeredAt as text without parsing it (as
    btp-packet does, which turns a bad one into an Invalid Date instead of failing), while
    asn1tools insists on GeneralizedTime. So for Errors the triggeredAt field is swapped for a
    valid time before asn1tools sees the body, and the other fields are compared.
    """
    raw = _mutate(btp.encode_frame(frame), data)
    try:
        ours = btp.decode_frame(raw)
    except DecodeError:
        assume(False)
    _, request_id, inner = split_btp(raw)
    assert request_id == ours.request_id
    if isinstance(ours, btp.Error):
        at = 3 + len(encode_var_octet_string(ours.name.encode("ascii")))
        field = encode_var_octet_string(ours.triggered_at.encode("ascii"))
        assert inner[at:at + len(field)] == field
        inner = inner[:at] + encode_var_octet_string(b"20000101000000Z") + inner[at + len(field):]
        theirs = BTP_SPEC.decode("Error", inner)
        assert theirs == btp_to_asn1(replace(ours, triggered_at="20000101000000Z"))
    else:
        assert BTP_SPEC.decode(BTP_TYPE_NAMES[type(ours)], inner) == btp_to_asn1(ours)


def test_unparsable_triggered_at_is_kept_as_text():
    """decode_frame keeps a BTP Error whose triggeredAt is not GeneralizedTime (asn1tools refuses it)."""
    frame = btp.Error(3, "T00", "Oops", "not a time", b"", ())
    raw = btp.encode_frame(frame)
    assert btp.decode_frame(raw) == frame
    with pytest.raises(asn1tools.Error):
        BTP_SPEC.decode("Error", split_btp(raw)[2])
