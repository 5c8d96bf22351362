"""The BTP sub-protocols of ``ilp-plugin-xrp-paychan`` 2.4.1 (``index.js``), sans-IO.

=====================  ========  =====================================================================
name                   frame     request → response
=====================  ========  =====================================================================
``xrp_address``        MESSAGE   text: our r-address → text: the peer's r-address
``info``               MESSAGE   octet ``[0x02]`` (``INFO_REQUEST_ALL``) → JSON ``{"currencyScale": N}``
``ripple_channel_id``  MESSAGE   text: the sender's outgoing channel id → text: the answerer's
                                 outgoing channel id, or ``""``
``claim``              TRANSFER  JSON ``{"amount": "<cumulative total, plugin units>",
                                 "signature": "<128 hex>"}`` (the BTP amount: the increase,
                                 only the peer's word) → empty Response
=====================  ========  =====================================================================

Content types (RFC 23): 0 octet-stream, 1 text/plain UTF-8, 2 application/json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ilptx.codec.btp import CONTENT_JSON, CONTENT_OCTET_STREAM, CONTENT_TEXT_PLAIN_UTF8, ProtocolDataEntry

__all__ = ["XRP_ADDRESS", "INFO", "RIPPLE_CHANNEL_ID", "CLAIM", "INFO_REQUEST_ALL", "MalformedMessageError",
           "Claim", "text_entry", "info_request", "info_response", "decode_info", "claim_entry", "decode_claim",
           "find", "decode_text", "decode_channel_id"]

XRP_ADDRESS, INFO, RIPPLE_CHANNEL_ID, CLAIM = "xrp_address", "info", "ripple_channel_id", "claim"
#: the ``info`` request byte (``ilp-plugin-xrp-paychan-shared`` ``util.INFO_REQUEST_ALL``)
INFO_REQUEST_ALL = 2

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_HEX128 = re.compile(r"[0-9A-Fa-f]{128}")


class MalformedMessageError(ValueError):
    """A sub-protocol entry that does not parse; the message names the field."""


@dataclass(frozen=True)
class Claim:
    """A ``claim``: ``amount`` (``int``, cumulative total on the channel, plugin units) and
    ``signature`` (128 hex digits, as sent)."""

    amount: int
    signature: str


def text_entry(name: str, text: str) -> ProtocolDataEntry:
    """A text/plain entry (``xrp_address``, ``ripple_channel_id``)."""
    return ProtocolDataEntry(name, CONTENT_TEXT_PLAIN_UTF8, text.encode("utf-8"))


def info_request() -> ProtocolDataEntry:
    return ProtocolDataEntry(INFO, CONTENT_OCTET_STREAM, bytes([INFO_REQUEST_ALL]))


def info_response(currency_scale: int) -> ProtocolDataEntry:
    return ProtocolDataEntry(INFO, CONTENT_JSON, json.dumps({"currencyScale": currency_scale},
                                                            separators=(",", ":")).encode())


def _json(entry: ProtocolDataEntry, what: str):
    try:
        return json.loads(bytes(entry.data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedMessageError(f"{what} is not JSON") from None


def decode_info(entry: ProtocolDataEntry) -> int:
    """:returns: the peer's ``currencyScale`` (``int``). :raises MalformedMessageError: no such field."""
    info = _json(entry, "info response")
    scale = info.get("currencyScale") if isinstance(info, dict) else None
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise MalformedMessageError(f"info response has no integer currencyScale: {info!r:.200}")
    return scale


def claim_entry(claim: str) -> ProtocolDataEntry:
    """The ``claim`` entry of a TRANSFER: ``claim`` is the JSON :func:`encode_claim` made."""
    return ProtocolDataEntry(CLAIM, CONTENT_JSON, claim.encode("utf-8"))


def encode_claim(amount: int, signature: str) -> str:
    """The claim JSON, ``{"amount": "<decimal>", "signature": "<hex>"}`` (JS ``JSON.stringify``)."""
    return json.dumps({"amount": str(amount), "signature": signature}, separators=(",", ":"))


def decode_claim(entry: ProtocolDataEntry) -> Claim:
    """:raises MalformedMessageError: not JSON, ``amount`` not a decimal integer >= 0 (string or
    number), ``signature`` not 128 hex digits."""
    claim = _json(entry, "claim")
    if not isinstance(claim, dict):
        raise MalformedMessageError("claim is not a JSON object")
    amount = claim.get("amount")
    if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
        value = amount
    elif isinstance(amount, str) and amount.isdigit() and len(amount) <= 30:
        value = int(amount)
    else:
        raise MalformedMessageError(f"claim amount must be a decimal integer >= 0, got {amount!r:.60}")
    signature = claim.get("signature")
    if not isinstance(signature, str) or not _HEX128.fullmatch(signature):
        raise MalformedMessageError(f"claim signature must be 128 hex digits, got {signature!r:.200}")
    return Claim(value, signature)


def find(entries, name: str):
    """:returns: the first entry named ``name`` in ``entries``, or ``None``."""
    for entry in entries:
        if entry.protocol_name == name:
            return entry
    return None


def decode_text(entry: ProtocolDataEntry, what: str) -> str:
    try:
        return bytes(entry.data).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessageError(f"{what} is not UTF-8 text") from None


def decode_channel_id(entry: ProtocolDataEntry) -> str:
    """:returns: the channel id (uppercase) or ``""`` (the peer has none).
    :raises MalformedMessageError: neither empty nor 64 hex digits."""
    text = decode_text(entry, "ripple_channel_id").strip()
    if text and not _HEX64.fullmatch(text):
        raise MalformedMessageError(f"ripple_channel_id must be 64 hex digits, got {text!r:.100}")
    return text.upper()
