"""The engine-shaped core of every settling plugin: one :class:`SettlementAccount` per account.

It does what RFC 38 asks of a settlement engine (interledger/rfcs ``0038-settlement-engines.md``:
settle with an idempotency key, retry with the same key, never refund a failed settlement to the
payable balance, keep the leftover of scale conversion) for a ledger *module*
(:class:`~ilptx.settlement.interfaces.ISettlementModule`), with everything kept in the
connector's store through :mod:`ilptx.settlement` (``TransferLog``, ``MaxValueTracker``).

State of one account (``P`` = ``'<module name>:<account id>'``; all logs and trackers in the
settlement state of the store):

======================================  =====================================================
``P:payouts`` transfer log              outgoing, **account units**, id = the idempotency key:
                                        prepared = queued (owed), fulfilled = confirmed
``P:outgoing-claim`` tracker            claim-based: the best claim we signed (cumulative
                                        total in ledger units, the claim text)
``P:payments`` transfer log             payment-based: outgoing on-ledger payments, ledger
                                        units, id ``<paid before>-<paid after>``: prepared =
                                        intended, fulfilled = final (data: the tx proof)
``P:credits`` transfer log              incoming, **ledger units**, id ``claim:<total>`` or
                                        ``payment:<id>``: prepared = recorded, fulfilled =
                                        handed to the money handler
``P:incoming-claim`` tracker            claim-based: the best incoming claim (total, record)
======================================  =====================================================

Paying (``send_money(amount, idempotency_key)``, what the connector's settlement outbox calls):

1. **queue**: ``payouts.prepare(key, amount)`` -- the same key and amount again is a no-op, an
   already confirmed key returns at once (never paid twice), another amount for the key is a
   :class:`~ilptx.settlement.model.DuplicateTransferError`;
2. **flush** (one at a time per account): read the queued payouts, *then* the sums (so every
   payout read is inside the total), and make the ledger owe the peer
   ``target = convert(outgoing fulfilled + prepared)`` ledger units in all: claim-based, sign a
   claim for ``target`` (``module.create_claim``), record it as the best outgoing claim, send it
   (``module.send_claim``); payment-based, record the intent ``<paid>-<target>`` and
   ``module.pay(target − paid, id)``, then record it final;
3. **confirm**: fulfill every payout read in step 2 (the Deferred of each ``send_money`` fires).
   A failure leaves them queued: the caller's Deferred errbacks (the connector retries with the
   same key) and the account retries by itself after 1, 2, 5, 10, 30, then every 60 s and each
   time the peer reconnects. A payout is never cancelled ("refunded").

Because a claim is cumulative and the target is computed from the whole log, conversion to a
coarser ledger unit floors the *total*: what is below one ledger unit stays in the log and is
paid with the next settlement (the leftover is kept, not dropped).

kill -9 at each step (what the store holds, what the restart does):

* before 1 is stored: nothing recorded; the connector's outbox still holds the settlement and
  re-sends it with its key.
* after 1, before a claim is signed or recorded: the payout is queued; the restart flushes it:
  a claim for the same total is signed again (signing twice moves nothing).
* after the claim is signed, before it is recorded: the claim was never sent (it is sent only
  once recorded); as above.
* after it is recorded, before the peer acknowledged it (or after, before step 3): the restart
  sends the recorded claim again; the peer credits only what exceeds its best claim, i.e.
  nothing the second time, and acknowledges; the payouts are confirmed.
* after 3, before the connector recorded the settlement as done: the outbox re-sends the key,
  step 1 finds it confirmed and returns: not paid twice.
* payment-based, between the recorded intent and the ledger's answer: the restart calls
  ``module.pay`` with the same id and amount, which must find the earlier payment (see
  :meth:`~ilptx.settlement.interfaces.ISettlementModule.pay`).

Being paid (``credit_claim(total, record)`` / ``credit_payment(id, amount, record)``, called by
the module once it has verified the claim or payment), one credit at a time per account:

1. **check**: the credits log's incoming fulfilled + prepared sum is the best total credited; a
   claim not above it (a replay, a lower total) credits nothing (a warning names both totals);
   a payment id already in the log credits nothing;
2. **record**: ``credits.prepare(id, increase, data=record)`` -- durable before any money moves;
3. **credit**: the money handler gets ``convert(best after) − convert(best before)`` account
   units (the wei below one gwei carried in the total, never dropped);
4. **confirm**: ``credits.fulfill(id)``.

kill -9 between receiving a claim and step 2: nothing recorded; the peer has no answer, sends the
claim (or a higher one) again, and it is credited once. Between 2 and 4: the credit is recorded
and counts in the best total, so a replay or the next claim credits only what is new: never
twice. The money handler is the connector's balance write, a separate store operation, so a
crash inside that one window leaves the credit recorded but perhaps not applied; the restart
then does not apply it again (at most once) but logs it as an error and lists it in the admin
info (``unconfirmedCredits``) for the operator. A money handler that *fails* (the store said
no) is retried in the process on the retry schedule.

Tests: each point above is exercised with a simulated restart in
``tests/unit/settlement/test_settling_plugin.py`` and with a real SIGKILL of a child process on
SQLite in ``tests/integration/test_settling_crash.py``.

One process serves one account's BTP link, so credits are serialised per account in the process
(a :class:`~twisted.internet.defer.DeferredLock`); the payouts log and the trackers are atomic
in the store on every backend.
"""

from __future__ import annotations

import uuid
from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredLock, fail, inlineCallbacks, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.btp import CONTENT_OCTET_STREAM, ProtocolDataEntry
from ilptx.errors import PeerUnreachableError
from ilptx.settlement.interfaces import ISettlementContext
from ilptx.settlement.model import FULFILLED, Transfer, check_amount, convert_scale
from ilptx.settlement.tracking import MaxValueTracker, TransferLog
from ilptx.transport.btp_session import NotAcceptedError

__all__ = ["SettlementAccount", "ClaimRejectedError", "CLAIM", "PAYMENT", "RETRY_DELAYS"]

#: :attr:`ISettlementModule.kind` of a module with cumulative signed claims (a payment channel).
CLAIM = "claim"
#: :attr:`ISettlementModule.kind` of a module paying with one on-ledger payment per settlement.
PAYMENT = "payment"
#: seconds between the account's own attempts to pay what is queued (the last one repeats)
RETRY_DELAYS = (1, 2, 5, 10, 30, 60)


class ClaimRejectedError(NotAcceptedError):
    """A module's verdict on an incoming claim or payment proof: not valid (forged signature,
    unknown channel, above the deposit, another account's channel ...). Raised by a
    sub-protocol handler; the framework logs it as a warning with the reason, credits nothing
    and answers the peer with BTP Error ``F00 NotAcceptedError`` ``{"message": reason}``."""


@implementer(ISettlementContext)
class SettlementAccount:
    """The settlement engine of one account, and the :class:`ISettlementContext` of its module.

    :param module: the :class:`~ilptx.settlement.interfaces.ISettlementModule`.
    :param account_id: ``str``.
    :param state: the :class:`~ilptx.settlement.interfaces.ISettlementState` (opened).
    :param store: the connector's ``IStore``.
    :param clock: ``IReactorTime``.
    :param log: the account's ``Logger``.
    :param call_peer: ``callable(tuple[ProtocolDataEntry, ...]) -> Deferred[tuple[...]]``:
        send one BTP MESSAGE to the peer, the Response's entries back.
    :param money_handler: ``callable() -> callable(int) | None``: the registered money handler
        (read at each credit).
    :param retry_delays: seconds, see :data:`RETRY_DELAYS`.
    """

    def __init__(self, module, *, account_id: str, state, store, clock, log: Logger, call_peer: Callable,
                 money_handler: Callable, retry_delays=RETRY_DELAYS) -> None:
        if module.kind not in (CLAIM, PAYMENT):
            raise ValueError(f"settlement module {module.name!r}: kind must be {CLAIM!r} or {PAYMENT!r}")
        self.module = module
        self.account_id = account_id
        self.key_prefix = f"{module.name}:{account_id}"
        self.state, self.store, self.clock, self.log = state, store, clock, log
        self._call_peer = call_peer
        self._money_handler = money_handler
        self._retry_delays = retry_delays
        self.payouts = TransferLog(state, self.key("payouts"))
        self.payments = TransferLog(state, self.key("payments"))
        self.credits = TransferLog(state, self.key("credits"))
        self.outgoing_claim = MaxValueTracker(state, self.key("outgoing-claim"))
        self.incoming_claim = MaxValueTracker(state, self.key("incoming-claim"))
        self._sub_protocols: dict[str, Callable] = {}
        self._waiters: dict[str, list[Deferred]] = {}
        self._flushing: Optional[Deferred] = None
        self._again = False
        self._attempt = 0
        self._retry_timer = None
        self._credit_lock = DeferredLock()
        self._stopped = False

    # -- ISettlementContext -----------------------------------------------------------------------

    def key(self, suffix: str) -> str:
        return f"{self.key_prefix}:{suffix}"

    def register_sub_protocol(self, name: str, handler: Callable, *, whole_message: bool = False) -> None:
        """As :meth:`ISettlementContext.register_sub_protocol`; ``whole_message=True``: the handler
        is called with the whole BTP ``Message`` (all its entries), not the one entry, for
        sub-protocols whose entries travel together (``channel`` + ``channel_signature`` of
        ``ilp-plugin-xrp-asym-server`` 1.8.1)."""
        if name == "ilp":
            raise ValueError("the 'ilp' sub-protocol goes to the data handler")
        if name in self._sub_protocols:
            raise ValueError(f"sub-protocol {name!r} is already registered")
        self._sub_protocols[name] = (handler, whole_message)

    def call_peer(self, name: str, data: bytes, content_type: int = CONTENT_OCTET_STREAM) -> Deferred:
        return self._call_peer((ProtocolDataEntry(name, content_type, bytes(data)),))

    def best_incoming_claim(self) -> Deferred:
        return self.incoming_claim.get_max()

    def best_outgoing_claim(self) -> Deferred:
        return self.outgoing_claim.get_max()

    def to_account_units(self, amount_ledger: int) -> int:
        """:returns: ``amount_ledger`` (``int``, ledger units) in account units, floored."""
        return convert_scale(amount_ledger, self.module.ledger_scale, self.module.asset_scale)[0]

    def to_ledger_units(self, amount: int) -> int:
        """:returns: ``amount`` (``int``, account units) in ledger units, floored."""
        return convert_scale(amount, self.module.asset_scale, self.module.ledger_scale)[0]

    # -- sub-protocols ----------------------------------------------------------------------------

    def handle_message(self, message) -> Optional[Deferred]:
        """Answer a BTP MESSAGE whose first registered sub-protocol entry has a handler.

        :returns: ``None`` when no entry has one (the message goes to the data handler), else
            ``Deferred[tuple[ProtocolDataEntry, ...]]`` (the Response's entries); errbacks with
            the handler's error (:class:`ClaimRejectedError`: logged here with the reason).
        """
        for entry in message.protocol_data:
            registered = self._sub_protocols.get(entry.protocol_name)
            if registered is not None:
                handler, whole_message = registered
                return maybeDeferred(handler, message if whole_message else entry).addCallbacks(
                    lambda entries: tuple(entries or ()), self._handler_failed, errbackArgs=(entry.protocol_name,))
        return None

    def _handler_failed(self, failure: Failure, name: str) -> Failure:
        if failure.check(ClaimRejectedError):
            self.log.warn("account {account}: {name} from the peer rejected: {why}; nothing credited",
                          account=self.account_id, name=name, why=str(failure.value))
        return failure

    # -- paying -----------------------------------------------------------------------------------

    def send_money(self, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Queue a payout of ``amount`` (``int`` > 0, account units) under ``idempotency_key``
        (``str``; a random one if ``None``) and pay it (see the module docstring).

        :returns: ``Deferred[None]`` once the payout is confirmed (at once if this key was
            confirmed before). Errbacks with the failure of the attempt (the payout stays
            queued and is retried), :class:`~ilptx.errors.PeerUnreachableError` (T01) after
            :meth:`stop` (queued for the next start), :class:`~ilptx.settlement.model.DuplicateTransferError`
            (the key was queued with another amount), ``ValueError``/``TypeError`` (amount).
        """
        try:
            check_amount("amount", amount)
            if amount == 0:
                raise ValueError("amount must be > 0")
        except (TypeError, ValueError) as exc:
            return fail(exc)
        key = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
        return self.payouts.prepare(key, amount, False).addCallback(
            lambda _: self.payouts.get(key)).addCallback(self._queued)

    def _queued(self, payout: Transfer) -> Optional[Deferred]:
        if payout.state == FULFILLED:
            self.log.info("account {account}: payout {key} of {amount} was already confirmed; not paid again",
                          account=self.account_id, key=payout.id, amount=payout.amount)
            return None
        if self._stopped:
            raise PeerUnreachableError(f"account {self.account_id}: settlement is stopped; payout {payout.id} "
                                       "stays queued for the next start")
        waiter: Deferred = Deferred()
        self._waiters.setdefault(payout.id, []).append(waiter)
        self.flush()
        return waiter

    def settle_now(self) -> Optional[Deferred]:
        """The peer answered one of our Prepares with ``T04`` (it will not extend us more credit):
        settle what we can at once instead of waiting for the retry schedule, as
        ``ilp-plugin-lightning`` 1.0.0-beta.25 / ``ilp-plugin-ethereum`` 3.0.0-beta.20 do "to
        resolve stalemates": flush the queued payouts (:meth:`flush`), and for a claim module
        send our best outgoing claim again (a claim the peer lost, e.g. over a reconnect; the
        same bytes, so it cannot pay twice). Errors are logged at info (the next T04 or retry
        tries again). :returns: ``None``."""
        if self._stopped:
            return None
        self.flush()
        if self.module.kind != CLAIM:
            return None

        def resend(best):
            if best.data is None:
                return None
            return maybeDeferred(self.module.send_claim, best.data)

        def failed(failure):
            self.log.info("account {account}: sending the last claim again failed: {error}",
                          account=self.account_id, error=failure.getErrorMessage())

        self.outgoing_claim.get_max().addCallback(resend).addErrback(failed)
        return None

    def flush(self) -> None:
        """Pay every queued payout now (one flush at a time; one more after it if called meanwhile)."""
        if self._stopped:
            return
        if self._flushing is not None:
            self._again = True
            return
        self._again = False
        if self._retry_timer is not None and self._retry_timer.active():
            self._retry_timer.cancel()
        self._retry_timer = None
        self._flushing = maybeDeferred(self._flush_once)
        self._flushing.addBoth(self._flushed)

    def _flushed(self, result) -> None:
        self._flushing = None
        if isinstance(result, Failure):
            delay = self._retry_delays[min(self._attempt, len(self._retry_delays) - 1)]
            self._attempt += 1
            self.log.warn("account {account}: paying the queued payouts failed ({error}); they stay queued, "
                          "retrying in {delay} s", account=self.account_id, error=result.getErrorMessage(),
                          delay=delay)
            waiters, self._waiters = self._waiters, {}
            for key_waiters in waiters.values():
                for waiter in key_waiters:
                    waiter.errback(result)
            if not self._stopped:
                self._retry_timer = self.clock.callLater(delay, self.flush)
            return
        self._attempt = 0
        for key in result:
            for waiter in self._waiters.pop(key, ()):
                waiter.callback(None)
        if self._again or self._waiters:
            self.flush()

    @inlineCallbacks
    def _flush_once(self):
        queued = yield self.payouts.prepared()  # read before the sums: every payout read is in the total
        if not queued:
            return []
        sums = yield self.payouts.get_sums()
        target = self.to_ledger_units(sums.outgoing_fulfilled_and_prepared)
        if self.module.kind == CLAIM:
            proof = yield self._pay_by_claim(target)
        else:
            proof = yield self._pay_on_ledger(target)
        for payout in queued:
            yield self.payouts.fulfill(payout.id, proof)
        self.log.info("account {account}: {count} payout(s) of {amount} confirmed ({proof}; {target} ledger units "
                      "paid in all)", account=self.account_id, count=len(queued),
                      amount=sum(p.amount for p in queued), proof=proof, target=target)
        return [payout.id for payout in queued]

    @inlineCallbacks
    def _pay_by_claim(self, target: int):
        if target == 0:  # below one ledger unit so far: carried in the total
            return "claim:0"
        best = yield self.outgoing_claim.get_max()
        if best.value < target:
            claim = yield maybeDeferred(self.module.create_claim, target)
            if not isinstance(claim, str):
                raise TypeError(f"create_claim returned {type(claim).__name__}, not str")
            yield self.outgoing_claim.set_if_max(target, claim)  # recorded before it is sent
            best = yield self.outgoing_claim.get_max()
        yield maybeDeferred(self.module.send_claim, best.data)
        return f"claim:{best.value}"

    @inlineCallbacks
    def _pay_on_ledger(self, target: int):
        for intended in (yield self.payments.prepared()):  # an intent from before a restart: same id
            yield self._pay(intended.id, intended.amount)
        paid = (yield self.payments.get_sums()).outgoing_fulfilled_and_prepared
        if target > paid:
            payment_id = f"{paid}-{target}"
            yield self.payments.prepare(payment_id, target - paid, False)  # the intent, before paying
            yield self._pay(payment_id, target - paid)
        return f"payment:{target}"

    @inlineCallbacks
    def _pay(self, payment_id: str, amount: int):
        proof = yield maybeDeferred(self.module.pay, amount, self.key(payment_id))
        if not isinstance(proof, str):
            raise TypeError(f"pay returned {type(proof).__name__}, not str")
        yield self.payments.fulfill(payment_id, proof)

    # -- being paid -------------------------------------------------------------------------------

    def credit_claim(self, total: int, record: str) -> Deferred:
        try:
            check_amount("total", total)
        except (TypeError, ValueError) as exc:
            return fail(exc)
        return self._credit_lock.run(self._credit_claim, total, record)

    def credit_payment(self, payment_id: str, amount: int, record: str) -> Deferred:
        try:
            check_amount("amount", amount)
        except (TypeError, ValueError) as exc:
            return fail(exc)
        return self._credit_lock.run(self._credit_payment, payment_id, amount, record)

    @inlineCallbacks
    def _credit_claim(self, total: int, record: str):
        before = (yield self.credits.get_sums()).incoming_fulfilled_and_prepared
        if total <= before:
            self.log.warn("account {account}: incoming claim of total {total} is {what} the best claim {best}; "
                          "nothing credited", account=self.account_id, total=total, best=before,
                          what="the same as" if total == before else "below")
            return 0
        credited = yield self._record_and_credit(f"claim:{total}", total - before, record, before)
        yield self.incoming_claim.set_if_max(total, record)
        return credited

    @inlineCallbacks
    def _credit_payment(self, payment_id: str, amount: int, record: str):
        credit_id = f"payment:{payment_id}"
        try:
            yield self.credits.get(credit_id)
        except KeyError:
            before = (yield self.credits.get_sums()).incoming_fulfilled_and_prepared
            return (yield self._record_and_credit(credit_id, amount, record, before))
        self.log.warn("account {account}: payment {payment_id} was credited before; nothing credited",
                      account=self.account_id, payment_id=payment_id)
        return 0

    @inlineCallbacks
    def _record_and_credit(self, credit_id: str, amount_ledger: int, record: str, before: int):
        yield self.credits.prepare(credit_id, amount_ledger, True, record)  # durable before any money moves
        units = self.to_account_units(before + amount_ledger) - self.to_account_units(before)
        self.log.info("account {account}: credit {credit_id} of {amount_ledger} ledger units recorded: "
                      "{units} to the balance", account=self.account_id, credit_id=credit_id,
                      amount_ledger=amount_ledger, units=units)
        yield self._deliver(credit_id, units, 0)
        return units

    def _deliver(self, credit_id: str, units: int, attempt: int) -> Deferred:
        handler = self._money_handler()
        d = maybeDeferred(handler, units) if units > 0 and handler is not None else succeed(None)
        if units > 0 and handler is None:
            d = fail(RuntimeError("no money handler registered"))

        def failed(failure: Failure) -> None:
            delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
            self.log.error("account {account}: credit {credit_id} of {units} is recorded but the money handler "
                           "failed ({error}); retrying in {delay} s", account=self.account_id, credit_id=credit_id,
                           units=units, error=failure.getErrorMessage(), delay=delay)
            if not self._stopped:
                self.clock.callLater(delay, self._deliver, credit_id, units, attempt + 1)

        return d.addCallback(lambda _: self.credits.fulfill(credit_id)).addCallbacks(lambda _: None, failed)

    # -- life -------------------------------------------------------------------------------------

    @inlineCallbacks
    def open(self):
        """Start: report credits recorded before a restart but never confirmed as applied
        (not applied again: at most once); the module registers its sub-protocols afresh
        after it. :returns: ``Deferred[None]``."""
        self._stopped = False
        self._sub_protocols.clear()
        for credit in (yield self.credits.prepared()):
            self.log.error("account {account}: credit {credit_id} of {amount} ledger units was recorded before a "
                           "restart but not confirmed as applied to the balance; not applied again (check the "
                           "account's balance)", account=self.account_id, credit_id=credit.id, amount=credit.amount)

    def stop(self) -> None:
        """Stop retrying (what is queued stays in the store for the next start)."""
        self._stopped = True
        if self._retry_timer is not None and self._retry_timer.active():
            self._retry_timer.cancel()
        self._retry_timer = None

    @inlineCallbacks
    def admin_info(self):
        """:returns: ``Deferred[dict]``: ``{"queuedPayouts": [{"key", "amount"}], "paid"`` (account
        units confirmed), ``"bestOutgoingClaim"``, ``"bestIncomingClaim"`` (ledger units),
        ``"credited"`` (ledger units recorded), ``"unconfirmedCredits"`` (ids)``}``; amounts as
        decimal strings."""
        payouts = yield self.payouts.get_sums()
        queued = yield self.payouts.prepared()
        credits = yield self.credits.get_sums()
        unconfirmed = yield self.credits.prepared()
        outgoing = yield self.outgoing_claim.get_max()
        incoming = yield self.incoming_claim.get_max()
        return {
            "queuedPayouts": [{"key": p.id, "amount": str(p.amount)} for p in queued],
            "paid": str(payouts.outgoing_fulfilled),
            "bestOutgoingClaim": str(outgoing.value),
            "bestIncomingClaim": str(incoming.value),
            "credited": str(credits.incoming_fulfilled_and_prepared),
            "unconfirmedCredits": [c.id for c in unconfirmed if c.state != FULFILLED],
        }
