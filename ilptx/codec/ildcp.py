"""Interledger Dynamic Configuration Protocol (IL-DCP, RFC 31).

Sans-IO: builds the ``peer.config`` Prepare and encodes/decodes the Fulfill data
``DynamicConfigurationResponseData`` (``DynamicConfigurationProtocol.asn``):
``clientAddress`` (ASCII, length-prefixed), ``assetScale`` (UInt8), ``assetCode``
(UTF-8, length-prefixed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.address import has_address_charset
from ilptx.codec.ilp import Fulfill, Prepare
from ilptx.codec.oer import DecodeError, EncodeError, Reader, encode_var_octet_string

__all__ = [
    "ILDCP_DESTINATION",
    "PEER_PROTOCOL_FULFILLMENT",
    "PEER_PROTOCOL_CONDITION",
    "IldcpResponse",
    "request_prepare",
    "response_fulfill",
]

#: The destination of every IL-DCP request (RFC 31, "Packet").
ILDCP_DESTINATION = "peer.config"
#: 32 zero bytes: the fulfillment of IL-DCP (and CCP) responses.
PEER_PROTOCOL_FULFILLMENT = bytes(32)
#: SHA-256 of 32 zero bytes (``Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU=``).
PEER_PROTOCOL_CONDITION = hashlib.sha256(PEER_PROTOCOL_FULFILLMENT).digest()


@frozen_dataclass
class IldcpResponse:
    """What a parent tells its child (RFC 31).

    :ivar client_address: the ILP address the child should use.
    :ivar asset_scale: 0..255, the scale of amounts on this account.
    :ivar asset_code: e.g. ``"XRP"``.
    """

    client_address: str
    asset_scale: int
    asset_code: str

    def encode(self) -> bytes:
        """:raises EncodeError: address outside the ASN.1 charset, scale not a UInt8, or
        asset code not a ``str``."""
        if not isinstance(self.client_address, str) or not has_address_charset(self.client_address):
            raise EncodeError(f"client address {self.client_address!r} is not a valid ILP address")
        if not isinstance(self.asset_scale, int) or isinstance(self.asset_scale, bool) or not 0 <= self.asset_scale <= 255:
            raise EncodeError(f"asset scale {self.asset_scale!r} is not a UInt8")
        if not isinstance(self.asset_code, str):
            raise EncodeError(f"asset code must be a str, got {type(self.asset_code).__name__}")
        return (
            encode_var_octet_string(self.client_address.encode("ascii"))
            + bytes((self.asset_scale,))
            + encode_var_octet_string(self.asset_code.encode("utf-8"))
        )

    @classmethod
    def decode(cls, data: bytes) -> "IldcpResponse":
        """:raises DecodeError: truncated, trailing bytes, bad address or bad UTF-8."""
        r = Reader(bytes(data))
        address = r.read_ascii()
        if not has_address_charset(address):
            raise DecodeError(f"client address {address[:64]!r} is not a valid ILP address")
        scale = r.read_uint8()
        code = r.read_utf8()
        r.ensure_done("IL-DCP response")
        return cls(address, scale, code)


def request_prepare(expires_at: datetime) -> Prepare:
    """:returns: the IL-DCP request: a zero-amount Prepare to ``peer.config``, empty data."""
    return Prepare(0, expires_at, PEER_PROTOCOL_CONDITION, ILDCP_DESTINATION, b"")


def response_fulfill(response: IldcpResponse) -> Fulfill:
    """:returns: the IL-DCP answer: a Fulfill of 32 zero bytes carrying ``response``."""
    return Fulfill(PEER_PROTOCOL_FULFILLMENT, response.encode())
