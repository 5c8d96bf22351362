"""STREAM packets and frames (RFC 29, "Packet and Frame Specification"), plaintext only.

Sans-IO: values in, bytes out, and back. Encryption lives in :mod:`ilptx.stream.crypto`; this
module only knows the plaintext that goes inside the AES-256-GCM envelope.

Byte layout (OER, as written and read by the reference, ``ilp-protocol-stream`` 2.7.1, which
is what the vectors in ``tests/unit/codec/fixtures/stream`` come from)::

    version          UInt8, always 1
    ilpPacketType    UInt8: 12 Prepare, 13 Fulfill, 14 Reject
    sequence         VarUInt
    prepareAmount    VarUInt
    frames           VarUInt count, then each frame:
        type         UInt8 (see :class:`FrameType`)
        contents     length-prefixed OCTET STRING holding the frame's fields
    junk             anything after the frames: ignored (zero padding)

Each frame's fields are written in order: ``VarUInt`` for ids, amounts and offsets, ``UInt8``
for error codes and the asset scale, a length-prefixed UTF-8 string for text, and a
length-prefixed OCTET STRING for ``StreamData.data`` and ``StreamReceipt.receipt``.

Decisions where the RFC leaves room (each follows the reference unless said otherwise):

* **Unknown frame types are skipped.** RFC 29 section 5.3: "Implementations MUST ignore frames
  with unknown types". Their contents are length-prefixed, so we read past them and leave them
  out of :attr:`StreamPacket.frames`; a decoded packet holds only the frames this module knows,
  in wire order. (No ``UnknownFrame`` value: nothing above the codec could act on one, and a
  re-encoded packet would otherwise carry frames we never meant to send.)
* **Junk after the frames is ignored** (RFC 29 section 5.2, "Junk Data"): senders pad packets
  with zero bytes before encrypting, so the last frame need not end the plaintext.
* **Bytes after a known frame's fields, inside its contents, are ignored**, as the reference
  does: a future version may append fields to a frame.
* **Saturation** (RFC 29 section 5.1.4): ``StreamMaxMoney.receive_max`` and
  ``StreamMoneyBlocked.send_max`` longer than 8 bytes decode as ``2**64 - 1``
  (:data:`~ilptx.codec.oer.UINT64_MAX`), whatever their value, exactly as the reference's
  ``saturatingReadVarUInt`` does. Every other VarUInt wider than 8 bytes is a
  :class:`~ilptx.codec.oer.DecodeError`, as in the reference.
* **Text is decoded leniently**: invalid UTF-8 becomes U+FFFD, like the reference's
  ``Buffer.toString('utf8')``, so a mangled human-readable message cannot make a whole packet
  undecodable. ``ConnectionNewAddress.source_address`` is not checked against the ILP address
  grammar here; the connection must validate it before using it.
* **Stricter than the reference:** the version must be 1 and the ILP packet type must be 12, 13
  or 14 (the reference reads any type and leaves the check to the connection). An error code
  may be any UInt8: unknown codes are kept as plain ints.

Decoders raise only :class:`~ilptx.codec.oer.DecodeError`; encoders raise only
:class:`~ilptx.codec.oer.EncodeError`.
"""

from __future__ import annotations

from typing import Callable, Union

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.oer import (
    UINT64_MAX,
    DecodeError,
    EncodeError,
    Reader,
    encode_uint,
    encode_var_octet_string,
    encode_var_uint,
)

__all__ = [
    "VERSION",
    "PACKET_TYPES",
    "ErrorCode",
    "ERROR_NAMES",
    "FrameType",
    "ConnectionClose",
    "ConnectionNewAddress",
    "ConnectionAssetDetails",
    "ConnectionMaxData",
    "ConnectionDataBlocked",
    "ConnectionMaxStreamId",
    "ConnectionStreamIdBlocked",
    "StreamClose",
    "StreamMoney",
    "StreamMaxMoney",
    "StreamMoneyBlocked",
    "StreamData",
    "StreamMaxData",
    "StreamDataBlocked",
    "StreamReceipt",
    "Frame",
    "FRAME_CLASSES",
    "StreamPacket",
    "encode_frame",
    "encode_packet",
    "decode_packet",
]

#: The only STREAM version there is.
VERSION = 1

#: ILP packet types a STREAM packet may be carried on (``ilptx.codec.ilp.TYPE_*``).
PACKET_TYPE_PREPARE = 12
PACKET_TYPE_FULFILL = 13
PACKET_TYPE_REJECT = 14
PACKET_TYPES = (PACKET_TYPE_PREPARE, PACKET_TYPE_FULFILL, PACKET_TYPE_REJECT)


class ErrorCode:
    """STREAM error codes (RFC 29 section 5.4), sent in ``ConnectionClose`` and ``StreamClose``."""

    NO_ERROR = 0x01
    INTERNAL_ERROR = 0x02
    ENDPOINT_BUSY = 0x03
    FLOW_CONTROL_ERROR = 0x04
    STREAM_ID_ERROR = 0x05
    STREAM_STATE_ERROR = 0x06
    FRAME_FORMAT_ERROR = 0x07
    PROTOCOL_VIOLATION = 0x08
    APPLICATION_ERROR = 0x09


#: RFC 29 names of the error codes.
ERROR_NAMES = {
    0x01: "NoError",
    0x02: "InternalError",
    0x03: "EndpointBusy",
    0x04: "FlowControlError",
    0x05: "StreamIdError",
    0x06: "StreamStateError",
    0x07: "FrameFormatError",
    0x08: "ProtocolViolation",
    0x09: "ApplicationError",
}


class FrameType:
    """Frame type ids (RFC 29 section 5.3; ``StreamReceipt`` from ``Stream.asn`` / the reference)."""

    CONNECTION_CLOSE = 0x01
    CONNECTION_NEW_ADDRESS = 0x02
    CONNECTION_MAX_DATA = 0x03
    CONNECTION_DATA_BLOCKED = 0x04
    CONNECTION_MAX_STREAM_ID = 0x05
    CONNECTION_STREAM_ID_BLOCKED = 0x06
    CONNECTION_ASSET_DETAILS = 0x07
    STREAM_CLOSE = 0x10
    STREAM_MONEY = 0x11
    STREAM_MAX_MONEY = 0x12
    STREAM_MONEY_BLOCKED = 0x13
    STREAM_DATA = 0x14
    STREAM_MAX_DATA = 0x15
    STREAM_DATA_BLOCKED = 0x16
    STREAM_RECEIPT = 0x17


# --------------------------------------------------------------------------- frames


@frozen_dataclass
class ConnectionClose:
    """The sender closes the connection (type 0x01).

    :ivar error_code: UInt8, an :class:`ErrorCode`.
    :ivar message: human-readable reason, for debugging.
    """

    error_code: int
    message: str = ""


@frozen_dataclass
class ConnectionNewAddress:
    """The sender's ILP address (type 0x02); a client sends it so the server can reply.

    :ivar source_address: ILP address of the endpoint that sent the frame.
    """

    source_address: str


@frozen_dataclass
class ConnectionAssetDetails:
    """The sender's asset (type 0x07); must not change during the connection.

    :ivar source_asset_code: e.g. ``"USD"``.
    :ivar source_asset_scale: UInt8.
    """

    source_asset_code: str
    source_asset_scale: int


@frozen_dataclass
class ConnectionMaxData:
    """Total bytes the sender will receive on this connection (type 0x03).

    :ivar max_offset: VarUInt.
    """

    max_offset: int


@frozen_dataclass
class ConnectionDataBlocked:
    """Total bytes the sender wants to send on this connection (type 0x04).

    :ivar max_offset: VarUInt.
    """

    max_offset: int


@frozen_dataclass
class ConnectionMaxStreamId:
    """Largest stream id the sender will accept (type 0x05).

    :ivar max_stream_id: VarUInt.
    """

    max_stream_id: int


@frozen_dataclass
class ConnectionStreamIdBlocked:
    """Largest stream id the sender wishes to open (type 0x06).

    :ivar max_stream_id: VarUInt.
    """

    max_stream_id: int


@frozen_dataclass
class StreamClose:
    """The sender closes one stream (type 0x10).

    :ivar stream_id: VarUInt.
    :ivar error_code: UInt8, an :class:`ErrorCode`.
    :ivar message: human-readable reason, for debugging.
    """

    stream_id: int
    error_code: int
    message: str = ""


@frozen_dataclass
class StreamMoney:
    """This stream's share of the Prepare amount (type 0x11).

    A stream gets ``prepare_amount * shares / (sum of shares of all StreamMoney frames)``.

    :ivar stream_id: VarUInt.
    :ivar shares: VarUInt.
    """

    stream_id: int
    shares: int


@frozen_dataclass
class StreamMaxMoney:
    """How much the sender will receive on a stream, in its own units (type 0x12).

    :ivar stream_id: VarUInt.
    :ivar receive_max: VarUInt; saturates at ``2**64 - 1`` when decoded.
    :ivar total_received: VarUInt.
    """

    stream_id: int
    receive_max: int
    total_received: int


@frozen_dataclass
class StreamMoneyBlocked:
    """How much the sender wants to send on a stream, in its own units (type 0x13).

    :ivar stream_id: VarUInt.
    :ivar send_max: VarUInt; saturates at ``2**64 - 1`` when decoded.
    :ivar total_sent: VarUInt.
    """

    stream_id: int
    send_max: int
    total_sent: int


@frozen_dataclass
class StreamData:
    """Application bytes of a stream (type 0x14).

    :ivar stream_id: VarUInt.
    :ivar offset: VarUInt, position of ``data[0]`` in the stream's byte stream.
    :ivar data: the bytes.
    """

    stream_id: int
    offset: int
    data: bytes


@frozen_dataclass
class StreamMaxData:
    """Total bytes the sender will receive on a stream (type 0x15).

    :ivar stream_id: VarUInt.
    :ivar max_offset: VarUInt.
    """

    stream_id: int
    max_offset: int


@frozen_dataclass
class StreamDataBlocked:
    """Total bytes the sender wants to send on a stream (type 0x16).

    :ivar stream_id: VarUInt.
    :ivar max_offset: VarUInt.
    """

    stream_id: int
    max_offset: int


@frozen_dataclass
class StreamReceipt:
    """A receipt of the total received on a stream (type 0x17, ``Stream.asn`` and RFC 39).

    :ivar stream_id: VarUInt.
    :ivar receipt: the receipt's bytes, opaque here (the sender need not parse it).
    """

    stream_id: int
    receipt: bytes


Frame = Union[
    ConnectionClose,
    ConnectionNewAddress,
    ConnectionAssetDetails,
    ConnectionMaxData,
    ConnectionDataBlocked,
    ConnectionMaxStreamId,
    ConnectionStreamIdBlocked,
    StreamClose,
    StreamMoney,
    StreamMaxMoney,
    StreamMoneyBlocked,
    StreamData,
    StreamMaxData,
    StreamDataBlocked,
    StreamReceipt,
]


@frozen_dataclass
class StreamPacket:
    """A plaintext STREAM packet (RFC 29 section 5.2); ``version`` is always :data:`VERSION`.

    :ivar sequence: VarUInt, the request/response id.
    :ivar ilp_packet_type: 12, 13 or 14: the ILP packet this STREAM packet must travel in.
    :ivar prepare_amount: VarUInt: on a Prepare, the least the receiver should accept; on a
        Fulfill or Reject, what the receiver got.
    :ivar frames: the frames, in order.
    """

    sequence: int
    ilp_packet_type: int
    prepare_amount: int = 0
    frames: tuple[Frame, ...] = ()


# --------------------------------------------------------------------------- field codecs
#
# A frame's layout is a list of (attribute, kind) pairs; the kinds below say how to write and
# read each field. One table drives both directions so they cannot disagree.

_VARUINT = "varuint"
_SATURATING = "saturating"  # a VarUInt that decodes as UINT64_MAX when wider than 8 bytes
_UINT8 = "uint8"
_TEXT = "text"
_BYTES = "bytes"

_LAYOUTS: dict[type, tuple[int, tuple[tuple[str, str], ...]]] = {
    ConnectionClose: (FrameType.CONNECTION_CLOSE, (("error_code", _UINT8), ("message", _TEXT))),
    ConnectionNewAddress: (FrameType.CONNECTION_NEW_ADDRESS, (("source_address", _TEXT),)),
    ConnectionAssetDetails: (
        FrameType.CONNECTION_ASSET_DETAILS,
        (("source_asset_code", _TEXT), ("source_asset_scale", _UINT8)),
    ),
    ConnectionMaxData: (FrameType.CONNECTION_MAX_DATA, (("max_offset", _VARUINT),)),
    ConnectionDataBlocked: (FrameType.CONNECTION_DATA_BLOCKED, (("max_offset", _VARUINT),)),
    ConnectionMaxStreamId: (FrameType.CONNECTION_MAX_STREAM_ID, (("max_stream_id", _VARUINT),)),
    ConnectionStreamIdBlocked: (FrameType.CONNECTION_STREAM_ID_BLOCKED, (("max_stream_id", _VARUINT),)),
    StreamClose: (
        FrameType.STREAM_CLOSE,
        (("stream_id", _VARUINT), ("error_code", _UINT8), ("message", _TEXT)),
    ),
    StreamMoney: (FrameType.STREAM_MONEY, (("stream_id", _VARUINT), ("shares", _VARUINT))),
    StreamMaxMoney: (
        FrameType.STREAM_MAX_MONEY,
        (("stream_id", _VARUINT), ("receive_max", _SATURATING), ("total_received", _VARUINT)),
    ),
    StreamMoneyBlocked: (
        FrameType.STREAM_MONEY_BLOCKED,
        (("stream_id", _VARUINT), ("send_max", _SATURATING), ("total_sent", _VARUINT)),
    ),
    StreamData: (FrameType.STREAM_DATA, (("stream_id", _VARUINT), ("offset", _VARUINT), ("data", _BYTES))),
    StreamMaxData: (FrameType.STREAM_MAX_DATA, (("stream_id", _VARUINT), ("max_offset", _VARUINT))),
    StreamDataBlocked: (FrameType.STREAM_DATA_BLOCKED, (("stream_id", _VARUINT), ("max_offset", _VARUINT))),
    StreamReceipt: (FrameType.STREAM_RECEIPT, (("stream_id", _VARUINT), ("receipt", _BYTES))),
}

#: Frame type id -> frame class, for every frame type this module knows.
FRAME_CLASSES: dict[int, type] = {type_id: cls for cls, (type_id, _) in _LAYOUTS.items()}


def _encode_text(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"{name}: expected a str, got {type(value).__name__}")
    try:
        return encode_var_octet_string(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise EncodeError(f"{name}: not encodable as UTF-8 (lone surrogate)") from None


def _encode_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise EncodeError(f"{name}: expected bytes, got {type(value).__name__}")
    return encode_var_octet_string(value)


def _encode_number(name: str, value: object, encode: Callable[[int], bytes]) -> bytes:
    try:
        return encode(value)  # type: ignore[arg-type]
    except EncodeError as exc:
        raise EncodeError(f"{name}: {exc}") from None


_WRITERS: dict[str, Callable[[str, object], bytes]] = {
    _VARUINT: lambda name, v: _encode_number(name, v, encode_var_uint),
    _SATURATING: lambda name, v: _encode_number(name, v, encode_var_uint),
    _UINT8: lambda name, v: _encode_number(name, v, lambda i: encode_uint(i, 1)),
    _TEXT: _encode_text,
    _BYTES: _encode_bytes,
}


def _read_saturating_var_uint(r: Reader) -> int:
    """A VarUInt that is :data:`UINT64_MAX` when longer than 8 bytes (RFC 29 section 5.1.4)."""
    start = r.offset
    n = r.read_length()
    if n > 8:
        r.read_octets(n)
        return UINT64_MAX
    r.offset = start
    return r.read_var_uint()


def _read_text(r: Reader) -> str:
    return r.read_var_octet_string().decode("utf-8", errors="replace")


_READERS: dict[str, Callable[[Reader], object]] = {
    _VARUINT: Reader.read_var_uint,
    _SATURATING: _read_saturating_var_uint,
    _UINT8: Reader.read_uint8,
    _TEXT: _read_text,
    _BYTES: Reader.read_var_octet_string,
}


# --------------------------------------------------------------------------- encode


def encode_frame(frame: Frame) -> bytes:
    """Encode one frame: type byte, then its length-prefixed contents.

    :raises EncodeError: not a frame, or a field out of range or of the wrong type.
    """
    layout = _LAYOUTS.get(type(frame))
    if layout is None:
        raise EncodeError(f"not a STREAM frame: {type(frame).__name__}")
    type_id, fields = layout
    what = type(frame).__name__
    contents = b"".join(_WRITERS[kind](f"{what}.{attr}", getattr(frame, attr)) for attr, kind in fields)
    return bytes((type_id,)) + encode_var_octet_string(contents)


def encode_packet(packet: StreamPacket) -> bytes:
    """Encode a plaintext STREAM packet (no padding, no encryption).

    :raises EncodeError: an invalid packet type, a number out of range, or a bad frame.
    """
    if not isinstance(packet, StreamPacket):
        raise EncodeError(f"expected a StreamPacket, got {type(packet).__name__}")
    if packet.ilp_packet_type not in PACKET_TYPES or isinstance(packet.ilp_packet_type, bool):
        raise EncodeError(f"ilp_packet_type must be 12, 13 or 14, not {packet.ilp_packet_type!r}")
    frames = packet.frames
    if not isinstance(frames, (tuple, list)):
        raise EncodeError(f"frames: expected a tuple, got {type(frames).__name__}")
    parts = [
        bytes((VERSION, packet.ilp_packet_type)),
        _encode_number("sequence", packet.sequence, encode_var_uint),
        _encode_number("prepare_amount", packet.prepare_amount, encode_var_uint),
        encode_var_uint(len(frames)),
    ]
    parts.extend(encode_frame(frame) for frame in frames)
    return b"".join(parts)


# --------------------------------------------------------------------------- decode


def _decode_frame(type_id: int, contents: bytes) -> Frame | None:
    cls = FRAME_CLASSES.get(type_id)
    if cls is None:
        return None  # unknown frame type: ignored (RFC 29 section 5.3)
    _, fields = _LAYOUTS[cls]
    r = Reader(contents)
    try:
        values = [_READERS[kind](r) for _, kind in fields]
    except DecodeError as exc:
        raise DecodeError(f"{cls.__name__} frame: {exc}") from None
    # Bytes left in ``contents`` are ignored: future versions may append fields.
    return cls(*values)


def decode_packet(data: bytes) -> StreamPacket:
    """Decode a plaintext STREAM packet (what :func:`ilptx.stream.crypto.decrypt` returns).

    Unknown frame types are skipped; bytes after the last frame are ignored.

    :raises DecodeError: truncated or malformed input, a version other than 1, or an ILP packet
        type other than 12, 13 or 14.
    """
    r = Reader(bytes(data))
    version = r.read_uint8()
    if version != VERSION:
        raise DecodeError(f"unsupported STREAM version {version}")
    ilp_packet_type = r.read_uint8()
    if ilp_packet_type not in PACKET_TYPES:
        raise DecodeError(f"invalid ILP packet type {ilp_packet_type} in STREAM packet")
    sequence = r.read_var_uint()
    prepare_amount = r.read_var_uint()
    count = r.read_var_uint()
    frames = []
    for _ in range(count):  # each frame is at least 2 bytes, so a huge count fails fast
        type_id = r.read_uint8()
        frame = _decode_frame(type_id, r.read_var_octet_string())
        if frame is not None:
            frames.append(frame)
    return StreamPacket(sequence, ilp_packet_type, prepare_amount, tuple(frames))
