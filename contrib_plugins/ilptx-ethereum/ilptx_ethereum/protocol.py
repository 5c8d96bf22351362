"""The BTP sub-protocols of ``ilp-plugin-ethereum`` 3.0.0-beta.20 (``src/account.ts``), sans-IO.

All are carried in BTP MESSAGE protocol data (RFC 23 §, content types 0 octet-stream,
1 text/plain UTF-8, 2 JSON):

=================  ============  ==================================================  ==========
name               content type  data                                                answer
=================  ============  ==================================================  ==========
``info``           JSON          ``{"ethereumAddress":"0x…"}``                       ``info``
``machinomy``      JSON          ``{"channelId","signature","value","contractAddress"  nothing
                                 [,"tokenContract"]}``, value cumulative wei string
``channelDeposit`` octet         empty                                               nothing
``requestClose``   text          empty                                               nothing
=================  ============  ==================================================  ==========

Encoders return :class:`SubProtocolEntry` (the fields of a BTP protocol-data entry,
``protocol_name`` / ``content_type`` / ``data``); decoders take any object with those three
attributes (ilptx's BTP entries included) and raise :class:`MalformedMessageError`, whose text
names the sub-protocol and what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, Optional

from eth_utils import is_address

from ilptx_ethereum.claims import check_channel_id
from ilptx_ethereum.model import Claim

__all__ = [
    "SubProtocolEntry", "MalformedMessageError",
    "INFO", "MACHINOMY", "CHANNEL_DEPOSIT", "REQUEST_CLOSE",
    "CONTENT_OCTET_STREAM", "CONTENT_TEXT_PLAIN_UTF8", "CONTENT_JSON",
    "encode_info", "decode_info", "encode_claim", "decode_claim",
    "encode_channel_deposit", "encode_request_close", "select",
]

INFO = "info"
MACHINOMY = "machinomy"
CHANNEL_DEPOSIT = "channelDeposit"
REQUEST_CLOSE = "requestClose"

#: BTP content types (RFC 23).
CONTENT_OCTET_STREAM = 0
CONTENT_TEXT_PLAIN_UTF8 = 1
CONTENT_JSON = 2

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")
_UINT256_DIGITS = 78
_MAX_UINT256 = 2 ** 256 - 1


class SubProtocolEntry(NamedTuple):
    """One BTP protocol-data entry: ``protocol_name`` (str), ``content_type`` (0/1/2), ``data`` (bytes)."""

    protocol_name: str
    content_type: int
    data: bytes


class MalformedMessageError(ValueError):
    """A sub-protocol entry that is not what ``ilp-plugin-ethereum`` sends (wrong name or content
    type, not JSON, a missing or mistyped field, a bad address / channel id / value)."""


def _json(name: str, payload: dict) -> SubProtocolEntry:
    # JSON.stringify's form: no spaces, keys in insertion order
    return SubProtocolEntry(name, CONTENT_JSON, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def _load_json(entry: Any, name: str) -> dict:
    if entry.protocol_name != name:
        raise MalformedMessageError(f"expected the {name!r} sub-protocol, got {entry.protocol_name!r}")
    if entry.content_type != CONTENT_JSON:
        raise MalformedMessageError(f"{name}: content type must be 2 (JSON), got {entry.content_type}")
    try:
        payload = json.loads(bytes(entry.data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessageError(f"{name}: data is not JSON ({exc})") from None
    except RecursionError:  # a peer's deeply nested document: malformed, not a crash of the link
        raise MalformedMessageError(f"{name}: data is nested too deeply to be a claim") from None
    if not isinstance(payload, dict):
        raise MalformedMessageError(f"{name}: data must be a JSON object, got {type(payload).__name__}")
    return payload


def _address(name: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedMessageError(f"{name}: {field} must be a string, got {type(value).__name__}")
    if not is_address(value):
        raise MalformedMessageError(f"{name}: {field} is not an Ethereum address: {value!r}")
    return value


def encode_info(ethereum_address: str) -> SubProtocolEntry:
    """``info`` (sent on connect and as the answer to the peer's ``info``).

    :param ethereum_address: our address; sent as given (the JS plugin sends it checksummed).
    """
    return _json(INFO, {"ethereumAddress": ethereum_address})


def decode_info(entry: Any) -> str:
    """:returns: the peer's Ethereum address from an ``info`` entry.
    :raises MalformedMessageError: not JSON, or no valid ``ethereumAddress`` string."""
    payload = _load_json(entry, INFO)
    if "ethereumAddress" not in payload:
        raise MalformedMessageError("info: no ethereumAddress")
    return _address(INFO, "ethereumAddress", payload["ethereumAddress"])


def encode_claim(claim: Claim) -> SubProtocolEntry:
    """``machinomy``: the JSON the JS plugin's ``sendClaim`` writes, key for key and byte for byte
    (``value`` the cumulative wei as a decimal string; ``tokenContract`` only when set).

    :raises MalformedMessageError: a value that is not an ``int`` in [0, 2**256)."""
    value = claim.value
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_UINT256):
        raise MalformedMessageError(f"machinomy: value must be an int wei in [0, 2**256), got {value!r}")
    payload = {"channelId": claim.channel_id, "signature": claim.signature, "value": str(value),
               "contractAddress": claim.contract_address}
    if claim.token_contract is not None:
        payload["tokenContract"] = claim.token_contract
    return _json(MACHINOMY, payload)


def decode_claim(entry: Any) -> Claim:
    """:returns: the :class:`Claim` in a ``machinomy`` entry (signature not checked here: see
        :func:`ilptx_ethereum.claims.recover_signer` and :mod:`ilptx_ethereum.checks`).
    :raises MalformedMessageError: the JS plugin's schema check (value, channelId, signature,
        contractAddress strings, tokenContract string or absent) plus: value a plain decimal
        uint256 (no sign, exponent or leading zeros), channelId 0x + 64 hex digits, signature
        0x + 130 hex digits, addresses valid."""
    payload = _load_json(entry, MACHINOMY)
    for field in ("channelId", "signature", "value", "contractAddress"):
        if not isinstance(payload.get(field), str):
            raise MalformedMessageError(f"machinomy: {field} must be a string, got {payload.get(field)!r}")
    token: Optional[str] = payload.get("tokenContract")
    if token is not None:
        _address(MACHINOMY, "tokenContract", token)
    raw_value = payload["value"]
    if len(raw_value) > _UINT256_DIGITS or not _DECIMAL.match(raw_value) or int(raw_value) > _MAX_UINT256:
        raise MalformedMessageError(f"machinomy: value must be a decimal uint256 wei string, got {raw_value!r}")
    try:
        check_channel_id(payload["channelId"])
    except ValueError as exc:
        raise MalformedMessageError(f"machinomy: {exc}") from None
    signature = payload["signature"]
    if not re.fullmatch(r"0x[0-9a-fA-F]{130}", signature):
        raise MalformedMessageError(f"machinomy: signature must be 0x + 130 hex digits, got {signature!r}")
    _address(MACHINOMY, "contractAddress", payload["contractAddress"])
    return Claim(payload["channelId"], signature, int(raw_value), payload["contractAddress"], token)


def encode_channel_deposit() -> SubProtocolEntry:
    """``channelDeposit``: empty octet-stream; tells the peer we deposited to our channel to it."""
    return SubProtocolEntry(CHANNEL_DEPOSIT, CONTENT_OCTET_STREAM, b"")


def encode_request_close() -> SubProtocolEntry:
    """``requestClose``: empty text; asks the peer to claim (and so close) our channel to it."""
    return SubProtocolEntry(REQUEST_CLOSE, CONTENT_TEXT_PLAIN_UTF8, b"")


#: The order in which the JS plugin's ``handleData`` looks for its sub-protocols; the first
#: one present is handled, the rest of the message ignored (``ilp`` is the connector's).
HANDLED_IN_ORDER = (INFO, CHANNEL_DEPOSIT, REQUEST_CLOSE, MACHINOMY)


def select(protocol_data: Any) -> Optional[Any]:
    """:returns: the entry of ``protocol_data`` (a sequence of entries) that the JS plugin would
        handle: the first of :data:`HANDLED_IN_ORDER` present (by name; content type and data of
        ``channelDeposit`` / ``requestClose`` are not looked at, as in the JS), else ``None``."""
    by_name = {}
    for entry in protocol_data:
        by_name.setdefault(entry.protocol_name, entry)
    for name in HANDLED_IN_ORDER:
        if name in by_name:
            return by_name[name]
    return None
