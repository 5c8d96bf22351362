"""Balance state of one account, and the limits that guard it.

Amounts are ``int`` in the account's base units, from the connector's point of view:
positive = the counterparty owes us, negative = we owe the counterparty (the reference
connector's convention). Limits come from the account's ``balance`` config:
``minimum`` (default ``-Infinity`` → ``None``), ``maximum`` (required when ``balance`` is
configured; ``Infinity`` → ``None``), ``settleThreshold`` (``None``: never settle),
``settleTo`` (default 0).

The rules that move a :class:`BalanceState` (reserve against a limit, then commit or release)
are the pure functions :func:`apply_reserve_incoming`, :func:`apply_reserve_outgoing` and
:func:`apply_settle`: every store applies them, and so do ledger plugins that keep balances of
their own per user (mini-accounts' ``clientBalance``), so that one rule holds everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Optional

from ilptx.codec._dataclass import frozen_dataclass

__all__ = ["BalanceState", "BalanceLimits", "parse_limit", "apply_reserve_incoming", "apply_reserve_outgoing",
           "apply_settle"]


@frozen_dataclass
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


@frozen_dataclass
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


def apply_reserve_incoming(state: BalanceState, amount: int, maximum: Optional[int]) -> Optional[BalanceState]:
    """Reserve an incoming Prepare of ``amount`` (base units) from the account.

    :param maximum: the balance maximum, or ``None`` for no limit.
    :returns: the new state, or ``None`` (refuse: T04) if ``balance + incoming reserved + amount``
        would pass ``maximum``."""
    if maximum is not None and state.balance + state.incoming_reserved + amount > maximum:
        return None
    return replace(state, incoming_reserved=state.incoming_reserved + amount)


def apply_reserve_outgoing(state: BalanceState, amount: int, minimum: Optional[int]) -> Optional[BalanceState]:
    """Reserve an outgoing Prepare of ``amount`` (base units) to the account.

    :param minimum: the balance minimum, or ``None`` for no limit.
    :returns: the new state, or ``None`` (refuse: T04) if ``balance − outgoing reserved − amount``
        would fall under ``minimum``."""
    if minimum is not None and state.balance - state.outgoing_reserved - amount < minimum:
        return None
    return replace(state, outgoing_reserved=state.outgoing_reserved + amount)


def apply_settle(state: BalanceState, amount: int, fulfilled: bool, incoming: bool) -> BalanceState:
    """End a reservation of ``amount``: commit it on Fulfill (incoming: ``balance += amount``,
    outgoing: ``balance −= amount``), release it otherwise.

    :returns: the new state; the reservation is clamped at 0, never negative."""
    if incoming:
        reserved = max(0, state.incoming_reserved - amount)
        return replace(state, incoming_reserved=reserved, balance=state.balance + (amount if fulfilled else 0))
    reserved = max(0, state.outgoing_reserved - amount)
    return replace(state, outgoing_reserved=reserved, balance=state.balance - (amount if fulfilled else 0))
