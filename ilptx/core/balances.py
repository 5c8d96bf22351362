"""Balance state of one account, and the limits that guard it.

Amounts are ``int`` in the account's base units, from the connector's point of view:
positive = the counterparty owes us, negative = we owe the counterparty (the reference
connector's convention). Limits come from the account's ``balance`` config:
``minimum`` (default ``-Infinity`` → ``None``), ``maximum`` (required when ``balance`` is
configured; ``Infinity`` → ``None``), ``settleThreshold`` (``None``: never settle),
``settleTo`` (default 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["BalanceState", "BalanceLimits", "parse_limit"]


@dataclass(frozen=True, slots=True)
class BalanceState:
    """One account's money.

    :ivar balance: committed balance.
    :ivar incoming_reserved: sum of unanswered Prepares from the account (>= 0).
    :ivar outgoing_reserved: sum of unanswered Prepares to the account (>= 0).
    :ivar settling: sum of settlements in the outbox, not yet confirmed (>= 0).
    """

    balance: int = 0
    incoming_reserved: int = 0
    outgoing_reserved: int = 0
    settling: int = 0

    def as_json(self) -> dict:
        """:returns: amounts as decimal strings (JSON numbers lose precision past 2^53)."""
        return {
            "balance": str(self.balance),
            "incomingReserved": str(self.incoming_reserved),
            "outgoingReserved": str(self.outgoing_reserved),
            "settling": str(self.settling),
        }


def parse_limit(text: Optional[str]) -> Optional[int]:
    """``"-Infinity"``/``"Infinity"``/absent → ``None`` (no limit); integer strings → ``int``."""
    if text is None or text in ("Infinity", "-Infinity"):
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class BalanceLimits:
    """The ``balance`` settings of an account (all ``int`` or ``None`` for "no limit")."""

    minimum: Optional[int] = None
    maximum: Optional[int] = None
    settle_threshold: Optional[int] = None
    settle_to: int = 0

    @classmethod
    def from_config(cls, balance: Optional[Mapping]) -> Optional["BalanceLimits"]:
        """:returns: limits from an account's ``balance`` mapping, or ``None`` if absent."""
        if balance is None:
            return None
        return cls(
            minimum=parse_limit(balance.get("minimum")),
            maximum=parse_limit(balance.get("maximum")),
            settle_threshold=parse_limit(balance.get("settleThreshold")),
            settle_to=int(balance.get("settleTo", "0")),
        )
