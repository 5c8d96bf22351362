"""``balance``: incoming and outgoing. Keeps each account's balance straight (issue #3).

Balances are from the connector's point of view (positive: the peer owes us), in base
units, kept in the store (:class:`ilptx.interfaces.IStore`), with
``balance: {minimum, maximum, settleThreshold, settleTo}``.

* **Incoming Prepare** of ``x`` from the account: reserved first; ``T04 Insufficient
  Liquidity`` (``exceeded maximum balance.``, the reference's text, which peers' alert
  middlewares look for) when ``balance + incoming reserved + x`` would pass ``maximum``.
  A Fulfill commits (``balance += x``) and is passed back only once the commit is durable;
  a Reject or an error releases.
* **Outgoing Prepare** of ``y`` to the account: unlike the reference, which subtracts only
  after the next hop fulfilled (and so may forward money it cannot afford), the minimum is
  checked *before* forwarding: ``T04`` (``insufficient funds.``) when ``balance − outgoing
  reserved − y`` would fall under ``minimum``. A Fulfill commits (``balance −= y``), a
  Reject, an error or a timeout releases.
* After a commit, if ``balance + settling`` is below ``settleThreshold``, the settlement
  manager sends ``settleTo − (balance + settling)`` through the outbox.
* **Money received** (the peer settles with us): ``balance −= amount``, as in the reference.
  Only money a ledger plugin has *verified* gets here (plain BTP refuses every Transfer:
  :meth:`ilptx.plugins.btp.BtpPlugin.verify_transfer`). A verified settlement that takes the
  balance below ``minimum`` (the peer paid more than we agreed to owe it) is still recorded —
  the money was received, and dropping it would make our books disagree with the ledger and
  rob the peer of its prepayment — but it is logged at error level with the account, the
  amount, the new balance and the minimum, for the operator to look into (refund or raise the
  limit). Until the balance is back above ``minimum``, outgoing Prepares to the account get
  T04, and incoming ones may use the prepayment (up to ``maximum − balance``).

Zero-amount Prepares pass straight through, as in the reference.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ilptx.codec.ilp import Fulfill
from ilptx.core.balances import BalanceLimits
from ilptx.core.middleware import Middleware
from ilptx.errors import InsufficientLiquidityError
from ilptx.interfaces import IMiddleware

__all__ = ["BalanceMiddleware", "create", "NAME"]

NAME = "balance"

log = Logger()


@implementer(IMiddleware)
class BalanceMiddleware(Middleware):
    """:param limits: the account's :class:`BalanceLimits`. :param services: middleware services."""

    name = NAME

    def __init__(self, limits: BalanceLimits, services) -> None:
        self.limits = limits
        self._store = services.store
        self._stats = services.stats
        self._settlement = services.settlement

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """Reserve, forward, then commit on Fulfill (durably, before answering) or release."""
        store = self._store
        return self._hold(account, prepare, next_handler,
                          store.reserve_incoming(account.id, prepare.amount, self.limits.maximum)
                          if prepare.amount else None,
                          store.settle_incoming, _maximum_exceeded)

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Check the minimum and reserve (durably) before forwarding; commit on Fulfill or release."""
        store = self._store
        return self._hold(account, prepare, next_handler,
                          store.reserve_outgoing(account.id, prepare.amount, self.limits.minimum)
                          if prepare.amount else None,
                          store.settle_outgoing, _insufficient_funds)

    def _hold(self, account, prepare, next_handler, reserving, settle, refusal) -> Deferred:
        """Run ``next_handler`` under a reservation: T04 ``refusal(account, amount)`` if it was refused; after
        the answer, commit (Fulfill) or release (anything else) through ``settle``, and pass
        the answer on only when that is done. Zero amounts pass straight through."""
        if reserving is None:
            return next_handler(account, prepare)
        amount = prepare.amount

        def reserved(ok: bool):
            if not ok:
                raise InsufficientLiquidityError(refusal(account, amount))
            return next_handler(account, prepare).addBoth(answered)

        def answered(result):
            fulfilled = type(result) is Fulfill
            d = settle(account.id, amount, fulfilled)
            if fulfilled:
                d.addCallback(self._committed, account)
            return d.addCallback(lambda _: result)

        return reserving.addCallback(reserved)

    def incoming_money(self, account, amount, next_handler) -> Deferred:
        """The peer settled ``amount`` (verified by its plugin) with us: it owes us that much less.

        :returns: ``Deferred`` firing once the change is durable; errbacks with the store's error.
        """
        return self._store.adjust(account.id, -amount).addCallback(
            self._received, account, amount).addCallback(lambda _: next_handler(account, amount))

    def _received(self, state, account, amount: int) -> None:
        minimum = self.limits.minimum
        if minimum is not None and state.balance < minimum:
            log.error("account {account}: a verified settlement of {amount} took the balance to {balance}, "
                      "below balance.minimum {minimum}: recorded (the money was received); we now owe the "
                      "peer more than allowed", account=account.id, amount=amount, balance=state.balance,
                      minimum=minimum)
        return self._committed(state, account)

    def _committed(self, state, account) -> None:
        self._stats.balance(account, state.balance)
        if self._settlement is not None:
            self._settlement.maybe_settle(account, state, self.limits)
        return None


def _maximum_exceeded(account, amount) -> str:
    # the reference's exact text: peers' alert middlewares match on it
    return "exceeded maximum balance."


def _insufficient_funds(account, amount) -> str:
    return f"insufficient funds. account={account.id} amount={amount}"


def create(options, *, account, services):
    """Only for accounts with ``balance`` (the reference warns that others spend unlimited funds)."""
    limits = BalanceLimits.from_config(account.settings.get("balance"))
    if limits is None:
        return None
    return BalanceMiddleware(limits, services)
