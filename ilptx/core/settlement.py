"""Settlement through an outbox: never lost, never counted twice.

When an account's ``balance + settling`` falls below its ``settleThreshold``, the connector
owes the peer too much and pays ``settleTo − (balance + settling)``:

1. the settlement is written to the store's outbox under a fresh id (this adds it to
   ``settling``, so the next packet does not trigger a second one); a packet that moves the
   balance while that write is under way makes the threshold be checked again once it is done
   (a burst of Fulfills, e.g. a windowed STREAM sender, settles all of its amount);
2. the account's plugin is asked to ``send_money(amount, idempotency_key=id)`` (through the
   outgoing money pipeline);
3. on success the store *completes* it atomically: ``balance += amount``, ``settling −=
   amount``, out of the outbox;
4. on failure it stays in the outbox and is retried with the **same id** after 1, 2, 5, 10,
   30, then every 60 s; after a restart :meth:`SettlementManager.resume` re-sends every
   settlement still in the outbox, again with its id.

The reference connector adds the amount to the balance before sending and never rolls it
back if the send fails; here the balance moves only once the money has moved.

Limit: a ledger plugin that cannot use the idempotency key (plain BTP) may pay twice if
the connector crashes after the peer accepted a Transfer but before step 3 was stored.
"""

from __future__ import annotations

import uuid
from typing import Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ilptx.core.balances import BalanceLimits, BalanceState

__all__ = ["SettlementManager", "RETRY_DELAYS"]

#: seconds between attempts of one settlement (the last one repeats)
RETRY_DELAYS = (1, 2, 5, 10, 30, 60)


class SettlementManager:
    """:param store: ``IStore``. :param clock: ``IReactorTime``.
    :param send: ``send(account, amount, idempotency_key) -> Deferred[None]`` (the outgoing
        money pipeline ending in the account's plugin).
    :param accounts: ``callable(account_id) -> Account | None`` to find an account again on
        :meth:`resume`.
    :param stats: ``IStats``.
    :param new_id: makes settlement ids (default: random UUID hex).
    """

    log = Logger()

    def __init__(self, store, clock, send: Callable, accounts: Callable, stats,
                 retry_delays=RETRY_DELAYS, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._store = store
        self._clock = clock
        self._send = send
        self._accounts = accounts
        self._stats = stats
        self._retry_delays = retry_delays
        self._new_id = new_id
        self._recording: set[str] = set()  # accounts whose outbox write is under way
        #: accounts whose balance moved while their outbox write was under way: (account, limits),
        #: checked again once the write is done (else the last Fulfills of a burst settle nothing)
        self._check_again: dict[str, tuple] = {}
        self._attempts: dict[str, int] = {}
        self._sending: set[str] = set()
        self._timers: dict = {}
        self._stopped = False

    def maybe_settle(self, account, state: BalanceState, limits: BalanceLimits) -> Optional[Deferred]:
        """Start a settlement if ``state`` is below the account's settle threshold.

        :returns: ``Deferred[None]`` once the settlement is in the outbox (the send goes on
            after that), or ``None`` when no settlement is needed.
        """
        if self._stopped or limits.settle_threshold is None:
            return None
        if account.id in self._recording:
            self._check_again[account.id] = (account, limits)
            return None
        effective = state.balance + state.settling
        if effective >= limits.settle_threshold:
            return None
        amount = limits.settle_to - effective
        if amount <= 0:
            return None
        settlement_id = self._new_id()
        self._recording.add(account.id)
        self.log.info("account {account}: balance {balance} below settleThreshold {threshold}; "
                      "settling {amount} (id {settlement_id})", account=account.id, balance=state.balance,
                      threshold=limits.settle_threshold, amount=amount, settlement_id=settlement_id)

        def recorded(_):
            self._recording.discard(account.id)
            self._attempt(settlement_id, account, amount)
            self._recheck(account.id)

        def not_recorded(failure):
            self._recording.discard(account.id)
            self.log.failure("account {account}: could not record settlement {settlement_id}", failure,
                             account=account.id, settlement_id=settlement_id)
            self._recheck(account.id)

        return self._store.add_settlement(settlement_id, account.id, amount).addCallbacks(recorded, not_recorded)

    def _recheck(self, account_id: str) -> None:
        """The balance moved while a settlement was being recorded: read it again and settle what
        is still below the threshold (with the newest limits seen)."""
        pending = self._check_again.pop(account_id, None)
        if pending is None or self._stopped:
            return
        account, limits = pending

        def failed(failure):
            self.log.failure("account {account}: could not read the balance to check the settle threshold again",
                             failure, account=account_id)

        self._store.get_balance(account_id).addCallback(
            lambda state: self.maybe_settle(account, state, limits)).addErrback(failed)

    def resume(self) -> Deferred:
        """Re-send every settlement still in the outbox (after a restart). :returns: ``Deferred[int]`` (how many)."""

        def send_all(pending):
            for settlement_id, account_id, amount in pending:
                account = self._accounts(account_id)
                if account is None:
                    self.log.warn("settlement {settlement_id} for unknown account {account} stays in the outbox",
                                  settlement_id=settlement_id, account=account_id)
                    continue
                self.log.info("account {account}: resuming settlement {settlement_id} of {amount}",
                              account=account_id, settlement_id=settlement_id, amount=amount)
                self._attempt(settlement_id, account, amount)
            return len(pending)

        return self._store.pending_settlements().addCallback(send_all)

    def stop(self) -> None:
        """Cancel retry timers; the outbox keeps what is not done for the next start."""
        self._stopped = True
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

    def _attempt(self, settlement_id: str, account, amount: int) -> None:
        if self._stopped or settlement_id in self._sending:
            return
        self._timers.pop(settlement_id, None)
        self._sending.add(settlement_id)
        d = maybeDeferred(self._send, account, amount, settlement_id)
        d.addCallbacks(self._sent, self._failed, callbackArgs=(settlement_id, account, amount),
                       errbackArgs=(settlement_id, account, amount))

    def _sent(self, _, settlement_id: str, account, amount: int) -> Deferred:
        self._attempts.pop(settlement_id, None)

        def completed(_):
            self._sending.discard(settlement_id)
            self.log.info("account {account}: settlement {settlement_id} of {amount} sent",
                          account=account.id, settlement_id=settlement_id, amount=amount)
            return self._store.get_balance(account.id).addCallback(
                lambda state: self._stats.balance(account, state.balance))

        def not_completed(failure):
            # The money moved but the store did not record it: keep it pending and retry the
            # completion (not the send) soon; complete_settlement is idempotent.
            self._sending.discard(settlement_id)
            self.log.failure("account {account}: settlement {settlement_id} sent but not recorded", failure,
                             account=account.id, settlement_id=settlement_id)
            self._timers[settlement_id] = self._clock.callLater(
                self._retry_delays[0], lambda: self._store.complete_settlement(settlement_id))

        return self._store.complete_settlement(settlement_id).addCallbacks(completed, not_completed)

    def _failed(self, failure, settlement_id: str, account, amount: int) -> None:
        self._sending.discard(settlement_id)
        attempt = self._attempts.get(settlement_id, 0)
        self._attempts[settlement_id] = attempt + 1
        delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
        self.log.warn("account {account}: settlement {settlement_id} of {amount} failed ({error}); "
                      "retrying in {delay} s", account=account.id, settlement_id=settlement_id, amount=amount,
                      error=failure.getErrorMessage(), delay=delay)
        if not self._stopped:
            self._timers[settlement_id] = self._clock.callLater(
                delay, self._attempt, settlement_id, account, amount)
