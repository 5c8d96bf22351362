"""The ``lightning`` settlement module (:class:`LightningModule`), client/peer role: one account,
one BTP peer, the sub-protocols of ``ilp-plugin-lightning`` 1.0.0-beta.25 (``src/account.ts``)
plus the exact-amount extension (:mod:`ilptx_lightning.protocol`).

Payment-based (:data:`~ilptx.settlement.PAYMENT`) on :mod:`ilptx.settlement`: the framework keeps
the payout queue, its retries and the idempotent credits; this module pays and finds invoices.
ILP amounts are **satoshis** (as the JS plugin's), ledger units **msat**.

* **Peering**: when the peer connects we send ``peeringRequest`` (our node id) and it sends its
  own; the peer's node id is linked to the account for life (another one is refused).
* **The pool**: then ``invoicePoolSize`` amountless invoices of ours go to the peer
  (``paymentRequest``); each is replaced once paid or ``invoiceExpiry − 300`` s after it was
  made. Amountless invoices from the peer are checked (payee = the peer's node, amountless,
  more than 60 s left) and kept; others are refused (BTP Error F00, a warning with the reason).
* **Paying** (:meth:`LightningModule.pay`, ``amount`` msat, ``payment_id`` the framework's):
  a backend that pays amountless invoices pays the oldest pool invoice with more than 60 s left;
  otherwise (Electrum) we ask the peer for an invoice of exactly ``amount`` (``invoiceRequest``).
  Either way the invoice is checked (:func:`ilptx_lightning.bolt11.check_invoice`: the peer's
  node, the exact amount owed or amountless, not expiring), then **recorded** under the payout
  (``payment:<payment_id>``) and its payment hash marked used, **before** it is paid. After a
  crash the same payout finds the recorded invoice and asks the node about its payment hash:
  paid (the preimage), in flight (wait), failed or expired unpaid (a new invoice), else pay it
  again -- the node refuses a second payment of one hash, so the hash is the idempotency key.
  A preimage that does not hash to the payment hash is an error (nothing confirmed).
* **Telling the payee** (extension): after paying, the payer sends ``paymentPreimage``; the payee
  then asks its node about that invoice at once instead of at its next poll.
* **Being paid**: every invoice we issued and that is not settled yet is kept in the store
  (``issued``) and polled every ``invoicePollInterval`` ms; a paid one is credited with what
  the node received (``ctx.credit_payment(payment_hash, amount_msat, bolt11)``, once per hash),
  then dropped. The store is the settlement cursor: a payment made while the connector was down
  is credited at the first poll after the restart (unlike interledger-rs' Lightning engine,
  settlement-lightning#35).

The JS plugin also keeps a payable balance of its own and settles it to zero after each Fulfill
and on T04; here the connector's balance is the only one (``settleThreshold: "-1"``,
``settleTo: "0"`` call ``send_money`` after each Fulfill) and the framework retries a queued payout,
at once on a T04 from the peer (``SettlementAccount.settle_now``).

Store keys (``ctx.key``, ``lightning:<account>:…``): ``peer-node-id``; ``issued`` (JSON ``{hash:
{"bolt11", "amountMsat", "expiresAt", "pool", "replaced"}}``); ``payment:<payment_id>`` (JSON
``{"bolt11", "paymentHash", "amountMsat", "amountless"}``); ``invoice-used:<hash>`` (the
payment id that owns the invoice).
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from twisted.internet.defer import DeferredLock, inlineCallbacks, succeed
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from ilptx.settlement import PAYMENT, SCALE_MSAT, SCALE_SAT, ClaimRejectedError, ISettlementModule

from ilptx_lightning import protocol
from ilptx_lightning.backend import EXPIRED, FAILED, INFLIGHT, PAID, BackendError
from ilptx_lightning.bolt11 import MIN_TIME_LEFT_S, InvalidInvoiceError, check_invoice, decode
from ilptx_lightning.options import REPLACE_BEFORE_EXPIRY_S, parse_options

__all__ = ["LightningModule", "InvoiceRefusedError", "MEMO"]

MEMO = "ilptx-lightning"


class InvoiceRefusedError(InvalidInvoiceError):
    """An invoice from the peer we will not pay (the message says why); the payout stays queued."""


@implementer(ISettlementModule)
class LightningModule:
    """:class:`~ilptx.settlement.ISettlementModule` paying BOLT11 invoices.

    :param options: the account's options (:mod:`ilptx_lightning.options`).
    :param account_id: ``str``. :param services: the ``PluginServices`` (reactor, store, log).
    :param backend: an :class:`~ilptx_lightning.backend.ILightningBackend` (default: an
        :class:`~ilptx_lightning.electrum.ElectrumBackend` on ``electrumUrl``, or an
        :class:`~ilptx_lightning.lnd.LndBackend` on ``lnd``).
    :raises ConfigError: invalid options.
    """

    name = "lightning"
    kind = PAYMENT
    ledger_scale = SCALE_MSAT
    asset_scale = SCALE_SAT

    def __init__(self, options: dict, *, account_id: str, services, backend=None) -> None:
        self.options = parse_options(options, account_id, need_electrum=backend is None)
        self.account_id = account_id
        self._reactor = services.reactor
        if backend is None and self.options.lnd is not None:
            from ilptx_lightning.lnd import LndBackend, pinned_treq

            url, macaroon, cert = self.options.lnd
            backend = LndBackend(url, macaroon, http=pinned_treq(self._reactor, cert))
        elif backend is None:
            from ilptx_lightning.electrum import ElectrumBackend

            backend = ElectrumBackend(*self.options.electrum, reactor=self._reactor)
        self.backend = backend
        self.ctx = None
        self.node_id: Optional[str] = None
        self.peer_node_id: Optional[str] = None
        #: amountless invoices from the peer (DecodedInvoice), oldest first (JS ``incomingInvoices``)
        self.pool: list = []
        self._issued_lock = DeferredLock()
        self._pool_lock = DeferredLock()
        self._poller: Optional[LoopingCall] = None
        self._peer_up = False
        self._checking: set = set()

    # -- lifecycle --------------------------------------------------------------------------------

    @inlineCallbacks
    def connect(self, ctx):
        """Register the sub-protocols, start the backend, learn our node id, load the linked peer
        node id and start polling our issued invoices. :raises BackendError: the node does not answer."""
        self.ctx = ctx
        for name, handler in ((protocol.PEERING_REQUEST, self._on_peering_request),
                              (protocol.PAYMENT_REQUEST, self._on_payment_request),
                              (protocol.INVOICE_REQUEST, self._on_invoice_request),
                              (protocol.PAYMENT_PREIMAGE, self._on_payment_preimage)):
            ctx.register_sub_protocol(name, handler)
        self.backend.start()
        try:
            self.node_id = yield self.backend.node_id()
        except Exception:
            self.backend.stop()
            raise
        self.peer_node_id = yield ctx.store.get(ctx.key("peer-node-id"))
        self._poller = LoopingCall(self._poll)
        self._poller.clock = ctx.clock
        self._poller.start(self.options.poll_ms / 1000.0, now=True).addErrback(
            lambda f: ctx.log.failure("account {account}: invoice poller stopped", f, account=self.account_id))
        ctx.log.info("account {account}: lightning settlement as node {node}", account=self.account_id,
                     node=self.node_id)

    def disconnect(self):
        """Stop polling and the backend."""
        self._peer_up = False
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        self._poller = None
        self.backend.stop()

    @inlineCallbacks
    def peer_connected(self):
        """``peeringRequest`` with our node id; then our pool invoices that are still live go to the
        peer again (it may have restarted and lost its pool; it keeps each hash once) and the pool
        is topped up to ``invoicePoolSize`` (the JS plugin sends new ones on every connect)."""
        yield self.ctx.call_peer(protocol.PEERING_REQUEST, self.node_id.encode(), protocol.CONTENT_TEXT)
        self._peer_up = True
        issued = yield self._load_issued()
        for record in issued.values():
            if record["pool"] and not record["replaced"]:
                yield self._offer(record["bolt11"])
        yield self._top_up_pool()

    def _offer(self, bolt11: str):
        """Send one pool invoice to the peer (``paymentRequest``). :returns: ``Deferred[bool]``: taken."""
        def refused(failure):  # still watched: the peer may pay it anyway
            self.ctx.log.warn("account {account}: the peer did not take pool invoice ({error})",
                              account=self.account_id, error=failure.getErrorMessage())
            return False

        return self.ctx.call_peer(protocol.PAYMENT_REQUEST, bolt11.encode(), protocol.CONTENT_TEXT).addCallbacks(
            lambda _: True, refused)

    # -- the peer's node ------------------------------------------------------------------------

    @inlineCallbacks
    def _link_peer(self, node_id: str):
        if self.peer_node_id is not None and self.peer_node_id != node_id:
            raise ClaimRejectedError(f"peer's node id {node_id} is not the one linked to account "
                                     f"{self.account_id} ({self.peer_node_id})")
        if self.peer_node_id is None:
            self.peer_node_id = node_id
            yield self.ctx.store.put(self.ctx.key("peer-node-id"), node_id)
            self.ctx.log.info("account {account}: linked to the peer's Lightning node {node}",
                              account=self.account_id, node=node_id)

    def _on_peering_request(self, entry):
        try:
            node_id = protocol.decode_peering_request(entry)
        except protocol.MalformedMessageError as exc:
            raise ClaimRejectedError(str(exc)) from None
        return self._link_peer(node_id).addCallback(lambda _: [])

    def _check(self, invoice, amount_msat):
        check_invoice(invoice, payee=self.peer_node_id, now=self.ctx.clock.seconds(), amount_msat=amount_msat)

    # -- invoices of ours -----------------------------------------------------------------------

    def _on_invoice_request(self, entry):
        try:
            amount = protocol.decode_invoice_request(entry)
        except protocol.MalformedMessageError as exc:
            raise ClaimRejectedError(str(exc)) from None
        if self.peer_node_id is None:
            raise ClaimRejectedError("invoiceRequest before peeringRequest: no node is linked to the peer")
        return self._issue(amount, pool=False).addCallback(
            lambda bolt11: [protocol.text_entry(protocol.PAYMENT_REQUEST, bolt11)])

    @inlineCallbacks
    def _issue(self, amount_msat: Optional[int], pool: bool):
        """Make an invoice and record it in ``issued`` (before anyone sees it). :returns: bolt11."""
        try:
            created = yield self.backend.create_invoice(amount_msat, MEMO, self.options.expiry_s)
        except (ValueError, BackendError) as exc:
            raise ClaimRejectedError(f"cannot make an invoice for {amount_msat} msat: {exc}") from None
        record = {"bolt11": created.bolt11, "amountMsat": amount_msat, "pool": pool, "replaced": False,
                  "expiresAt": decode(created.bolt11).expires_at}
        yield self._update_issued(lambda issued: issued.__setitem__(created.payment_hash, record))
        return created.bolt11

    def _load_issued(self):
        return self.ctx.store.get(self.ctx.key("issued")).addCallback(lambda raw: json.loads(raw) if raw else {})

    def _update_issued(self, change):
        @inlineCallbacks
        def update():
            issued = yield self._load_issued()
            change(issued)
            yield self.ctx.store.put(self.ctx.key("issued"), json.dumps(issued, sort_keys=True))

        return self._issued_lock.run(update)

    def _top_up_pool(self):
        """Issue and send pool invoices until ``invoicePoolSize`` are live (one top-up at a time)."""
        return self._pool_lock.run(self._top_up_pool_now)

    @inlineCallbacks
    def _top_up_pool_now(self):
        if not self._peer_up or self.options.pool_size == 0:
            return
        issued = yield self._load_issued()
        live = sum(1 for r in issued.values() if r["pool"] and not r["replaced"])
        for _ in range(self.options.pool_size - live):
            if not (yield self._offer((yield self._issue(None, pool=True)))):
                return

    @inlineCallbacks
    def _poll(self):
        """One tick: credit what was paid, drop what expired, replace pool invoices."""
        try:
            issued = yield self._load_issued()
            done, replace = [], []
            for payment_hash, record in sorted(issued.items()):
                verdict = yield self._check_issued(payment_hash, record)
                (done if verdict == "done" else replace if verdict == "replace" else []).append(payment_hash)
            if done or replace:
                yield self._settled(done, replace)
        except Exception as exc:  # the node may be down for a while: try again at the next tick
            self.ctx.log.warn("account {account}: polling our invoices failed: {error}", account=self.account_id,
                              error=str(exc))

    @inlineCallbacks
    def _check_issued(self, payment_hash: str, record: dict):
        """Ask the node about one issued invoice; credit it if paid (one check per invoice at a
        time: the poll and a ``paymentPreimage`` hint do not both credit, which would log a
        spurious replay warning). :returns: ``'done'`` (credited or expired), ``'replace'`` (a
        pool invoice near expiry) or ``None`` (also while another check of it runs)."""
        if payment_hash in self._checking:
            return None
        self._checking.add(payment_hash)
        try:
            return (yield self._check_issued_now(payment_hash, record))
        finally:
            self._checking.discard(payment_hash)

    @inlineCallbacks
    def _check_issued_now(self, payment_hash: str, record: dict):
        status = yield self.backend.invoice_status(payment_hash)
        now = self.ctx.clock.seconds()
        if status.state == PAID:
            yield self.ctx.credit_payment(payment_hash, status.amount_received_msat, record["bolt11"])
            return "done"
        if status.state == EXPIRED or now > record["expiresAt"] + MIN_TIME_LEFT_S:
            return "done"
        if record["pool"] and not record["replaced"] and now >= record["expiresAt"] - REPLACE_BEFORE_EXPIRY_S:
            return "replace"
        return None

    @inlineCallbacks
    def _settled(self, done: list, replace: list):
        def change(current):
            for h in done:
                current.pop(h, None)
            for h in replace:
                if h in current:
                    current[h]["replaced"] = True

        yield self._update_issued(change)
        yield self._top_up_pool()

    @inlineCallbacks
    def _on_payment_preimage(self, entry):
        """The payer says it paid: a hint to ask our node about that invoice now (credited only on
        the node's word, as at a poll). Answered ``[]``."""
        try:
            payment_hash = hashlib.sha256(bytes.fromhex(protocol.find_text([entry], protocol.PAYMENT_PREIMAGE))) \
                .hexdigest()
        except (ValueError, TypeError):
            raise ClaimRejectedError("paymentPreimage: not 32 bytes of hex") from None
        record = (yield self._load_issued()).get(payment_hash)
        if record is not None and (yield self._check_issued(payment_hash, record)) == "done":
            yield self._settled([payment_hash], [])
        return []

    # -- invoices of the peer -------------------------------------------------------------------

    def _on_payment_request(self, entry):
        try:
            text = protocol.find_text([entry], protocol.PAYMENT_REQUEST)
            invoice = decode(text)
            self._check(invoice, None)
        except (protocol.MalformedMessageError, InvalidInvoiceError) as exc:
            raise ClaimRejectedError(f"paymentRequest refused: {exc}") from None
        if all(kept.payment_hash != invoice.payment_hash for kept in self.pool):
            self.pool.append(invoice)
        return []

    def _pool_usable(self) -> list:
        """Drop the peer's pool invoices with 60 s or less left (JS ``minuteFromNow``). :returns: the pool."""
        now = self.ctx.clock.seconds()
        self.pool = [inv for inv in self.pool if inv.expires_at - now > MIN_TIME_LEFT_S]
        return self.pool

    @inlineCallbacks
    def _invoice_for(self, amount_msat: int):
        """An invoice of the peer for ``amount_msat``, checked: the oldest usable pool invoice when
        the backend pays amountless ones, else one asked for (``invoiceRequest``)."""
        if self.backend.pays_amountless:
            self._pool_usable()
            while self.pool:
                invoice = self.pool.pop(0)
                used = yield self.ctx.store.get(self.ctx.key(f"invoice-used:{invoice.payment_hash}"))
                if not used:
                    try:
                        self._check(invoice, None)
                    except InvalidInvoiceError as exc:
                        raise InvoiceRefusedError(str(exc)) from None
                    return invoice
        if self.peer_node_id is None:
            raise InvoiceRefusedError("no Lightning node id is linked to the peer yet (no peeringRequest)")
        entries = yield self.ctx.call_peer(protocol.INVOICE_REQUEST, str(amount_msat).encode(), protocol.CONTENT_TEXT)
        text = protocol.find_text(entries, protocol.PAYMENT_REQUEST)
        if text is None:
            raise InvoiceRefusedError("the peer answered invoiceRequest without a paymentRequest")
        try:
            invoice = decode(text)
            self._check(invoice, amount_msat)
        except InvalidInvoiceError as exc:
            raise InvoiceRefusedError(str(exc)) from None
        return invoice

    # -- paying -----------------------------------------------------------------------------------

    def pay(self, amount: int, payment_id: str):
        """Pay ``amount`` (``int`` msat) to the peer for the payout ``payment_id`` (see the module
        docstring). :returns: ``Deferred[str]``: ``'lightning:<payment hash>'``.
        :raises InvoiceRefusedError: the peer's invoice failed a check (a warning with the reason;
            nothing paid). :raises BackendError: the node failed to pay (retried by the framework)."""
        return self._pay(amount, payment_id).addErrback(self._pay_failed, amount, payment_id)

    def _pay_failed(self, failure, amount, payment_id):
        if failure.check(InvoiceRefusedError):
            self.ctx.log.warn("account {account}: not paying {amount} msat ({payment_id}): {why}",
                              account=self.account_id, amount=amount, payment_id=payment_id, why=str(failure.value))
        return failure

    @inlineCallbacks
    def _pay(self, amount: int, payment_id: str):
        key = self.ctx.key(f"payment:{payment_id}")
        raw = yield self.ctx.store.get(key)
        record = json.loads(raw) if raw else None
        if record is not None and record["amountMsat"] != amount:
            raise ValueError(f"payout {payment_id} was recorded for {record['amountMsat']} msat, not {amount}")
        if record is None:
            invoice = yield self._invoice_for(amount)
            used_key = self.ctx.key(f"invoice-used:{invoice.payment_hash}")
            used = yield self.ctx.store.get(used_key)
            if used and used != payment_id:
                raise InvoiceRefusedError(f"invoice {invoice.payment_hash} was already used for payout {used}")
            record = {"bolt11": invoice.bolt11, "paymentHash": invoice.payment_hash, "amountMsat": amount,
                      "amountless": invoice.amount_msat is None}
            yield self.ctx.store.put(used_key, payment_id)  # the hash belongs to this payout
            yield self.ctx.store.put(key, json.dumps(record, sort_keys=True))  # recorded before it is paid
            self.ctx.log.info("account {account}: paying invoice {hash} of {amount} msat for payout {payment_id}",
                              account=self.account_id, hash=invoice.payment_hash, amount=amount,
                              payment_id=payment_id)
        payment_hash = record["paymentHash"]
        status = yield self.backend.payment_status(payment_hash)
        if status.state == PAID and status.preimage:
            preimage = status.preimage
            self.ctx.log.info("account {account}: invoice {hash} of payout {payment_id} was paid before; not paid "
                              "again", account=self.account_id, hash=payment_hash, payment_id=payment_id)
        elif status.state == INFLIGHT:
            raise BackendError(f"the payment of invoice {payment_hash} is in flight; asking again later")
        else:
            expired = decode(record["bolt11"]).expires_at - self.ctx.clock.seconds() <= MIN_TIME_LEFT_S
            if status.state == FAILED or expired:
                yield self.ctx.store.put(key, "")  # nothing was paid on it: the next attempt gets a new invoice
                raise BackendError(f"invoice {payment_hash} {'failed' if status.state == FAILED else 'expired'} "
                                   "unpaid; a new one will be asked for")
            preimage = yield self.backend.pay_invoice(record["bolt11"], amount if record["amountless"] else None)
        if hashlib.sha256(bytes.fromhex(preimage)).hexdigest() != payment_hash:
            raise BackendError(f"the node's preimage {preimage} does not hash to payment hash {payment_hash}")
        self.ctx.log.info("account {account}: paid {amount} msat to {peer} (invoice {hash})", account=self.account_id,
                          amount=amount, peer=self.peer_node_id, hash=payment_hash)
        try:  # a hint only: the payee credits what its node reports, at the latest at its next poll
            yield self.ctx.call_peer(protocol.PAYMENT_PREIMAGE, preimage.encode(), protocol.CONTENT_TEXT)
        except Exception as exc:
            self.ctx.log.info("account {account}: the peer did not take paymentPreimage ({error}); it will see "
                              "the payment at its next poll", account=self.account_id, error=str(exc))
        return f"lightning:{payment_hash}"

    def create_claim(self, total):  # payment-based: never called
        raise NotImplementedError("lightning settles with invoice payments")

    def send_claim(self, claim):  # payment-based: never called
        raise NotImplementedError("lightning settles with invoice payments")

    def watch(self):
        return None

    @inlineCallbacks
    def admin_info(self):
        """:returns: ``{"nodeId", "peerNodeId", "issuedInvoices" (not settled yet), "peerInvoices"
        (pool), "channel": {"localMsat", "remoteMsat"} | None}`` (msat as decimal strings)."""
        issued = yield self._load_issued() if self.ctx else succeed({})
        info = {"nodeId": self.node_id, "peerNodeId": self.peer_node_id, "issuedInvoices": len(issued),
                "peerInvoices": len(self.pool), "channel": None}
        try:
            balance = yield self.backend.channel_balance()
            info["channel"] = {"localMsat": str(balance.local_msat), "remoteMsat": str(balance.remote_msat)}
        except Exception as exc:
            info["channelError"] = str(exc)
        return info
