"""The BTP sub-protocols of the ``lightning`` plugin (sans-IO: build and read the entries).

From ``ilp-plugin-lightning`` 1.0.0-beta.25 (``src/account.ts``), BTP MESSAGEs, text/plain:

``peeringRequest``
    the sender's node public key (66 hex digits), optionally ``@host:port``; answered ``[]``.
``paymentRequest``
    an amountless BOLT11 invoice addressed to the sender's node, for the pool the receiver pays
    from; answered ``[]``.

The extension of this plugin (not in the JS one), for nodes that cannot pay an amountless
invoice (Electrum's command interface):

``invoiceRequest``
    the amount owed, ``int`` **msat** as decimal text; answered with one ``paymentRequest``
    entry: a BOLT11 invoice of the sender's peer for exactly that amount. A peer that does not
    know it (the JS plugin) answers without that entry or with an error, and the payer keeps
    the payout queued.
``paymentPreimage``
    the preimage (64 hex digits) of an invoice of the receiver's that the sender just paid; a
    hint only: the receiver asks its own node about that invoice now (credits only what the node
    reports) instead of at its next poll; answered ``[]``. (The name is the ``ko-settlement-engine``
    branch's message type.)
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from ilptx.codec.btp import CONTENT_TEXT_PLAIN_UTF8, ProtocolDataEntry

__all__ = ["CONTENT_TEXT", "PEERING_REQUEST", "PAYMENT_REQUEST", "INVOICE_REQUEST", "PAYMENT_PREIMAGE",
           "MalformedMessageError", "text_entry",
           "decode_peering_request", "decode_invoice_request", "find_text"]

#: every entry of these sub-protocols is text/plain UTF-8
CONTENT_TEXT = CONTENT_TEXT_PLAIN_UTF8
PEERING_REQUEST = "peeringRequest"
PAYMENT_REQUEST = "paymentRequest"
INVOICE_REQUEST = "invoiceRequest"
PAYMENT_PREIMAGE = "paymentPreimage"
_NODE_ID = re.compile(r"0[23][0-9a-f]{64}")
_MAX_MSAT = 21_000_000 * 10 ** 11


class MalformedMessageError(ValueError):
    """A sub-protocol entry that does not parse (the message names the field)."""


def text_entry(name: str, text: str) -> ProtocolDataEntry:
    """:returns: the ``ProtocolDataEntry`` ``name`` with ``text`` (UTF-8, text/plain)."""
    return ProtocolDataEntry(name, CONTENT_TEXT_PLAIN_UTF8, text.encode("utf-8"))


def _text(entry: ProtocolDataEntry) -> str:
    try:
        return bytes(entry.data).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise MalformedMessageError(f"{entry.protocol_name}: not UTF-8 text") from None


def decode_peering_request(entry: ProtocolDataEntry) -> str:
    """:returns: the node id (lower-case hex) of a ``peeringRequest`` (``pubkey[@host]``, as the JS
    ``split('@')``). :raises MalformedMessageError: not a compressed secp256k1 public key in hex."""
    node_id = _text(entry).split("@")[0].lower()
    if not _NODE_ID.fullmatch(node_id):
        raise MalformedMessageError(f"peeringRequest: not a node public key (66 hex digits): {node_id[:80]!r}")
    return node_id


def decode_invoice_request(entry: ProtocolDataEntry) -> int:
    """:returns: the amount (``int`` msat, > 0) of an ``invoiceRequest``.
    :raises MalformedMessageError: not a positive decimal integer, or above 21 million BTC."""
    text = _text(entry)
    if not re.fullmatch(r"[0-9]{1,20}", text) or not 0 < int(text) <= _MAX_MSAT:
        raise MalformedMessageError(f"invoiceRequest: not an amount of msat > 0: {text[:40]!r}")
    return int(text)


def find_text(entries: Iterable[ProtocolDataEntry], name: str) -> Optional[str]:
    """:returns: the text of the first entry ``name`` among ``entries``, or ``None``."""
    for entry in entries:
        if entry.protocol_name == name:
            return _text(entry)
    return None
