"""ILPv4 packets: Prepare, Fulfill, Reject (RFC 27, "Specification"; ASN.1 in
``InterledgerProtocol.asn`` and ``InterledgerPacket.asn``).

Sans-IO. Values are frozen dataclasses; amounts are ``int`` (UInt64), ``expires_at`` is an
aware UTC :class:`datetime.datetime` with millisecond precision, conditions and fulfillments
are 32-byte ``bytes``.

Decoders raise only :class:`~ilptx.codec.oer.DecodeError`; encoders raise only
:class:`~ilptx.codec.oer.EncodeError`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Union

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.address import has_address_charset
from ilptx.codec.oer import (
    UINT64_MAX,
    DecodeError,
    EncodeError,
    Reader,
    encode_length,
    encode_var_octet_string,
)

__all__ = [
    "TYPE_PREPARE",
    "TYPE_FULFILL",
    "TYPE_REJECT",
    "Prepare",
    "Fulfill",
    "Reject",
    "Packet",
    "ErrorCode",
    "ERROR_NAMES",
    "AmountTooLargeData",
    "decode_packet",
    "decode_prepare",
    "decode_response",
    "encode_packet",
    "encode_timestamp",
    "decode_timestamp",
    "timestamp_at",
    "to_milliseconds",
    "fulfillment_matches",
    "MAX_DATA_LENGTH",
]

TYPE_PREPARE = 12
TYPE_FULFILL = 13
TYPE_REJECT = 14

#: ``data`` fields are ``OCTET STRING (SIZE (0..32767))`` in the ASN.1.
MAX_DATA_LENGTH = 32767

_UTC = timezone.utc


class ErrorCode:
    """Every ILP error code of RFC 27, "Error Codes", as a named constant.

    ``F__`` final, ``T__`` temporary, ``R__`` relative.
    """

    F00_BAD_REQUEST = "F00"
    F01_INVALID_PACKET = "F01"
    F02_UNREACHABLE = "F02"
    F03_INVALID_AMOUNT = "F03"
    F04_INSUFFICIENT_DESTINATION_AMOUNT = "F04"
    F05_WRONG_CONDITION = "F05"
    F06_UNEXPECTED_PAYMENT = "F06"
    F07_CANNOT_RECEIVE = "F07"
    F08_AMOUNT_TOO_LARGE = "F08"
    F99_APPLICATION_ERROR = "F99"
    T00_INTERNAL_ERROR = "T00"
    T01_PEER_UNREACHABLE = "T01"
    T02_PEER_BUSY = "T02"
    T03_CONNECTOR_BUSY = "T03"
    T04_INSUFFICIENT_LIQUIDITY = "T04"
    T05_RATE_LIMITED = "T05"
    T99_APPLICATION_ERROR = "T99"
    R00_TRANSFER_TIMED_OUT = "R00"
    R01_INSUFFICIENT_SOURCE_AMOUNT = "R01"
    R02_INSUFFICIENT_TIMEOUT = "R02"
    R99_APPLICATION_ERROR = "R99"


#: RFC 27 names of the error codes.
ERROR_NAMES = {
    "F00": "Bad Request",
    "F01": "Invalid Packet",
    "F02": "Unreachable",
    "F03": "Invalid Amount",
    "F04": "Insufficient Destination Amount",
    "F05": "Wrong Condition",
    "F06": "Unexpected Payment",
    "F07": "Cannot Receive",
    "F08": "Amount Too Large",
    "F99": "Application Error",
    "T00": "Internal Error",
    "T01": "Peer Unreachable",
    "T02": "Peer Busy",
    "T03": "Connector Busy",
    "T04": "Insufficient Liquidity",
    "T05": "Rate Limited",
    "T99": "Application Error",
    "R00": "Transfer Timed Out",
    "R01": "Insufficient Source Amount",
    "R02": "Insufficient Timeout",
    "R99": "Application Error",
}


@frozen_dataclass
class Prepare:
    """ILP Prepare (type 12).

    :ivar amount: UInt64, in the base units of the account it travels over.
    :ivar expires_at: aware UTC datetime, millisecond precision.
    :ivar execution_condition: 32 bytes, SHA-256 of the fulfillment.
    :ivar destination: ILP address of the receiver (RFC 15).
    :ivar data: end-to-end data, at most 32767 bytes; connectors must not change it.
    """

    amount: int
    expires_at: datetime
    execution_condition: bytes
    destination: str
    data: bytes = b""


@frozen_dataclass
class Fulfill:
    """ILP Fulfill (type 13).

    :ivar fulfillment: 32-byte preimage of the Prepare's execution condition.
    :ivar data: end-to-end data, at most 32767 bytes.
    """

    fulfillment: bytes
    data: bytes = b""


@frozen_dataclass
class Reject:
    """ILP Reject (type 14).

    :ivar code: three-character ILP error code (see :class:`ErrorCode`).
    :ivar triggered_by: ILP address of the party that created the error (may be empty).
    :ivar message: human-readable text, for debugging.
    :ivar data: end-to-end data, at most 32767 bytes.
    """

    code: str
    triggered_by: str = ""
    message: str = ""
    data: bytes = b""


Packet = Union[Prepare, Fulfill, Reject]


@frozen_dataclass
class AmountTooLargeData:
    """The ``data`` of an F08 Reject (``InterledgerErrorData.asn``): two UInt64 amounts."""

    received_amount: int
    maximum_amount: int

    def encode(self) -> bytes:
        """:returns: 16 bytes: received amount then maximum amount, big-endian UInt64."""
        for v in (self.received_amount, self.maximum_amount):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= UINT64_MAX:
                raise EncodeError(f"{v!r} is not a UInt64")
        return self.received_amount.to_bytes(8, "big") + self.maximum_amount.to_bytes(8, "big")

    @classmethod
    def decode(cls, data: bytes) -> "AmountTooLargeData":
        """:raises DecodeError: not exactly two UInt64."""
        r = Reader(data)
        value = cls(r.read_uint64(), r.read_uint64())
        r.ensure_done("AmountTooLargeErrorData")
        return value


def fulfillment_matches(fulfillment: bytes, execution_condition: bytes) -> bool:
    """Whether SHA-256(``fulfillment``) equals ``execution_condition`` (RFC 27, "Terminology")."""
    return hashlib.sha256(fulfillment).digest() == execution_condition


# -- timestamps ---------------------------------------------------------------------------

def encode_timestamp(when: datetime) -> bytes:
    """Encode an ILP ``Timestamp`` (``PrintableString (SIZE(17))``): ``YYYYMMDDHHmmssSSS`` in UTC.

    :param when: an aware datetime; converted to UTC, truncated to milliseconds.
    :raises EncodeError: not a datetime, naive, or outside years 1..9999 once in UTC.
    """
    if not isinstance(when, datetime):
        raise EncodeError(f"expires_at must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise EncodeError("expires_at must be timezone-aware (UTC)")
    if when.tzinfo is not _UTC:
        try:
            when = when.astimezone(_UTC)
        except OverflowError:
            raise EncodeError(f"expires_at {when.isoformat()} is outside years 1..9999 in UTC") from None
    return (
        "%04d%02d%02d%02d%02d%02d%03d"
        % (when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond // 1000)
    ).encode("ascii")


_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MS = timedelta(milliseconds=1)


def timestamp_at(seconds: float, after_ms: int = 0) -> datetime:
    """The ILP timestamp (aware UTC, whole milliseconds) ``after_ms`` ms after ``seconds``.

    :param seconds: a clock reading (``IReactorTime.seconds()``, seconds since the epoch);
        the caller reads the clock, so the codec stays free of it.
    """
    return _EPOCH + timedelta(milliseconds=int(seconds * 1000) + after_ms)


def to_milliseconds(when: datetime) -> int:
    """:returns: ``when`` as whole milliseconds since the epoch (the inverse of :func:`timestamp_at`)."""
    return (when - _EPOCH) // _MS


def decode_timestamp(raw: bytes) -> datetime:
    """Decode a 17-byte ILP ``Timestamp`` into an aware UTC datetime.

    :raises DecodeError: not 17 digits, or not a real date and time.
    """
    if len(raw) != 17 or not raw.isdigit():
        raise DecodeError(f"invalid timestamp {raw!r}: expected 17 digits YYYYMMDDHHmmssSSS")
    try:
        return datetime(
            int(raw[0:4]), int(raw[4:6]), int(raw[6:8]), int(raw[8:10]), int(raw[10:12]),
            int(raw[12:14]), int(raw[14:17]) * 1000, _UTC,
        )
    except ValueError as exc:
        raise DecodeError(f"invalid timestamp {raw!r}: {exc}") from None


# -- encoding -------------------------------------------------------------------------------

def _check_bytes(name: str, value: bytes, size: int | None = None, max_size: int | None = None) -> None:
    if not isinstance(value, (bytes, bytearray)):
        raise EncodeError(f"{name} must be bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise EncodeError(f"{name} must be {size} bytes, got {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise EncodeError(f"{name} must be at most {max_size} bytes, got {len(value)}")


def _encode_address(name: str, address: str) -> bytes:
    if not isinstance(address, str) or not has_address_charset(address):
        raise EncodeError(f"{name} {address!r} is not a valid ILP address")
    return encode_var_octet_string(address.encode("ascii"))


def _envelope(type_id: int, body: bytes) -> bytes:
    return bytes((type_id,)) + encode_length(len(body)) + body


def encode_packet(packet: Packet) -> bytes:
    """Serialize a Prepare, Fulfill or Reject to its OER bytes (``InterledgerPacket``).

    :raises EncodeError: a field is out of range (amount not a UInt64, condition not 32 bytes,
        data over 32767 bytes, code not 3 ASCII characters, invalid address, naive expiry).
    """
    # isinstance, not type(): the same speed for exact types, and mypy narrows on it
    if isinstance(packet, Prepare):
        amount = packet.amount
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= UINT64_MAX:
            raise EncodeError(f"amount {amount!r} is not a UInt64")
        _check_bytes("execution_condition", packet.execution_condition, size=32)
        _check_bytes("data", packet.data, max_size=MAX_DATA_LENGTH)
        body = b"".join((
            amount.to_bytes(8, "big"),
            encode_timestamp(packet.expires_at),
            packet.execution_condition,
            _encode_address("destination", packet.destination),
            encode_var_octet_string(packet.data),
        ))
        return _envelope(TYPE_PREPARE, body)
    if isinstance(packet, Fulfill):
        _check_bytes("fulfillment", packet.fulfillment, size=32)
        _check_bytes("data", packet.data, max_size=MAX_DATA_LENGTH)
        return _envelope(TYPE_FULFILL, packet.fulfillment + encode_var_octet_string(packet.data))
    if isinstance(packet, Reject):
        code = packet.code
        if not isinstance(code, str) or len(code) != 3 or not code.isascii():
            raise EncodeError(f"error code {code!r} must be 3 ASCII characters")
        _check_bytes("data", packet.data, max_size=MAX_DATA_LENGTH)
        if not isinstance(packet.message, str):
            raise EncodeError("message must be a str")
        body = b"".join((
            code.encode("ascii"),
            _encode_address("triggered_by", packet.triggered_by),
            encode_var_octet_string(packet.message.encode("utf-8")),
            encode_var_octet_string(packet.data),
        ))
        return _envelope(TYPE_REJECT, body)
    raise EncodeError(f"not an ILP packet: {type(packet).__name__}")


# -- decoding -------------------------------------------------------------------------------

def _read_address(r: Reader, name: str) -> str:
    raw = r.read_var_octet_string()
    try:
        address = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(f"{name} is not ASCII") from None
    if not has_address_charset(address):
        raise DecodeError(f"{name} {address[:64]!r} has characters not allowed in an ILP address")
    return address


def _read_data(r: Reader) -> bytes:
    data = r.read_var_octet_string()
    if len(data) > MAX_DATA_LENGTH:
        raise DecodeError(f"data is {len(data)} bytes, more than {MAX_DATA_LENGTH}")
    return data


def _open(data: bytes) -> tuple[int, Reader]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    r = Reader(bytes(data))
    type_id = r.read_uint8()
    length = r.read_length()
    if length != r.remaining():
        raise DecodeError(f"packet length prefix says {length} bytes, {r.remaining()} follow")
    return type_id, r


def _decode_body(type_id: int, r: Reader) -> Packet:
    if type_id == TYPE_PREPARE:
        amount = r.read_uint64()
        expires_at = decode_timestamp(r.read_octets(17))
        condition = r.read_octets(32)
        destination = _read_address(r, "destination")
        packet: Packet = Prepare(amount, expires_at, condition, destination, _read_data(r))
    elif type_id == TYPE_FULFILL:
        packet = Fulfill(r.read_octets(32), _read_data(r))
    elif type_id == TYPE_REJECT:
        code = r.read_ascii(3)
        triggered_by = _read_address(r, "triggeredBy")
        message = r.read_utf8()
        packet = Reject(code, triggered_by, message, _read_data(r))
    else:
        raise DecodeError(f"unknown ILP packet type {type_id}")
    r.ensure_done("ILP packet")
    return packet


def decode_packet(data: bytes) -> Packet:
    """Parse OER bytes into a :class:`Prepare`, :class:`Fulfill` or :class:`Reject`.

    :raises DecodeError: unknown type, truncated or trailing bytes, bad timestamp, address
        outside the ASN.1 character set, data longer than 32767 bytes.
    """
    type_id, r = _open(data)
    return _decode_body(type_id, r)


def decode_prepare(data: bytes) -> Prepare:
    """Parse bytes that must hold a Prepare.

    :raises DecodeError: malformed, or a Fulfill/Reject where a Prepare was expected.
    """
    type_id, r = _open(data)
    if type_id != TYPE_PREPARE:
        raise DecodeError(f"expected an ILP Prepare (type 12), got type {type_id}")
    return _decode_body(type_id, r)  # type: ignore[return-value]


def decode_response(data: bytes) -> Union[Fulfill, Reject]:
    """Parse bytes that must hold a Fulfill or a Reject.

    :raises DecodeError: malformed, or a Prepare where a response was expected.
    """
    type_id, r = _open(data)
    if type_id not in (TYPE_FULFILL, TYPE_REJECT):
        raise DecodeError(f"expected an ILP Fulfill or Reject, got type {type_id}")
    return _decode_body(type_id, r)  # type: ignore[return-value]
