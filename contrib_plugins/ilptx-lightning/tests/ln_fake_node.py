"""An in-memory Lightning network for unit tests (on the test's clock): :class:`FakeNode` implements
:class:`~ilptx_lightning.backend.ILightningBackend` with real BOLT11 invoices (made and signed
with pyln-proto under the node's own secp256k1 key) and checks what a paying node checks: the
invoice decodes and its signature is the payee's, the payee knows it, it is not expired or paid,
the amount is the invoice's (or given for an amountless one, only where ``pays_amountless``),
the payer's channel holds it, and one payment hash is paid once. It is not a Lightning node:
no HTLCs, routing, channels on a chain or fees; one channel balance per node.
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import coincurve
from pyln.proto.invoice import Invoice
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from ilptx_lightning.backend import (
    EXPIRED, FAILED, INFLIGHT, PAID, UNKNOWN, UNPAID, BackendError, ChannelBalance, CreatedInvoice,
    ILightningBackend, InvoiceStatus, PaymentStatus,
)
from ilptx_lightning.bolt11 import decode

MSAT_PER_BTC = 10 ** 11


def make_invoice(key_hex: str, *, date: int, amount_msat=None, expiry_s: int = 3600, payment_hash=None,
                 currency: str = "bcrt") -> tuple:
    """A BOLT11 invoice signed with ``key_hex``, made at ``date`` (UNIX s > 0; pyln-proto takes 0 as
    "now"): ``(bolt11, payment_hash hex, preimage hex)``."""
    preimage = os.urandom(32)
    digest = payment_hash or hashlib.sha256(preimage).digest()
    amount = None if amount_msat is None else str(Decimal(amount_msat) / MSAT_PER_BTC)
    inv = Invoice(paymenthash=digest, amount=amount, currency=currency, date=date,
                  tags=[("d", "ilptx-lightning"), ("x", expiry_s)])
    return inv.encode(key_hex), digest.hex(), preimage.hex()


class FakeLightning:
    """The nodes of one network, on ``clock`` (its ``seconds()`` is the invoices' time)."""

    #: where the tests' clocks start (a fake clock's 0 is 1970, and pyln-proto reads a date 0 as now)
    EPOCH = 1_700_000_000

    def __init__(self, clock) -> None:
        self.clock = clock
        self.nodes: dict = {}

    def node(self, local_msat: int = 10 ** 9, pays_amountless: bool = False) -> "FakeNode":
        node = FakeNode(self, local_msat, pays_amountless)
        self.nodes[node.id] = node
        return node


@implementer(ILightningBackend)
class FakeNode:
    """One node. :ivar paid: ``[(payment_hash, amount_msat)]`` it paid; :ivar hold: when ``True``,
    payments stay in flight until :meth:`release`; :ivar fail_payments: refuse every payment."""

    def __init__(self, net: FakeLightning, local_msat: int, pays_amountless: bool) -> None:
        self.net = net
        self.key = os.urandom(32).hex()
        self.id = coincurve.PrivateKey(bytes.fromhex(self.key)).public_key.format().hex()
        self.local_msat = local_msat
        self.pays_amountless = pays_amountless
        self.invoices: dict = {}  # hash -> dict(bolt11, amount_msat, preimage, received)
        self.payments: dict = {}  # hash -> PaymentStatus
        self.paid: list = []
        self.pay_calls = 0
        self.hold = False
        self.fail_payments = False
        self._held: list = []
        self.running = False

    def start(self):
        self.running = True

    def stop(self):
        self.running = False

    def node_id(self):
        return succeed(self.id)

    def create_invoice(self, amount_msat, memo, expiry_s):
        bolt11, payment_hash, preimage = make_invoice(self.key, amount_msat=amount_msat,
                                                      date=int(self.net.clock.seconds()), expiry_s=expiry_s)
        self.invoices[payment_hash] = {"bolt11": bolt11, "amount_msat": amount_msat, "preimage": preimage,
                                       "received": 0}
        return succeed(CreatedInvoice(bolt11, payment_hash))

    def invoice_status(self, payment_hash):
        invoice = self.invoices.get(payment_hash)
        if invoice is None:
            return succeed(InvoiceStatus(UNKNOWN))
        if invoice["received"]:
            return succeed(InvoiceStatus(PAID, invoice["received"]))
        if decode(invoice["bolt11"]).expires_at <= self.net.clock.seconds():
            return succeed(InvoiceStatus(EXPIRED))
        return succeed(InvoiceStatus(UNPAID))

    def payment_status(self, payment_hash):
        return succeed(self.payments.get(payment_hash, PaymentStatus(UNKNOWN)))

    def channel_balance(self):
        return succeed(ChannelBalance(self.local_msat, 0))

    def pay_invoice(self, bolt11, amount_msat=None):
        self.pay_calls += 1
        try:
            inv = decode(bolt11)
            payee = self.net.nodes.get(inv.payee)
            if payee is None or inv.payment_hash not in payee.invoices:
                raise BackendError("no route: unknown payee or invoice")
            state = self.payments.get(inv.payment_hash)
            if state is not None and state.state == PAID:
                raise BackendError("This invoice has been paid already")
            if state is not None and state.state == INFLIGHT:
                raise BackendError("A payment was already initiated for this invoice")
            if inv.expires_at <= self.net.clock.seconds():
                raise BackendError("This invoice has expired")
            if inv.amount_msat is None:
                if not self.pays_amountless or amount_msat is None:
                    raise BackendError("Missing amount")
                amount = amount_msat
            else:
                if amount_msat is not None:
                    raise BackendError("amount given for an invoice with an amount")
                amount = inv.amount_msat
            if self.fail_payments or amount > self.local_msat:
                self.payments[inv.payment_hash] = PaymentStatus(FAILED)
                raise BackendError("payment failed: no route with enough capacity")
        except BackendError as exc:
            return fail(exc)
        self.payments[inv.payment_hash] = PaymentStatus(INFLIGHT)
        d = Deferred()
        settle = (payee, inv.payment_hash, amount, d)
        if self.hold:
            self._held.append(settle)
        else:
            self._settle(*settle)
        return d

    def _settle(self, payee, payment_hash, amount, d):
        record = payee.invoices[payment_hash]
        self.local_msat -= amount
        payee.local_msat += amount
        record["received"] = amount
        self.payments[payment_hash] = PaymentStatus(PAID, record["preimage"])
        self.paid.append((payment_hash, amount))
        if d is not None:
            d.callback(record["preimage"])

    def release(self, answer: bool = True) -> None:
        """Settle the held payments; ``answer=False``: the payer never hears back (it crashed)."""
        held, self._held = self._held, []
        for payee, payment_hash, amount, d in held:
            self._settle(payee, payment_hash, amount, d if answer else None)
