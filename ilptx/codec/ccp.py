"""Connector-to-Connector Protocol (CCP), the route broadcasting protocol (draft RFC
``0000-route-broadcasting-protocol-ccp``, "Protocol Detail").

Sans-IO: values in, bytes out, and back. Two requests travel as the ``data`` of a zero-amount
ILP Prepare with the peer-protocol condition (SHA-256 of 32 zero bytes):

* a **route control request** to ``peer.route.control`` asks the peer to start (SYNC) or stop
  (IDLE) sending us route updates;
* a **route update request** to ``peer.route.update`` carries routes added and withdrawn between
  two epochs of the sender's routing table.

Either is answered by a Fulfill of 32 zero bytes with empty data (:func:`response_fulfill`).

Byte layout (OER, as written and read by the reference, ``ilp-protocol-ccp`` 1.2.3, which is
what the byte fixtures in ``tests/unit/codec/fixtures/ccp`` come from):

``RouteControlRequestData``::

    mode                      UInt8 (0 IDLE, 1 SYNC)
    lastKnownRoutingTableId   16 raw bytes (a UUID, no length prefix)
    lastKnownEpoch            UInt32, big-endian
    features                  SEQUENCE OF UTF8String: VarUInt count, then each length-prefixed

``RouteUpdateRequestData``::

    routingTableId            16 raw bytes
    currentEpochIndex         UInt32
    fromEpochIndex            UInt32
    toEpochIndex              UInt32
    holdDownTime              UInt32, milliseconds
    speaker                   length-prefixed ILP address (ASCII)
    newRoutes                 VarUInt count, then each Route:
        prefix                length-prefixed ILP address
        path                  VarUInt count, then each a length-prefixed ILP address
        auth                  32 raw bytes
        props                 VarUInt count, then each RouteProp:
            flags             UInt8: 0x80 optional, 0x40 transitive, 0x20 partial, 0x10 utf8
            id                UInt16, big-endian
            value             length-prefixed OCTET STRING
    withdrawnRoutes           VarUInt count, then each a length-prefixed ILP address

A count is a VarUInt, so an empty sequence is ``01 00`` (not ``00``) and 300 items is
``02 01 2c``. Strings of 128 bytes or more get a long-form length prefix (``81 80``...).

Where this codec follows the reference rather than the letter of the ASN.1:

* **Prop flags are normalized on encoding**, as the reference's serializer does: a prop that is
  not optional is always written transitive (``0x40``) and never partial, and an optional prop
  that is not transitive is never partial (BGP-4's attribute rules, RFC 4271 section 4.3).
  Decoding reads the four flag bits as they are and ignores the four low (reserved) bits.
* **Bytes after the request are ignored** when decoding (the draft: "If any extra data is
  included, it SHOULD be ignored for compatibility"; the reference ignores them too).
* A prop's ``value`` stays ``bytes`` either way; ``is_utf8`` only says how to read it.

Stricter than the reference (which reads these lossily): addresses must use the ILP address
character set (RFC 15 / ``InterledgerTypes.asn``), features must be valid UTF-8, and ``mode``
must be IDLE or SYNC.

Decoders raise only :class:`~ilptx.codec.oer.DecodeError`; encoders raise only
:class:`~ilptx.codec.oer.EncodeError`.
"""

from __future__ import annotations

from datetime import datetime

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.address import has_address_charset
from ilptx.codec.ildcp import PEER_PROTOCOL_CONDITION, PEER_PROTOCOL_FULFILLMENT
from ilptx.codec.ilp import MAX_DATA_LENGTH, Fulfill, Prepare
from ilptx.codec.oer import (
    DecodeError,
    EncodeError,
    Reader,
    encode_var_octet_string,
    encode_var_uint,
)

__all__ = [
    "MODE_IDLE",
    "MODE_SYNC",
    "CCP_CONTROL_DESTINATION",
    "CCP_UPDATE_DESTINATION",
    "CCP_PREPARE_EXPIRY_MS",
    "ROUTING_TABLE_ID_LENGTH",
    "AUTH_LENGTH",
    "PROP_OPTIONAL",
    "PROP_TRANSITIVE",
    "PROP_PARTIAL",
    "PROP_UTF8",
    "RouteControlRequest",
    "RouteProp",
    "Route",
    "RouteUpdateRequest",
    "encode_route_control",
    "decode_route_control",
    "encode_route_update",
    "decode_route_update",
    "control_prepare",
    "update_prepare",
    "response_fulfill",
]

#: Route control mode: do not send us route updates.
MODE_IDLE = 0
#: Route control mode: send us route updates.
MODE_SYNC = 1
_MODES = (MODE_IDLE, MODE_SYNC)

#: Destination of route control requests.
CCP_CONTROL_DESTINATION = "peer.route.control"
#: Destination of route update requests.
CCP_UPDATE_DESTINATION = "peer.route.update"
#: How far ahead the reference sets ``expiresAt`` of both requests (``PEER_PROTOCOL_EXPIRY_DURATION``
#: in ilp-protocol-ccp 1.2.3), in milliseconds. The codec reads no clock: callers add this to now.
CCP_PREPARE_EXPIRY_MS = 60_000

#: A routing table id is a UUID: 16 raw bytes on the wire.
ROUTING_TABLE_ID_LENGTH = 16
#: A route's ``auth`` is 32 raw bytes.
AUTH_LENGTH = 32

#: Route prop flag bits (the first byte of a prop).
PROP_OPTIONAL = 0x80
PROP_TRANSITIVE = 0x40
PROP_PARTIAL = 0x20
PROP_UTF8 = 0x10

_UINT16_MAX = 0xFFFF
_UINT32_MAX = 0xFFFF_FFFF


@frozen_dataclass
class RouteControlRequest:
    """Asks a peer to send us route updates (SYNC) or to stop (IDLE).

    :ivar mode: :data:`MODE_IDLE` or :data:`MODE_SYNC`.
    :ivar last_known_routing_table_id: 16 bytes, the UUID of the peer's routing table we last
        heard of (all zeros if none).
    :ivar last_known_epoch: UInt32, the last epoch of that table we have applied.
    :ivar features: feature names (UTF-8 strings) we support.
    """

    mode: int
    last_known_routing_table_id: bytes
    last_known_epoch: int
    features: tuple[str, ...] = ()


@frozen_dataclass
class RouteProp:
    """An attribute of a route, modelled on BGP-4 path attributes.

    :ivar is_optional: flag ``0x80``.
    :ivar is_transitive: flag ``0x40``; always written set when ``is_optional`` is false.
    :ivar is_partial: flag ``0x20``; only written when optional and transitive.
    :ivar id: UInt16, the attribute's type.
    :ivar is_utf8: flag ``0x10``: ``value`` holds UTF-8 text.
    :ivar value: the attribute's bytes.
    """

    is_optional: bool
    is_transitive: bool
    is_partial: bool
    id: int
    is_utf8: bool
    value: bytes


@frozen_dataclass
class Route:
    """A route the speaker offers.

    :ivar prefix: ILP address prefix the route reaches (e.g. ``"g.alice"``).
    :ivar path: ILP addresses of the nodes a packet passes, nearest first (the speaker puts
        itself first); may be empty.
    :ivar auth: 32 bytes of route authentication (the reference connector fills it with a
        hash chain; not checked here).
    :ivar props: route attributes.
    """

    prefix: str
    path: tuple[str, ...]
    auth: bytes
    props: tuple[RouteProp, ...] = ()


@frozen_dataclass
class RouteUpdateRequest:
    """Routes added and withdrawn between two epochs of the speaker's routing table.

    :ivar routing_table_id: 16 bytes, the UUID of the speaker's routing table.
    :ivar current_epoch_index: UInt32, the table's newest epoch.
    :ivar from_epoch_index: UInt32, the epoch this update starts from.
    :ivar to_epoch_index: UInt32, the epoch this update brings the receiver to.
    :ivar hold_down_time: UInt32, milliseconds the receiver may keep these routes without
        hearing from the speaker.
    :ivar speaker: ILP address of the sender.
    :ivar new_routes: routes added or changed.
    :ivar withdrawn_routes: prefixes no longer reachable through the speaker.
    """

    routing_table_id: bytes
    current_epoch_index: int
    from_epoch_index: int
    to_epoch_index: int
    hold_down_time: int
    speaker: str
    new_routes: tuple[Route, ...] = ()
    withdrawn_routes: tuple[str, ...] = ()


# -- encoding ---------------------------------------------------------------------------------

def _check_bytes(name: str, value: object, size: int | None = None) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise EncodeError(f"{name} must be bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise EncodeError(f"{name} must be {size} bytes, got {len(value)}")
    return bytes(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise EncodeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _uint32(name: str, value: object) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _UINT32_MAX:
        raise EncodeError(f"{name} {value!r} is not a UInt32")
    return value.to_bytes(4, "big")


def _uint16(name: str, value: object) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _UINT16_MAX:
        raise EncodeError(f"{name} {value!r} is not a UInt16")
    return value.to_bytes(2, "big")


def _sequence(name: str, value: object) -> tuple:
    # A str is iterable too; refusing it avoids encoding "g.a" as the path ("g", ".", "a").
    if not isinstance(value, (tuple, list)):
        raise EncodeError(f"{name} must be a tuple, got {type(value).__name__}")
    return tuple(value)


def _address(name: str, value: object) -> bytes:
    if not isinstance(value, str) or not has_address_charset(value):
        raise EncodeError(f"{name} {repr(value)[:80]} is not a valid ILP address (RFC 15 characters, at most 1023)")
    return encode_var_octet_string(value.encode("ascii"))


def _prop_flags(prop: RouteProp) -> int:
    """The flags byte exactly as the reference writes it (see the module docstring)."""
    optional = _check_bool("prop is_optional", prop.is_optional)
    transitive = _check_bool("prop is_transitive", prop.is_transitive)
    partial = _check_bool("prop is_partial", prop.is_partial)
    utf8 = _check_bool("prop is_utf8", prop.is_utf8)
    if optional:
        flags = PROP_OPTIONAL
        if transitive:
            flags |= PROP_TRANSITIVE
            if partial:
                flags |= PROP_PARTIAL
    else:
        flags = PROP_TRANSITIVE
    if utf8:
        flags |= PROP_UTF8
    return flags


def _encode_prop(prop: object) -> bytes:
    if not isinstance(prop, RouteProp):
        raise EncodeError(f"route props must be RouteProp, got {type(prop).__name__}")
    return (
        bytes((_prop_flags(prop),))
        + _uint16("prop id", prop.id)
        + encode_var_octet_string(_check_bytes("prop value", prop.value))
    )


def _encode_route(route: object) -> bytes:
    if not isinstance(route, Route):
        raise EncodeError(f"new routes must be Route, got {type(route).__name__}")
    path = _sequence("route path", route.path)
    props = _sequence("route props", route.props)
    parts = [_address("route prefix", route.prefix), encode_var_uint(len(path))]
    parts.extend(_address("route path hop", hop) for hop in path)
    parts.append(_check_bytes("route auth", route.auth, AUTH_LENGTH))
    parts.append(encode_var_uint(len(props)))
    parts.extend(_encode_prop(prop) for prop in props)
    return b"".join(parts)


def encode_route_control(req: RouteControlRequest) -> bytes:
    """Serialize a route control request: the ``data`` of its Prepare (not the Prepare).

    :param req: the request.
    :returns: ``RouteControlRequestData`` in OER (layout in the module docstring).
    :raises EncodeError: not a :class:`RouteControlRequest`, mode not IDLE/SYNC, table id not
        16 bytes, epoch not a UInt32, features not a tuple of ``str`` (or not encodable as UTF-8).
    """
    if not isinstance(req, RouteControlRequest):
        raise EncodeError(f"expected a RouteControlRequest, got {type(req).__name__}")
    if not isinstance(req.mode, int) or isinstance(req.mode, bool) or req.mode not in _MODES:
        raise EncodeError(f"mode {req.mode!r} is neither MODE_IDLE (0) nor MODE_SYNC (1)")
    features = _sequence("features", req.features)
    parts = [
        bytes((req.mode,)),
        _check_bytes("last_known_routing_table_id", req.last_known_routing_table_id, ROUTING_TABLE_ID_LENGTH),
        _uint32("last_known_epoch", req.last_known_epoch),
        encode_var_uint(len(features)),
    ]
    for feature in features:
        if not isinstance(feature, str):
            raise EncodeError(f"features must be str, got {type(feature).__name__}")
        try:
            parts.append(encode_var_octet_string(feature.encode("utf-8")))
        except UnicodeEncodeError as exc:
            raise EncodeError(f"feature {feature!r} is not encodable as UTF-8: {exc.reason}") from None
    return b"".join(parts)


def encode_route_update(req: RouteUpdateRequest) -> bytes:
    """Serialize a route update request: the ``data`` of its Prepare (not the Prepare).

    Prop flags are normalized as the reference does (module docstring).

    :param req: the request.
    :returns: ``RouteUpdateRequestData`` in OER (layout in the module docstring).
    :raises EncodeError: not a :class:`RouteUpdateRequest`, table id not 16 bytes, an epoch or
        the hold-down time not a UInt32, an address (speaker, prefix, hop, withdrawn prefix)
        outside the ILP address character set or over 1023 characters, an auth not 32 bytes,
        a prop id not a UInt16, a prop flag not a bool, a prop value not bytes.
    """
    if not isinstance(req, RouteUpdateRequest):
        raise EncodeError(f"expected a RouteUpdateRequest, got {type(req).__name__}")
    new_routes = _sequence("new_routes", req.new_routes)
    withdrawn = _sequence("withdrawn_routes", req.withdrawn_routes)
    parts = [
        _check_bytes("routing_table_id", req.routing_table_id, ROUTING_TABLE_ID_LENGTH),
        _uint32("current_epoch_index", req.current_epoch_index),
        _uint32("from_epoch_index", req.from_epoch_index),
        _uint32("to_epoch_index", req.to_epoch_index),
        _uint32("hold_down_time", req.hold_down_time),
        _address("speaker", req.speaker),
        encode_var_uint(len(new_routes)),
    ]
    parts.extend(_encode_route(route) for route in new_routes)
    parts.append(encode_var_uint(len(withdrawn)))
    parts.extend(_address("withdrawn route", prefix) for prefix in withdrawn)
    return b"".join(parts)


# -- decoding ---------------------------------------------------------------------------------

def _reader(data: object) -> Reader:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    return Reader(bytes(data))


def _read_count(r: Reader, what: str, min_item_size: int) -> int:
    """A SEQUENCE OF count, refused early if the items cannot fit in what is left."""
    count = r.read_var_uint()
    if count * min_item_size > r.remaining():
        raise DecodeError(f"{what}: {count} items cannot fit in the {r.remaining()} bytes left")
    return count


def _read_address(r: Reader, what: str) -> str:
    raw = r.read_var_octet_string()
    try:
        address = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is not ASCII") from None
    if not has_address_charset(address):
        raise DecodeError(f"{what} {address[:64]!r} is not a valid ILP address")
    return address


def _read_prop(r: Reader) -> RouteProp:
    flags = r.read_uint8()
    prop_id = int.from_bytes(r.read_octets(2), "big")
    value = r.read_var_octet_string()
    return RouteProp(
        is_optional=bool(flags & PROP_OPTIONAL),
        is_transitive=bool(flags & PROP_TRANSITIVE),
        is_partial=bool(flags & PROP_PARTIAL),
        id=prop_id,
        is_utf8=bool(flags & PROP_UTF8),
        value=value,
    )


def _read_route(r: Reader) -> Route:
    prefix = _read_address(r, "route prefix")
    path = tuple(_read_address(r, "route path hop") for _ in range(_read_count(r, "route path", 1)))
    auth = r.read_octets(AUTH_LENGTH)
    # flags + id + length prefix
    props = tuple(_read_prop(r) for _ in range(_read_count(r, "route props", 4)))
    return Route(prefix, path, auth, props)


def decode_route_control(data: bytes) -> RouteControlRequest:
    """Parse the ``data`` of a ``peer.route.control`` Prepare.

    Bytes after the request are ignored (module docstring).

    :param data: ``RouteControlRequestData`` in OER.
    :raises DecodeError: truncated, mode not IDLE/SYNC, a count that cannot fit, a feature that
        is not UTF-8, a malformed length or VarUInt.
    """
    r = _reader(data)
    mode = r.read_uint8()
    if mode not in _MODES:
        raise DecodeError(f"unknown route control mode {mode}")
    table_id = r.read_octets(ROUTING_TABLE_ID_LENGTH)
    epoch = r.read_uint32()
    features = tuple(r.read_utf8() for _ in range(_read_count(r, "features", 1)))
    return RouteControlRequest(mode, table_id, epoch, features)


def decode_route_update(data: bytes) -> RouteUpdateRequest:
    """Parse the ``data`` of a ``peer.route.update`` Prepare.

    Bytes after the request are ignored; prop flags are read as they are (module docstring).

    :param data: ``RouteUpdateRequestData`` in OER.
    :raises DecodeError: truncated, an address outside the ILP address character set, a count
        that cannot fit, a malformed length or VarUInt.
    """
    r = _reader(data)
    table_id = r.read_octets(ROUTING_TABLE_ID_LENGTH)
    current_epoch = r.read_uint32()
    from_epoch = r.read_uint32()
    to_epoch = r.read_uint32()
    hold_down_time = r.read_uint32()
    speaker = _read_address(r, "speaker")
    # prefix + path count + auth + props count: at least 1 + 2 + 32 + 2 bytes
    new_routes = tuple(_read_route(r) for _ in range(_read_count(r, "new routes", 37)))
    withdrawn = tuple(_read_address(r, "withdrawn route") for _ in range(_read_count(r, "withdrawn routes", 1)))
    return RouteUpdateRequest(
        table_id, current_epoch, from_epoch, to_epoch, hold_down_time, speaker, new_routes, withdrawn
    )


# -- packets ----------------------------------------------------------------------------------

def _prepare(destination: str, data: bytes, expires_at: datetime) -> Prepare:
    if len(data) > MAX_DATA_LENGTH:
        raise EncodeError(f"CCP request is {len(data)} bytes, more than the {MAX_DATA_LENGTH} a Prepare can carry")
    return Prepare(0, expires_at, PEER_PROTOCOL_CONDITION, destination, data)


def control_prepare(req: RouteControlRequest, expires_at: datetime) -> Prepare:
    """Build the Prepare carrying a route control request.

    :param req: the request.
    :param expires_at: aware UTC datetime; the reference uses now + :data:`CCP_PREPARE_EXPIRY_MS`.
    :returns: amount 0, the peer-protocol condition, destination ``peer.route.control``,
        ``data`` = :func:`encode_route_control` of ``req``.
    :raises EncodeError: as :func:`encode_route_control`.
    """
    return _prepare(CCP_CONTROL_DESTINATION, encode_route_control(req), expires_at)


def update_prepare(req: RouteUpdateRequest, expires_at: datetime) -> Prepare:
    """Build the Prepare carrying a route update request.

    :param req: the request.
    :param expires_at: aware UTC datetime; the reference uses now + :data:`CCP_PREPARE_EXPIRY_MS`.
    :returns: amount 0, the peer-protocol condition, destination ``peer.route.update``,
        ``data`` = :func:`encode_route_update` of ``req``.
    :raises EncodeError: as :func:`encode_route_update`, or the encoded request is longer than
        the 32767 bytes a Prepare's ``data`` may hold (split the update into epoch ranges).
    """
    return _prepare(CCP_UPDATE_DESTINATION, encode_route_update(req), expires_at)


def response_fulfill() -> Fulfill:
    """:returns: the answer to either request: a Fulfill of 32 zero bytes with empty data."""
    return Fulfill(PEER_PROTOCOL_FULFILLMENT, b"")
