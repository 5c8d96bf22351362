"""``echo``: incoming. Answers echo requests addressed to the connector itself.

A Prepare whose destination is exactly our address must carry data starting with
``ECHOECHOECHOECHO`` (16 bytes), then a type byte: 0 = request, followed by the source
address (OER var-octet string). We then send a Prepare of the same amount, condition and
expiry back to that source address with data ``ECHOECHOECHOECHO`` + ``0x01`` (response), through
the switch. Short data, a wrong prefix or a response type give ``F01 Invalid Packet``
with the reference's messages.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.codec.ilp import Prepare
from ilptx.codec.oer import DecodeError, Reader
from ilptx.core.middleware import Middleware
from ilptx.errors import InvalidPacketError
from ilptx.interfaces import IMiddleware

__all__ = ["EchoMiddleware", "create", "NAME", "ECHO_DATA_PREFIX"]

NAME = "echo"
ECHO_DATA_PREFIX = b"ECHOECHOECHOECHO"
_MIN_LENGTH = len(ECHO_DATA_PREFIX) + 1


@implementer(IMiddleware)
class EchoMiddleware(Middleware):
    """:param address: callable returning our ILP address."""

    name = NAME

    def __init__(self, address) -> None:
        self._address = address

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """Turn an echo request to our own address into a Prepare back to its source."""
        if prepare.destination != self._address():
            return next_handler(account, prepare)
        data = prepare.data
        if len(data) < _MIN_LENGTH:
            raise InvalidPacketError(f"packet data too short for echo request. length={len(data)}")
        if data[:16] != ECHO_DATA_PREFIX:
            raise InvalidPacketError("packet data does not start with ECHO prefix.")
        reader = Reader(data, 16)
        if reader.read_uint8() != 0:
            raise InvalidPacketError("unexpected ping response.")
        try:
            source = reader.read_ascii()
        except DecodeError as exc:
            raise InvalidPacketError(f"invalid echo source address: {exc}") from None
        response = Prepare(prepare.amount, prepare.expires_at, prepare.execution_condition, source,
                           ECHO_DATA_PREFIX + b"\x01")
        return next_handler(account, response)


def create(options, *, account, services) -> EchoMiddleware:
    """Every account."""
    return EchoMiddleware(services.address)
