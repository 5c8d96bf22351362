"""ElectrumBackend against two real Electrum 4.3.4 daemons on the regtest network: node ids, an exact-amount invoice
made by bob and decoded by pyln-proto, paid by alice (the preimage hashes to it), both invoice and payment status,
the channel balances move by exactly the amount, a second payment of one hash and an amountless payment refused."""

from __future__ import annotations

import hashlib

import pytest
import pytest_twisted
from twisted.internet import reactor

from ilptx_lightning.backend import PAID, UNKNOWN, UNPAID, BackendError
from ilptx_lightning.bolt11 import decode
from ilptx_lightning.electrum import ElectrumBackend

pytestmark = pytest.mark.slow


def backend(node) -> ElectrumBackend:
    """An ElectrumBackend on one regtest node, started."""
    b = ElectrumBackend(node.url, "u", "p", reactor=reactor)
    b.start()
    return b


@pytest_twisted.inlineCallbacks
def test_electrum_backend_pays_an_exact_invoice(regtest):
    """bob's invoice of 2500 sat: checked by pyln-proto, paid by alice once, both nodes' channel balances move by it."""
    alice, bob = backend(regtest.alice), backend(regtest.bob)
    try:
        assert (yield alice.node_id()) == regtest.alice.node_id
        bob_id = yield bob.node_id()
        before_a, before_b = (yield alice.channel_balance()), (yield bob.channel_balance())
        created = yield bob.create_invoice(2_500_000, "test", 3600)
        invoice = decode(created.bolt11)
        assert (invoice.payee, invoice.amount_msat, invoice.payment_hash, invoice.currency) == (
            bob_id, 2_500_000, created.payment_hash, "bcrt")
        assert (yield bob.invoice_status(created.payment_hash)).state == UNPAID
        assert (yield alice.payment_status(created.payment_hash)).state == UNKNOWN
        preimage = yield alice.pay_invoice(created.bolt11)
        assert hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == created.payment_hash
        status = yield bob.invoice_status(created.payment_hash)
        assert (status.state, status.amount_received_msat) == (PAID, 2_500_000)
        paid = yield alice.payment_status(created.payment_hash)
        assert (paid.state, paid.preimage) == (PAID, preimage)
        after_a, after_b = (yield alice.channel_balance()), (yield bob.channel_balance())
        assert before_a.local_msat - after_a.local_msat == 2_500_000
        assert after_b.local_msat - before_b.local_msat == 2_500_000
        with pytest.raises(BackendError, match="paid already"):
            yield alice.pay_invoice(created.bolt11)
        assert (yield alice.channel_balance()).local_msat == after_a.local_msat
    finally:
        alice.stop()
        bob.stop()


@pytest_twisted.inlineCallbacks
def test_electrum_cannot_pay_amountless_invoices(regtest):
    """Electrum makes amountless invoices, but its lnpay cannot pay one: pays_amountless is False and it is refused."""
    alice, bob = backend(regtest.alice), backend(regtest.bob)
    try:
        created = yield bob.create_invoice(None, "pool", 3600)
        assert decode(created.bolt11).amount_msat is None and alice.pays_amountless is False
        with pytest.raises(BackendError, match="Missing amount"):
            yield _lnpay(alice, created.bolt11)
        with pytest.raises(BackendError, match="amountless"):
            yield alice.pay_invoice(created.bolt11, 1000)
    finally:
        alice.stop()
        bob.stop()


def _lnpay(backend: ElectrumBackend, bolt11: str):
    """Electrum's own lnpay of ``bolt11`` (off the reactor), to show what the node answers."""
    return backend._defer(lambda: backend.rpc.call("lnpay", invoice=bolt11))
