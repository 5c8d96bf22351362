"""STREAM packets and frames (:mod:`ilptx.codec.stream`): the RFC 29 test vectors, the decisions
documented in the module (unknown frames, junk, saturation, lenient text), encode errors, and
hypothesis round trips and hostile input.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ilptx.codec import stream as s
from ilptx.codec.oer import UINT64_MAX, DecodeError, EncodeError, encode_var_octet_string

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "stream" / "StreamPacketFixtures.json"
SHARED_FIXTURES = HERE.parents[2].parent / "shared" / "specs" / "test-vectors" / "StreamPacketFixtures.json"

VECTORS = json.loads(FIXTURES.read_text())

#: The reference's frame names and camelCase fields -> our class and constructor arguments.
_FROM_JSON = {
    "ConnectionClose": lambda f: s.ConnectionClose(f["errorCode"], f["errorMessage"]),
    "ConnectionNewAddress": lambda f: s.ConnectionNewAddress(f["sourceAccount"]),
    "ConnectionAssetDetails": lambda f: s.ConnectionAssetDetails(f["sourceAssetCode"], f["sourceAssetScale"]),
    "ConnectionMaxData": lambda f: s.ConnectionMaxData(int(f["maxOffset"])),
    "ConnectionDataBlocked": lambda f: s.ConnectionDataBlocked(int(f["maxOffset"])),
    "ConnectionMaxStreamId": lambda f: s.ConnectionMaxStreamId(int(f["maxStreamId"])),
    "ConnectionStreamIdBlocked": lambda f: s.ConnectionStreamIdBlocked(int(f["maxStreamId"])),
    "StreamClose": lambda f: s.StreamClose(int(f["streamId"]), f["errorCode"], f["errorMessage"]),
    "StreamMoney": lambda f: s.StreamMoney(int(f["streamId"]), int(f["shares"])),
    "StreamMaxMoney": lambda f: s.StreamMaxMoney(int(f["streamId"]), int(f["receiveMax"]), int(f["totalReceived"])),
    "StreamMoneyBlocked": lambda f: s.StreamMoneyBlocked(int(f["streamId"]), int(f["sendMax"]), int(f["totalSent"])),
    "StreamData": lambda f: s.StreamData(int(f["streamId"]), int(f["offset"]), base64.b64decode(f["data"])),
    "StreamMaxData": lambda f: s.StreamMaxData(int(f["streamId"]), int(f["maxOffset"])),
    "StreamDataBlocked": lambda f: s.StreamDataBlocked(int(f["streamId"]), int(f["maxOffset"])),
    "StreamReceipt": lambda f: s.StreamReceipt(int(f["streamId"]), base64.b64decode(f["receipt"])),
}


def packet_from_json(p: dict) -> s.StreamPacket:
    frames = []
    for f in p["frames"]:
        frame = _FROM_JSON[f["name"]](f)
        assert s.FRAME_CLASSES[f["type"]] is type(frame)
        frames.append(frame)
    return s.StreamPacket(int(p["sequence"]), p["packetType"], int(p["amount"]), tuple(frames))


def test_vector_count():
    """All 53 RFC 29 test vectors are present."""
    assert len(VECTORS) == 53
    assert sum(bool(v.get("decode_only")) for v in VECTORS) == 2


def test_every_frame_type_has_a_vector():
    """Every frame type is covered by at least one test vector."""
    seen = {f["type"] for v in VECTORS for f in v["packet"]["frames"]}
    assert seen == set(s.FRAME_CLASSES)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decodes(vector):
    """Each test vector's bytes decode to its packet values."""
    assert s.decode_packet(base64.b64decode(vector["buffer"])) == packet_from_json(vector["packet"])


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if not v.get("decode_only")], ids=lambda v: v["name"]
)
def test_vector_encodes(vector):
    """Each (non decode-only) test vector's values encode to its bytes."""
    assert s.encode_packet(packet_from_json(vector["packet"])) == base64.b64decode(vector["buffer"])


@pytest.mark.skipif(not SHARED_FIXTURES.exists(), reason="shared/specs not checked out")
def test_vendored_vectors_match_shared_specs():
    """The vendored vectors are byte-identical to shared/specs when present."""
    assert FIXTURES.read_bytes() == SHARED_FIXTURES.read_bytes()


# --------------------------------------------------------------------------- decisions

HEADER = bytes.fromhex("010c" "0100" "0100")  # version 1, Prepare, sequence 0, amount 0


def frames_packet(count: int, *encoded_frames: bytes, junk: bytes = b"") -> bytes:
    return HEADER + bytes((1, count)) + b"".join(encoded_frames) + junk


def test_unknown_frame_types_are_skipped():
    """Unknown frame types are skipped on decode (RFC 29), not errors."""
    known = s.encode_frame(s.StreamMoney(1, 2))
    unknown = bytes((0x42,)) + encode_var_octet_string(b"\xff" * 200)
    raw = frames_packet(3, unknown, known, bytes((0x08, 0x00)))
    assert s.decode_packet(raw).frames == (s.StreamMoney(1, 2),)


def test_junk_after_frames_is_ignored():
    """Padding after the frames (RFC 29 junk data) is ignored."""
    raw = s.encode_packet(s.StreamPacket(7, 13, 9, (s.StreamMaxData(1, 2),)))
    assert s.decode_packet(raw + bytes(40)) == s.decode_packet(raw)
    assert s.decode_packet(raw + b"\x01\x02garbage").sequence == 7


def test_bytes_after_a_frames_fields_are_ignored():
    """Extra bytes inside a known frame are ignored, as the reference does."""
    contents = bytes.fromhex("0101" "0102") + b"future field"
    raw = frames_packet(1, bytes((s.FrameType.STREAM_MONEY,)) + encode_var_octet_string(contents))
    assert s.decode_packet(raw).frames == (s.StreamMoney(1, 2),)


@pytest.mark.parametrize("frame_type", [s.FrameType.STREAM_MAX_MONEY, s.FrameType.STREAM_MONEY_BLOCKED])
@pytest.mark.parametrize("wide", [bytes(9), b"\x00" * 8 + b"\x05", b"\xff" * 20, b"\x01" + bytes(127)])
def test_saturating_fields(frame_type, wide):
    """receive_max and send_max wider than 8 bytes saturate to 2**64-1, as the reference."""
    contents = b"\x01\x07" + encode_var_octet_string(wide) + b"\x01\x03"
    raw = frames_packet(1, bytes((frame_type,)) + encode_var_octet_string(contents))
    (frame,) = s.decode_packet(raw).frames
    assert frame.stream_id == 7
    assert (getattr(frame, "receive_max", None) or frame.send_max) == UINT64_MAX
    assert (getattr(frame, "total_received", None) or frame.total_sent) == 3


@pytest.mark.parametrize(
    "frame_type, contents",
    [
        (s.FrameType.STREAM_MAX_MONEY, b"\x01\x07\x01\x01" + encode_var_octet_string(bytes(9))),  # total_received
        (s.FrameType.STREAM_MONEY, b"\x09" + bytes(9) + b"\x01\x01"),  # stream_id
        (s.FrameType.CONNECTION_MAX_DATA, b"\x09" + b"\x01" * 9),
        (s.FrameType.STREAM_MAX_MONEY, b"\x01\x07\x00\x01\x01"),  # zero-length VarUInt
    ],
)
def test_other_wide_var_uints_are_rejected(frame_type, contents):
    """Other numbers wider than 8 bytes raise DecodeError."""
    with pytest.raises(DecodeError):
        s.decode_packet(frames_packet(1, bytes((frame_type,)) + encode_var_octet_string(contents)))


def test_wide_sequence_is_rejected():
    """A sequence number wider than UInt64 raises DecodeError."""
    with pytest.raises(DecodeError):
        s.decode_packet(bytes.fromhex("010c09") + bytes(9) + bytes.fromhex("01000100"))


def test_text_is_decoded_leniently():
    """Invalid UTF-8 text decodes with replacement characters, as the reference."""
    contents = b"\x02" + encode_var_octet_string(b"bad \xff\xfe utf8")
    raw = frames_packet(1, bytes((s.FrameType.CONNECTION_CLOSE,)) + encode_var_octet_string(contents))
    assert s.decode_packet(raw).frames == (s.ConnectionClose(2, "bad \ufffd\ufffd utf8"),)


def test_non_ascii_text_round_trips():
    """Non-ASCII text round-trips through encode and decode."""
    p = s.StreamPacket(1, 14, 0, (s.StreamClose(3, s.ErrorCode.APPLICATION_ERROR, "zürück ✓"),))
    assert s.decode_packet(s.encode_packet(p)) == p


@pytest.mark.parametrize("version", [0, 2, 255])
def test_other_versions_are_rejected(version):
    """A STREAM version other than 1 raises DecodeError."""
    with pytest.raises(DecodeError, match="version"):
        s.decode_packet(bytes((version,)) + HEADER[1:] + b"\x01\x00")


@pytest.mark.parametrize("packet_type", [0, 1, 11, 15, 255])
def test_other_packet_types_are_rejected(packet_type):
    """An ILP packet type other than 12, 13, 14 raises DecodeError."""
    with pytest.raises(DecodeError, match="packet type"):
        s.decode_packet(bytes((1, packet_type)) + HEADER[2:] + b"\x01\x00")


@pytest.mark.parametrize("cut", range(len(HEADER) + 2))
def test_truncated_header(cut):
    """A truncated packet header raises DecodeError."""
    with pytest.raises(DecodeError):
        s.decode_packet((HEADER + b"\x01\x00")[:cut])


def test_frame_count_larger_than_the_frames():
    """A frame count larger than the frames present raises DecodeError."""
    raw = frames_packet(2, s.encode_frame(s.StreamMoney(1, 1)))
    with pytest.raises(DecodeError):
        s.decode_packet(raw)
    with pytest.raises(DecodeError):
        s.decode_packet(HEADER + b"\x08" + b"\xff" * 8)


def test_truncated_frame_contents():
    """Truncated frame contents raise DecodeError."""
    contents = b"\x01\x07\x01"  # StreamMoney: stream_id 7, shares missing its byte
    with pytest.raises(DecodeError, match="StreamMoney"):
        s.decode_packet(frames_packet(1, bytes((s.FrameType.STREAM_MONEY,)) + encode_var_octet_string(contents)))


def test_error_codes_and_frame_types():
    """Error codes and frame type ids have the RFC 29 values."""
    assert s.ErrorCode.NO_ERROR == 1 and s.ErrorCode.APPLICATION_ERROR == 9
    assert s.ERROR_NAMES[s.ErrorCode.FLOW_CONTROL_ERROR] == "FlowControlError"
    assert s.FrameType.STREAM_RECEIPT == 0x17 and s.FrameType.CONNECTION_ASSET_DETAILS == 7
    assert len(s.FRAME_CLASSES) == 15


def test_unknown_error_code_is_kept():
    """An unknown error code is kept as a plain int."""
    p = s.StreamPacket(0, 12, 0, (s.ConnectionClose(200, ""),))
    assert s.decode_packet(s.encode_packet(p)).frames[0].error_code == 200


def test_frames_are_frozen():
    """Frames are immutable values."""
    frame = s.StreamMoney(1, 2)
    with pytest.raises(AttributeError):
        frame.shares = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    "packet",
    [
        s.StreamPacket(-1, 12),
        s.StreamPacket(UINT64_MAX + 1, 12),
        s.StreamPacket(0, 12, UINT64_MAX + 1),
        s.StreamPacket(0, 11),
        s.StreamPacket(0, True),
        s.StreamPacket(0, 12, 1.5),
        s.StreamPacket("1", 12),
        s.StreamPacket(0, 12, 0, (object(),)),
        s.StreamPacket(0, 12, 0, None),
        s.StreamPacket(0, 12, 0, (s.ConnectionClose(256, "x"),)),
        s.StreamPacket(0, 12, 0, (s.ConnectionClose(-1, "x"),)),
        s.StreamPacket(0, 12, 0, (s.ConnectionClose(1, b"x"),)),
        s.StreamPacket(0, 12, 0, (s.ConnectionClose(1, "\ud800"),)),
        s.StreamPacket(0, 12, 0, (s.ConnectionAssetDetails("USD", 256),)),
        s.StreamPacket(0, 12, 0, (s.StreamMaxMoney(1, UINT64_MAX + 1, 0),)),
        s.StreamPacket(0, 12, 0, (s.StreamData(1, 0, "text"),)),
        s.StreamPacket(0, 12, 0, (s.StreamReceipt(1, bytearray(b"x")),)),
        s.StreamPacket(0, 12, 0, (s.StreamMoney(True, 1),)),
    ],
)
def test_invalid_values_raise_encode_error(packet):
    """Values that cannot be encoded raise EncodeError."""
    with pytest.raises(EncodeError):
        s.encode_packet(packet)


def test_encode_requires_a_packet():
    """encode_packet refuses anything but a StreamPacket with EncodeError."""
    with pytest.raises(EncodeError):
        s.encode_packet(("not", "a", "packet"))  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        s.encode_frame("frame")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hypothesis

u64 = st.integers(0, UINT64_MAX)
u8 = st.integers(0, 255)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
blobs = st.binary(max_size=300)

FRAME_STRATEGIES = {
    s.ConnectionClose: st.builds(s.ConnectionClose, u8, text),
    s.ConnectionNewAddress: st.builds(s.ConnectionNewAddress, text),
    s.ConnectionAssetDetails: st.builds(s.ConnectionAssetDetails, text, u8),
    s.ConnectionMaxData: st.builds(s.ConnectionMaxData, u64),
    s.ConnectionDataBlocked: st.builds(s.ConnectionDataBlocked, u64),
    s.ConnectionMaxStreamId: st.builds(s.ConnectionMaxStreamId, u64),
    s.ConnectionStreamIdBlocked: st.builds(s.ConnectionStreamIdBlocked, u64),
    s.StreamClose: st.builds(s.StreamClose, u64, u8, text),
    s.StreamMoney: st.builds(s.StreamMoney, u64, u64),
    s.StreamMaxMoney: st.builds(s.StreamMaxMoney, u64, u64, u64),
    s.StreamMoneyBlocked: st.builds(s.StreamMoneyBlocked, u64, u64, u64),
    s.StreamData: st.builds(s.StreamData, u64, u64, blobs),
    s.StreamMaxData: st.builds(s.StreamMaxData, u64, u64),
    s.StreamDataBlocked: st.builds(s.StreamDataBlocked, u64, u64),
    s.StreamReceipt: st.builds(s.StreamReceipt, u64, blobs),
}
any_frame = st.one_of(*FRAME_STRATEGIES.values())
packets = st.builds(
    s.StreamPacket, u64, st.sampled_from(s.PACKET_TYPES), u64, st.lists(any_frame, max_size=8).map(tuple)
)


def test_a_strategy_for_every_frame_class():
    """The hypothesis strategies cover every frame class."""
    assert set(FRAME_STRATEGIES) == set(s.FRAME_CLASSES.values())


@pytest.mark.parametrize("cls", list(FRAME_STRATEGIES), ids=lambda c: c.__name__)
def test_frame_round_trip(cls):
    """Any frame round-trips through encode and decode."""
    @given(FRAME_STRATEGIES[cls], u64, st.sampled_from(s.PACKET_TYPES))
    def check(frame, sequence, packet_type):
        p = s.StreamPacket(sequence, packet_type, 0, (frame,))
        raw = s.encode_packet(p)
        assert s.decode_packet(raw) == p
        assert raw[-len(s.encode_frame(frame)):] == s.encode_frame(frame)

    check()


@given(packets)
def test_packet_round_trip(packet):
    """Any packet round-trips through encode and decode."""
    assert s.decode_packet(s.encode_packet(packet)) == packet


def decodes_or_raises_decode_error(raw: bytes):
    try:
        return s.decode_packet(raw)
    except DecodeError:
        return None


@given(st.binary(max_size=400))
def test_garbage_raises_only_decode_error(raw):
    """Random bytes raise only DecodeError."""
    decodes_or_raises_decode_error(raw)


@given(st.binary(max_size=400))
def test_garbage_after_a_valid_header_raises_only_decode_error(raw):
    """Random bytes after a valid header raise only DecodeError."""
    decodes_or_raises_decode_error(HEADER + raw)


@given(packets, st.data())
def test_damaged_packets_raise_only_decode_error(packet, data):
    """Truncated or bit-flipped valid packets raise only DecodeError."""
    raw = bytearray(s.encode_packet(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    decodes_or_raises_decode_error(bytes(raw[:cut]))
    decodes_or_raises_decode_error(bytes(raw))
