"""Bilateral Transfer Protocol 2.0 frames (RFC 23; ASN.1 in ``BilateralTransferProtocol.asn``).

Sans-IO. A BTP frame is ``type (UInt8) | requestId (UInt32) | length-prefixed body``; every
body ends with ``protocolData``, an OER ``SEQUENCE OF`` entries
``(protocolName IA5String, contentType UInt8, data OCTET STRING)``.

BTP 2.0 uses types 1 (Response), 2 (Error), 6 (Message) and 7 (Transfer); 3, 4 and 5 are
"not used" (RFC 23, "BTP Type IDs") and decode to a :class:`~ilptx.codec.oer.DecodeError`.

Sub-protocols used by ledger plugins (names as ``ilp-plugin-btp`` 1.5 sends them):

* ``ilp`` (octet-stream): an ILP packet; the primary entry of a Message and of its Response.
* ``auth`` (octet-stream, empty), ``auth_username`` and ``auth_token`` (text/plain UTF-8):
  the authentication Message (RFC 23, "Authentication").
"""

from __future__ import annotations

from dataclasses import field
from datetime import datetime, timezone
from typing import Optional, Sequence, Union

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.oer import (
    UINT64_MAX,
    DecodeError,
    EncodeError,
    Reader,
    encode_length,
    encode_var_octet_string,
)

__all__ = [
    "TYPE_RESPONSE",
    "TYPE_ERROR",
    "TYPE_MESSAGE",
    "TYPE_TRANSFER",
    "CONTENT_OCTET_STREAM",
    "CONTENT_TEXT_PLAIN_UTF8",
    "CONTENT_JSON",
    "ProtocolDataEntry",
    "Response",
    "Error",
    "Message",
    "Transfer",
    "Frame",
    "decode_frame",
    "encode_frame",
    "generalized_time",
    "find_entry",
    "auth_message",
    "parse_auth",
    "peek_request_id",
    "MAX_ERROR_DATA_LENGTH",
]

TYPE_RESPONSE = 1
TYPE_ERROR = 2
TYPE_MESSAGE = 6
TYPE_TRANSFER = 7

CONTENT_OCTET_STREAM = 0
CONTENT_TEXT_PLAIN_UTF8 = 1
CONTENT_JSON = 2

#: ``Error.data`` is ``OCTET STRING (SIZE (0..8192))``.
MAX_ERROR_DATA_LENGTH = 8192


@frozen_dataclass
class ProtocolDataEntry:
    """One sub-protocol entry.

    :ivar protocol_name: ASCII name, e.g. ``"ilp"``.
    :ivar content_type: 0 octet-stream, 1 text/plain UTF-8, 2 JSON (any 0..255 decodes).
    :ivar data: the payload bytes.
    """

    protocol_name: str
    content_type: int
    data: bytes


ProtocolData = Sequence[ProtocolDataEntry]


@frozen_dataclass
class Response:
    """BTP Response (type 1): the successful answer to a Message or Transfer."""

    request_id: int
    protocol_data: tuple = ()


@frozen_dataclass
class Error:
    """BTP Error (type 2): the failed answer to a request.

    :ivar code: three ASCII characters (ilp-plugin-btp uses ILP codes, e.g. ``F00``, ``T00``).
    :ivar name: short error name, e.g. ``"NotAcceptedError"``.
    :ivar triggered_at: GeneralizedTime text, e.g. ``"20171231235959.999Z"``
        (see :func:`generalized_time`).
    :ivar data: at most 8192 bytes; ilp-plugin-btp puts the error message here.
    """

    request_id: int
    code: str
    name: str
    triggered_at: str
    data: bytes = b""
    protocol_data: tuple = ()


@frozen_dataclass
class Message:
    """BTP Message (type 6): a request carrying sub-protocol data (ILP packets, auth, ...)."""

    request_id: int
    protocol_data: tuple = ()


@frozen_dataclass
class Transfer:
    """BTP Transfer (type 7): moves ``amount`` (UInt64, sender's base units) to the peer."""

    request_id: int
    amount: int
    protocol_data: tuple = field(default=())


Frame = Union[Response, Error, Message, Transfer]


def generalized_time(when: datetime) -> str:
    """Format an aware datetime as BTP GeneralizedTime: ``YYYYMMDDHHmmss.SSSZ`` (UTC).

    :raises EncodeError: not a datetime, naive (``astimezone`` would silently read a naive
        value as the machine's local time), or outside years 1..9999 once in UTC.
    """
    if not isinstance(when, datetime):
        raise EncodeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise EncodeError("GeneralizedTime needs a timezone-aware datetime")
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:
        raise EncodeError(f"{when.isoformat()} is outside years 1..9999 in UTC") from None
    return "%04d%02d%02d%02d%02d%02d.%03dZ" % (
        when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond // 1000,
    )


def find_entry(protocol_data: ProtocolData, name: str) -> Optional[ProtocolDataEntry]:
    """:returns: the first entry called ``name``, or ``None``."""
    for entry in protocol_data:
        if entry.protocol_name == name:
            return entry
    return None


def auth_message(request_id: int, token: str, username: str = "") -> Message:
    """Build the authentication Message of RFC 23 as ``ilp-plugin-btp`` 1.5 sends it.

    Entries: ``auth`` (octet-stream, empty), ``auth_username`` (text), ``auth_token`` (text).
    """
    return Message(request_id, (
        ProtocolDataEntry("auth", CONTENT_OCTET_STREAM, b""),
        ProtocolDataEntry("auth_username", CONTENT_TEXT_PLAIN_UTF8, username.encode("utf-8")),
        ProtocolDataEntry("auth_token", CONTENT_TEXT_PLAIN_UTF8, token.encode("utf-8")),
    ))


def parse_auth(frame: Frame) -> tuple[str, bytes]:
    """Check that ``frame`` is an authentication Message and extract its credentials.

    :returns: ``(username, token)``; the username is ``""`` when absent, the token is raw bytes
        (compare it in constant time).
    :raises DecodeError: not a Message, primary entry not ``auth``, no ``auth_token`` entry,
        or a sub-protocol name that appears twice (RFC 23, "Authentication").
    """
    if not isinstance(frame, Message):
        raise DecodeError("expected the auth Message before any other BTP packet")
    pd = frame.protocol_data
    if not pd or pd[0].protocol_name != "auth":
        raise DecodeError("the first BTP Message must have 'auth' as its primary sub-protocol")
    names = [e.protocol_name for e in pd]
    if len(set(names)) != len(names):
        raise DecodeError("auth Message repeats a sub-protocol name")
    token = find_entry(pd, "auth_token")
    if token is None:
        raise DecodeError("auth Message has no 'auth_token' entry")
    username = find_entry(pd, "auth_username")
    try:
        user = username.data.decode("utf-8") if username is not None else ""
    except UnicodeDecodeError:
        raise DecodeError("auth_username is not UTF-8") from None
    return user, token.data


# -- encoding -------------------------------------------------------------------------------

def _encode_protocol_data(protocol_data: ProtocolData) -> bytes:
    if not isinstance(protocol_data, (tuple, list)):
        raise EncodeError(f"protocol data must be a tuple of ProtocolDataEntry, got {type(protocol_data).__name__}")
    count = len(protocol_data)
    count_raw = count.to_bytes(max(1, (count.bit_length() + 7) // 8), "big")
    parts = [encode_length(len(count_raw)), count_raw]
    for entry in protocol_data:
        if not isinstance(entry, ProtocolDataEntry):
            raise EncodeError(f"protocol data entries must be ProtocolDataEntry, got {type(entry).__name__}")
        name = entry.protocol_name
        if not isinstance(name, str) or not name.isascii():
            raise EncodeError(f"protocol name {name!r} must be ASCII")
        ct = entry.content_type
        if not isinstance(ct, int) or isinstance(ct, bool) or not 0 <= ct <= 255:
            raise EncodeError(f"content type {ct!r} must be 0..255")
        if not isinstance(entry.data, (bytes, bytearray)):
            raise EncodeError(f"protocol data of {name!r} must be bytes")
        parts.append(encode_var_octet_string(name.encode("ascii")))
        parts.append(bytes((entry.content_type,)))
        parts.append(encode_var_octet_string(bytes(entry.data)))
    return b"".join(parts)


def encode_frame(frame: Frame) -> bytes:
    """Serialize a BTP frame.

    :raises EncodeError: not a frame, request id not a UInt32, amount not a UInt64, error
        code not three ASCII characters, error name or triggeredAt not an ASCII ``str``, error
        data not bytes or over 8192 bytes, or a malformed protocol data entry. Never any
        other exception.
    """
    cls = type(frame)
    if cls not in (Message, Response, Transfer, Error):
        raise EncodeError(f"not a BTP frame: {cls.__name__}")
    rid = frame.request_id
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= 0xFFFFFFFF:
        raise EncodeError(f"request id {rid!r} is not a UInt32")
    pd = _encode_protocol_data(frame.protocol_data)
    if isinstance(frame, Message):
        type_id, body = TYPE_MESSAGE, pd
    elif isinstance(frame, Response):
        type_id, body = TYPE_RESPONSE, pd
    elif isinstance(frame, Transfer):
        amount = frame.amount
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= UINT64_MAX:
            raise EncodeError(f"transfer amount {amount!r} is not a UInt64")
        type_id, body = TYPE_TRANSFER, amount.to_bytes(8, "big") + pd
    elif isinstance(frame, Error):
        code = frame.code
        if not isinstance(code, str) or len(code) != 3 or not code.isascii():
            raise EncodeError(f"BTP error code {code!r} must be 3 ASCII characters")
        if not isinstance(frame.data, (bytes, bytearray)):
            raise EncodeError(f"BTP error data must be bytes, got {type(frame.data).__name__}")
        if len(frame.data) > MAX_ERROR_DATA_LENGTH:
            raise EncodeError(f"BTP error data is {len(frame.data)} bytes, more than {MAX_ERROR_DATA_LENGTH}")
        for what, text in (("name", frame.name), ("triggeredAt", frame.triggered_at)):
            if not isinstance(text, str) or not text.isascii():
                raise EncodeError(f"BTP error {what} must be an ASCII str, got {text!r}")
        type_id = TYPE_ERROR
        body = b"".join((
            code.encode("ascii"),
            encode_var_octet_string(frame.name.encode("ascii")),
            encode_var_octet_string(frame.triggered_at.encode("ascii")),
            encode_var_octet_string(bytes(frame.data)),
            pd,
        ))
    return bytes((type_id,)) + rid.to_bytes(4, "big") + encode_length(len(body)) + body


# -- decoding -------------------------------------------------------------------------------

def _read_protocol_data(r: Reader) -> tuple:
    n_len = r.read_length()
    if n_len == 0 or n_len > 8:
        raise DecodeError(f"protocol data count has an invalid length of {n_len} bytes")
    count = int.from_bytes(r.read_octets(n_len), "big")
    # each entry takes at least 3 bytes: refuse counts the input cannot hold
    if count * 3 > r.remaining():
        raise DecodeError(f"protocol data claims {count} entries, only {r.remaining()} bytes follow")
    entries = []
    for _ in range(count):
        name = r.read_ascii()
        content_type = r.read_uint8()
        entries.append(ProtocolDataEntry(name, content_type, r.read_var_octet_string()))
    return tuple(entries)


def decode_frame(data: bytes) -> Frame:
    """Parse one BTP frame (one WebSocket binary message).

    :raises DecodeError: unknown or unused type, truncated, trailing bytes, or malformed
        protocol data. Callers that want to answer with a BTP Error can still read the
        request id with :func:`peek_request_id`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    r = Reader(bytes(data))
    type_id = r.read_uint8()
    rid = r.read_uint32()
    length = r.read_length()
    if length != r.remaining():
        raise DecodeError(f"BTP length prefix says {length} bytes, {r.remaining()} follow")
    if type_id == TYPE_MESSAGE:
        frame: Frame = Message(rid, _read_protocol_data(r))
    elif type_id == TYPE_RESPONSE:
        frame = Response(rid, _read_protocol_data(r))
    elif type_id == TYPE_TRANSFER:
        amount = r.read_uint64()
        frame = Transfer(rid, amount, _read_protocol_data(r))
    elif type_id == TYPE_ERROR:
        code = r.read_ascii(3)
        name = r.read_ascii()
        triggered_at = r.read_ascii()
        err_data = r.read_var_octet_string()
        if len(err_data) > MAX_ERROR_DATA_LENGTH:
            raise DecodeError(f"BTP error data is {len(err_data)} bytes, more than {MAX_ERROR_DATA_LENGTH}")
        frame = Error(rid, code, name, triggered_at, err_data, _read_protocol_data(r))
    elif type_id in (3, 4, 5):
        raise DecodeError(f"BTP type {type_id} is not used in BTP 2.0")
    else:
        raise DecodeError(f"unknown BTP type {type_id}")
    r.ensure_done("BTP frame")
    return frame


def peek_request_id(data: bytes) -> Optional[int]:
    """:returns: the request id of a (possibly malformed) frame, or ``None`` if under 5 bytes."""
    if len(data) < 5:
        return None
    return int.from_bytes(bytes(data[1:5]), "big")
