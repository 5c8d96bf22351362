"""Stats sinks without a metrics library: :class:`NullStats` (discard) and
:class:`CountingStats` (plain counters, for tests and for ``/stats`` without Prometheus)."""

from __future__ import annotations

from collections import Counter

from zope.interface import implementer

from ilptx.interfaces import IStats

__all__ = ["NullStats", "CountingStats"]


@implementer(IStats)
class NullStats:
    """Discards everything."""

    def incoming_packet(self, account, result, code, amount):
        """Discard."""

    def outgoing_packet(self, account, result, code, amount):
        """Discard."""

    def incoming_money(self, account, result, amount):
        """Discard."""

    def outgoing_money(self, account, result, amount):
        """Discard."""

    def rate_limited_packet(self, account):
        """Discard."""

    def rate_limited_money(self, account):
        """Discard."""

    def balance(self, account, value):
        """Discard."""


@implementer(IStats)
class CountingStats:
    """Counts into :attr:`counts` (``Counter`` keyed by tuples) and keeps :attr:`balances`."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.values: Counter = Counter()
        self.balances: dict[str, int] = {}

    def incoming_packet(self, account, result, code, amount):
        """Count (account, result, code) and add the value."""
        self.counts[("incoming", account.id, result, code)] += 1
        self.values[("incoming", account.id, result, code)] += amount

    def outgoing_packet(self, account, result, code, amount):
        """Count (account, result, code) and add the value."""
        self.counts[("outgoing", account.id, result, code)] += 1
        self.values[("outgoing", account.id, result, code)] += amount

    def incoming_money(self, account, result, amount):
        """Add the amount."""
        self.values[("incoming_money", account.id, result)] += amount

    def outgoing_money(self, account, result, amount):
        """Add the amount."""
        self.values[("outgoing_money", account.id, result)] += amount

    def rate_limited_packet(self, account):
        """Count."""
        self.counts[("rate_limited_packet", account.id)] += 1

    def rate_limited_money(self, account):
        """Count."""
        self.counts[("rate_limited_money", account.id)] += 1

    def balance(self, account, value):
        """Remember the latest balance."""
        self.balances[account.id] = value
