"""A payment-based module (one FakeLedger transfer per settlement) in the framework: payments made once per
intent across a restart, each incoming payment credited once by its tx id, the scale leftover carried."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from zope.interface import implementer

from ilptx.codec.btp import CONTENT_JSON
from ilptx.settlement.engine import PAYMENT, ClaimRejectedError
from ilptx.settlement.interfaces import ISettlementModule
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import (
    SETTLING_LISTENER, FakeLedger, failure_of, linked_settling_plugins, plugin_services, result_of,
)

SEEDS = {"plugin": "44" * 32, "peer": "55" * 32}
KEYS = {side: Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)) for side, seed in SEEDS.items()}
ADDRESSES = {side: FakeLedger.address_of(key) for side, key in KEYS.items()}


@implementer(ISettlementModule)
class TransferModule:
    """Pays with FakeLedger.transfer (ledger scale 6, account scale 9) and tells the peer the tx in ``payment``."""

    name = "fake-transfer"
    kind = PAYMENT
    ledger_scale = 6
    asset_scale = 9

    def __init__(self, ledger, options) -> None:
        self.ledger, self.side = ledger, options["side"]
        self.peer_address = ADDRESSES["peer" if self.side == "plugin" else "plugin"]
        self.paid_calls: list = []

    def connect(self, ctx):
        self.ctx = ctx
        ctx.register_sub_protocol("payment", self._on_payment)

    def peer_connected(self):
        return None

    def disconnect(self):
        return None

    @inlineCallbacks
    def pay(self, amount, payment_id):
        self.paid_calls.append((amount, payment_id))
        tx = self.ledger.transfer(KEYS[self.side], self.peer_address, amount, payment_id)
        yield self.ctx.call_peer("payment", json.dumps({"tx": tx}).encode(), CONTENT_JSON)
        return tx

    def _on_payment(self, entry):
        tx = json.loads(entry.data)["tx"]
        found = [t for t in self.ledger.transfers_to(ADDRESSES[self.side]) if t["tx"] == tx]
        if not found or found[0]["from"] != self.peer_address:
            raise ClaimRejectedError(f"no transfer {tx} from the peer on the ledger")
        return self.ctx.credit_payment(tx, found[0]["amount"], entry.data.decode()).addCallback(lambda _: [])

    def create_claim(self, total):  # pragma: no cover - payment-based
        raise NotImplementedError

    def send_claim(self, claim):  # pragma: no cover - payment-based
        raise NotImplementedError

    def watch(self):
        return None

    def admin_info(self):
        return {}


def world():
    ledger = FakeLedger()
    for address in ADDRESSES.values():
        ledger.fund(address, 10 ** 12)
    factory = settling_plugin_factory(lambda options, *, account_id, services: TransferModule(ledger, options))
    pair = linked_settling_plugins(factory, options={"side": "plugin", "responseTimeout": 1000},
                                   peer_options={"side": "peer"})
    credited: list = []
    pair.peer.register_money_handler(credited.append)
    connecting = [maybeDeferred(pair.plugin.connect), maybeDeferred(pair.peer.connect)]
    pair.settle()
    for d in connecting:
        result_of(d)
    return ledger, factory, pair, credited


def pay(pair, amount, key=None):
    d = pair.plugin.send_money(amount, key)
    pair.settle()
    return d


def test_each_payout_is_one_transfer_and_the_leftover_is_carried():
    """1500 + 1500 units at scale 9 become transfers of 1 then 2 drops; the payee is credited 1000 then 2000."""
    ledger, _factory, pair, credited = world()
    result_of(pay(pair, 1500))
    result_of(pay(pair, 1500))
    assert [t["amount"] for t in ledger.transfers_to(ADDRESSES["peer"])] == [1, 2]
    assert credited == [1000, 2000]
    assert ledger.balance(ADDRESSES["peer"]) == 10 ** 12 + 3


def test_replayed_or_unknown_payment_credits_nothing():
    """The same tx notified again credits nothing; a tx the ledger does not have is refused with F00."""
    ledger, _factory, pair, credited = world()
    result_of(pay(pair, 5000))
    tx = ledger.transfers_to(ADDRESSES["peer"])[0]["tx"]
    for body, ok in (({"tx": tx}, True), ({"tx": "00" * 32}, False)):
        d = pair.plugin.settlement.call_peer("payment", json.dumps(body).encode(), CONTENT_JSON)
        pair.settle()
        if ok:
            assert result_of(d) == ()
        else:
            assert failure_of(d).value.btp_error.code == "F00"
    assert credited == [5000]


def test_kill_between_the_recorded_intent_and_the_ledger_answer_pays_once():
    """The payer dies after the ledger applied the transfer, before the answer: the restart pays the same id once."""
    ledger, factory, pair, credited = world()
    module = pair.plugin.module
    real = module.pay
    module.pay = lambda amount, payment_id: (ledger.transfer(KEYS["plugin"], ADDRESSES["peer"], amount, payment_id),
                                             Deferred())[1]
    pay(pair, 4000, "k")
    assert len(ledger.transfers_to(ADDRESSES["peer"])) == 1 and credited == []
    module.pay = real
    stopped = pair.plugin.disconnect()
    pair.settle()
    result_of(stopped)
    store = pair.plugin.settlement.store
    again = factory({**SETTLING_LISTENER, "side": "plugin"}, account_id=pair.plugin.account_id,
                    services=plugin_services(pair.network.reactor, account_id=pair.plugin.account_id, store=store))
    connecting = maybeDeferred(again.connect)
    pair.settle(60)
    result_of(connecting)
    assert again.module.paid_calls == [(4, "fake-transfer:under-test:0-4")]
    assert len(ledger.transfers_to(ADDRESSES["peer"])) == 1
    assert credited == [4000]
    assert result_of(pay(pair.__class__(again, pair.peer, pair.settle), 4000, "k")) is None
    assert credited == [4000]
