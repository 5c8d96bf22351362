"""``store: memory``: everything in this process, lost when it exits (the reference's default).

Every operation completes synchronously (the Deferreds it returns have already fired), so
the per-packet path pays no extra reactor turn. This is also the reference semantics that
the durable stores are tested against.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from ilptx.core.balances import BalanceState, apply_reserve_incoming, apply_reserve_outgoing, apply_settle
from ilptx.interfaces import IStore

__all__ = ["MemoryStore", "apply_reserve_incoming", "apply_reserve_outgoing", "apply_settle"]

_ZERO = BalanceState()


@implementer(IStore)
class MemoryStore:
    """In-process store. See :class:`ilptx.interfaces.IStore` for each method."""

    name = "memory"

    def __init__(self) -> None:
        self.balances: dict[str, BalanceState] = {}
        self.outbox: dict[str, tuple[str, int]] = {}
        self.data: dict[str, str] = {}

    def open(self) -> Deferred:
        return succeed(None)

    def close(self) -> Deferred:
        return succeed(None)

    def reserve_incoming(self, account_id: str, amount: int, maximum: Optional[int]) -> Deferred:
        new = apply_reserve_incoming(self.balances.get(account_id, _ZERO), amount, maximum)
        if new is None:
            return succeed(False)
        self.balances[account_id] = new
        return succeed(True)

    def settle_incoming(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        new = self.balances[account_id] = apply_settle(self.balances.get(account_id, _ZERO), amount, fulfilled, True)
        return succeed(new)

    def reserve_outgoing(self, account_id: str, amount: int, minimum: Optional[int]) -> Deferred:
        new = apply_reserve_outgoing(self.balances.get(account_id, _ZERO), amount, minimum)
        if new is None:
            return succeed(False)
        self.balances[account_id] = new
        return succeed(True)

    def settle_outgoing(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        new = self.balances[account_id] = apply_settle(self.balances.get(account_id, _ZERO), amount, fulfilled, False)
        return succeed(new)

    def adjust(self, account_id: str, amount_diff: int) -> Deferred:
        state = self.balances.get(account_id, _ZERO)
        new = self.balances[account_id] = replace(state, balance=state.balance + amount_diff)
        return succeed(new)

    def add_settlement(self, settlement_id: str, account_id: str, amount: int) -> Deferred:
        if settlement_id not in self.outbox:
            self.outbox[settlement_id] = (account_id, amount)
            state = self.balances.get(account_id, _ZERO)
            self.balances[account_id] = replace(state, settling=state.settling + amount)
        return succeed(None)

    def complete_settlement(self, settlement_id: str) -> Deferred:
        entry = self.outbox.pop(settlement_id, None)
        if entry is None:
            return succeed(False)
        account_id, amount = entry
        state = self.balances.get(account_id, _ZERO)
        self.balances[account_id] = replace(state, balance=state.balance + amount,
                                            settling=max(0, state.settling - amount))
        return succeed(True)

    def pending_settlements(self) -> Deferred:
        return succeed([(sid, acct, amount) for sid, (acct, amount) in self.outbox.items()])

    def get_balance(self, account_id: str) -> Deferred:
        return succeed(self.balances.get(account_id, _ZERO))

    def all_balances(self) -> Deferred:
        return succeed(dict(self.balances))

    def recover(self) -> Deferred:
        changed = {}
        for account_id, state in self.balances.items():
            if state.incoming_reserved or state.outgoing_reserved:
                changed[account_id] = self.balances[account_id] = replace(
                    state, incoming_reserved=0, outgoing_reserved=0,
                    balance=state.balance - state.outgoing_reserved)
        return succeed(changed)

    def get(self, key: str) -> Deferred:
        return succeed(self.data.get(key))

    def put(self, key: str, value: str) -> Deferred:
        self.data[key] = value
        return succeed(None)

    def delete(self, key: str) -> Deferred:
        self.data.pop(key, None)
        return succeed(None)

    def keys(self, prefix: str) -> Deferred:
        return succeed(sorted(k for k in self.data if k.startswith(prefix)))
