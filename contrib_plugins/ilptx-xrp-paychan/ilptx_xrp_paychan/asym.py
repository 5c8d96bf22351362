"""What the asymmetric XRP plugins add to the symmetric wire (sans-IO): ``ilp-plugin-xrp-asym-client``
1.6.0 (``index.js``) and ``ilp-plugin-xrp-asym-server`` 1.8.1 (``src/index.ts``), with
``ilp-plugin-xrp-paychan-shared`` ``util.encodeChannelProof`` / ``util.hmac``.

=====================  ========  =====================================================================
name                   frame     request → response
=====================  ========  =====================================================================
``info``               MESSAGE   octet ``[0x02]`` → JSON ``{"address", "account", "currencyScale",
                                 "channel"?, "clientChannel"?}`` (the server's r-address, the
                                 client's ILP address, the client's channel, the server's channel
                                 to the client)
``channel`` +          MESSAGE   octet: the client's channel id (32 bytes) + octet: Ed25519
``channel_signature``            signature of :func:`channel_proof` by the channel's key → empty
``fund_channel``       MESSAGE   text: the client's r-address → octet: the new channel id to it
``last_claim``         MESSAGE   empty → JSON: the best claim the server holds (``{"amount",
                                 "signature"}``, or ``{}``-ish before any)
``claim``              TRANSFER  as in the symmetric plugin (:mod:`ilptx_xrp_paychan.protocol`)
=====================  ========  =====================================================================
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from xrpl.core import keypairs

from ilptx.codec.btp import CONTENT_OCTET_STREAM, CONTENT_TEXT_PLAIN_UTF8, ProtocolDataEntry

from ilptx_xrp_paychan.claims import ChannelKey
from ilptx_xrp_paychan.protocol import MalformedMessageError, _json

__all__ = ["STATELESS_TAG", "CHANNEL", "CHANNEL_SIGNATURE", "FUND_CHANNEL", "LAST_CLAIM", "AsymInfo",
           "node_base64_decode", "channel_proof", "sign_channel_proof", "verify_channel_proof", "derive_btp_server",
           "decode_asym_info", "channel_entries", "fund_channel_entry", "last_claim_entry", "decode_last_claim"]

#: the HMAC tag of the asym client's channel key (``'ilp-plugin-xrp-stateless'`` + the server's address)
STATELESS_TAG = "ilp-plugin-xrp-stateless"
CHANNEL, CHANNEL_SIGNATURE, FUND_CHANNEL, LAST_CLAIM = "channel", "channel_signature", "fund_channel", "last_claim"

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_B64.update({"-": 62, "_": 63})


def node_base64_decode(text: str) -> bytes:
    """``Buffer.from(text, 'base64')`` of Node.js, exactly: both alphabets (``+/`` and ``-_``),
    every other character skipped, decoding stops at the first ``=``; a last group of 2 or 3
    characters gives 1 or 2 bytes, a lone character nothing. (An ILP address such as
    ``test.xrp.alice`` is not base64: Node decodes ``testxrpalice`` from it, and so do we.)"""
    values = []
    for char in text:
        if char == "=":
            break
        value = _B64.get(char)
        if value is not None:
            values.append(value)
    out = bytearray()
    for i in range(0, len(values) - 1, 4):
        group = values[i:i + 4]
        out.append((group[0] << 2 | group[1] >> 4) & 0xFF)
        if len(group) > 2:
            out.append((group[1] << 4 | group[2] >> 2) & 0xFF)
        if len(group) > 3:
            out.append((group[2] << 6 | group[3]) & 0xFF)
    return bytes(out)


def channel_proof(channel_id: str, ilp_address: str) -> bytes:
    """``"channel_signature"`` ‖ channel id (32 bytes) ‖ :func:`node_base64_decode` (ILP address):
    what the client signs to prove the channel is its own (JS ``util.encodeChannelProof``).
    :raises ValueError: a channel id that is not hex."""
    return b"channel_signature" + bytes.fromhex(channel_id) + node_base64_decode(ilp_address)


def sign_channel_proof(key: ChannelKey, channel_id: str, ilp_address: str) -> bytes:
    """:returns: the 64-byte Ed25519 signature of :func:`channel_proof` by the channel key."""
    return bytes.fromhex(keypairs.sign(channel_proof(channel_id, ilp_address), key.private_key))


def verify_channel_proof(public_key: str, channel_id: str, ilp_address: str, signature: bytes) -> bool:
    """:returns: whether ``signature`` proves ``channel_id`` for ``ilp_address`` against the
    channel's ``PublicKey`` (``"ED"`` + hex); ``False`` for anything malformed."""
    try:
        return bool(keypairs.is_valid_message(channel_proof(channel_id, ilp_address), bytes(signature), public_key))
    except Exception:  # noqa: BLE001 - any malformed key or signature is simply not a proof
        return False


def derive_btp_server(server: str, secret: str) -> str:
    """The BTP URL the asym client dials: ``server`` unchanged when it has a password, else with
    the password ``hex(HMAC-SHA256(key = HMAC-SHA256(key = "parent_btp_uri", host + username),
    secret))`` (JS constructor; ``host`` with its port as written, ``username`` as written)."""
    parts = urlsplit(server)
    userinfo, at, host = parts.netloc.rpartition("@")
    username, colon, password = userinfo.partition(":")
    if password:
        return server
    inner = hmac.new(b"parent_btp_uri", (host + username).encode("utf-8"), hashlib.sha256).digest()
    token = hmac.new(inner, secret.encode("utf-8"), hashlib.sha256).hexdigest()
    return urlunsplit(parts._replace(netloc=f"{username}:{token}@{host}"))


@dataclass(frozen=True)
class AsymInfo:
    """The server's ``info``: ``address`` (r-address), ``account`` (the client's ILP address),
    ``currency_scale`` (``int``; 6 when absent, as JS), ``channel`` / ``client_channel``
    (uppercase hex or ``None``)."""

    address: str
    account: str
    currency_scale: int
    channel: Optional[str]
    client_channel: Optional[str]


def _channel_field(info: dict, name: str) -> Optional[str]:
    value = info.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) != 64:
        raise MalformedMessageError(f"info {name} must be 64 hex digits, got {value!r:.100}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise MalformedMessageError(f"info {name} must be 64 hex digits, got {value!r:.100}") from None
    return value.upper()


def decode_asym_info(entry: ProtocolDataEntry) -> AsymInfo:
    """:raises MalformedMessageError: not JSON, no string ``address`` / ``account``, a
    ``currencyScale`` that is not an integer, a channel that is not 64 hex digits."""
    info = _json(entry, "info response")
    if not isinstance(info, dict):
        raise MalformedMessageError("info response is not a JSON object")
    address, account = info.get("address"), info.get("account")
    if not isinstance(address, str) or not isinstance(account, str) or not account:
        raise MalformedMessageError(f"info response needs string address and account: {info!r:.200}")
    scale = info.get("currencyScale") or 6
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise MalformedMessageError(f"info currencyScale must be an integer, got {scale!r:.40}")
    return AsymInfo(address, account, scale, _channel_field(info, "channel"), _channel_field(info, "clientChannel"))


def channel_entries(channel_id: str, signature: bytes) -> list:
    """``channel`` (32 bytes) and ``channel_signature`` (64 bytes), both octet-stream."""
    return [ProtocolDataEntry(CHANNEL, CONTENT_OCTET_STREAM, bytes.fromhex(channel_id)),
            ProtocolDataEntry(CHANNEL_SIGNATURE, CONTENT_OCTET_STREAM, bytes(signature))]


def fund_channel_entry(address: str) -> ProtocolDataEntry:
    """``fund_channel``: the client's r-address as text (the server opens a channel to it)."""
    return ProtocolDataEntry(FUND_CHANNEL, CONTENT_TEXT_PLAIN_UTF8, address.encode("utf-8"))


def last_claim_entry() -> ProtocolDataEntry:
    """``last_claim`` request: empty octet-stream."""
    return ProtocolDataEntry(LAST_CLAIM, CONTENT_OCTET_STREAM, b"")


def decode_last_claim(entry: ProtocolDataEntry) -> tuple:
    """:returns: ``(amount: int, signature: str | None)`` of the server's best claim
    (``(0, None)`` before any). :raises MalformedMessageError: not JSON, a bad amount."""
    claim = _json(entry, "last_claim")
    if not isinstance(claim, dict):
        raise MalformedMessageError("last_claim is not a JSON object")
    amount, signature = claim.get("amount", "0"), claim.get("signature")
    text = str(amount)
    if isinstance(amount, bool) or not text.isdigit() or len(text) > 30:
        raise MalformedMessageError(f"last_claim amount must be a decimal integer >= 0, got {amount!r:.60}")
    return int(text), signature if isinstance(signature, str) else None

