"""ILP addresses (RFC 15).

Two levels of checking:

* :func:`is_valid_address` -- the full RFC 15 grammar: an allocation scheme followed by at
  least one non-empty segment, at most 1023 characters.
* :func:`has_address_charset` -- only the ASN.1 ``Address`` constraint
  (``InterledgerTypes.asn``): the character set and 0..1023 characters. Decoders use this, so
  that a Reject whose ``triggeredBy`` is empty (which several real senders produce) still
  decodes and is relayed unchanged.
"""

from __future__ import annotations

import re

__all__ = [
    "ALLOCATION_SCHEMES",
    "MAX_ADDRESS_LENGTH",
    "has_address_charset",
    "is_valid_address",
    "is_valid_segment",
    "is_prefix_of",
]

MAX_ADDRESS_LENGTH = 1023

#: Allocation schemes of RFC 15, "Allocation Schemes".
ALLOCATION_SCHEMES = frozenset(
    ("g", "private", "example", "peer", "self", "test", "test1", "test2", "test3", "local")
)

_ADDRESS_RE = re.compile(r"(?:g|private|example|peer|self|test[1-3]?|local)(?:\.[A-Za-z0-9_~-]+)+")
_CHARSET_RE = re.compile(r"[A-Za-z0-9._~-]*")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_~-]+")


def is_valid_address(address: str) -> bool:
    """Whether ``address`` is a full ILP address under the RFC 15 grammar.

    :param address: e.g. ``"g.us-fed.ach.0.acmebank.swx0a0.acmecorp.sales.199"``.
    :returns: ``True`` if it has a known scheme, at least one segment after it, no empty
        segment, and at most 1023 characters.
    """
    return len(address) <= MAX_ADDRESS_LENGTH and _ADDRESS_RE.fullmatch(address) is not None


def is_valid_segment(segment: str) -> bool:
    """Whether ``segment`` may stand between two periods of an ILP address (RFC 15, rule 4)."""
    return _SEGMENT_RE.fullmatch(segment) is not None


def has_address_charset(address: str) -> bool:
    """Whether ``address`` meets the ASN.1 ``Address`` type: allowed characters, 0..1023 long."""
    return len(address) <= MAX_ADDRESS_LENGTH and _CHARSET_RE.fullmatch(address) is not None


def is_prefix_of(prefix: str, address: str) -> bool:
    """Whether ``prefix`` matches ``address`` on a segment boundary.

    ``g.alice`` is a prefix of ``g.alice`` and ``g.alice.x`` but not of ``g.alicebob``.
    The empty prefix (a default route) matches every address.
    """
    if not prefix:
        return True
    return address == prefix or (address.startswith(prefix) and address[len(prefix)] == ".")
