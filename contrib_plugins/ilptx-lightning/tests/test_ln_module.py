"""LightningModule inside the settling plugin, on fake Lightning nodes and a fake network (task clock, no
sleeping): peering, the invoice pool, paying by pool or by invoiceRequest, bad invoices refused with the reason
and nothing paid, credit after a restart, a crash in the middle of a payment, options, entry point."""

from __future__ import annotations

import pytest
from ln_fake_node import FakeLightning, make_invoice

from ilptx.errors import ConfigError
from ilptx.plugins.base import PluginServices
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.stores.memory import MemoryStore
from ilptx.testing_procs import LogLines
from ilptx.testing import (
    SETTLING_DIALLER, SETTLING_LISTENER, FakeNetwork, SettlingModuleContract, failure_of, linked_settling_plugins,
    plugin_services, result_of,
)

from ilptx_lightning import hooks, protocol
from ilptx_lightning.backend import PaymentStatus
from ilptx_lightning.module import LightningModule

SAT = 1000  # msat


def factory_on(node):
    """A settling plugin factory whose module pays through the fake ``node``."""
    return settling_plugin_factory(lambda options, *, account_id, services: LightningModule(
        options, account_id=account_id, services=services, backend=node))


class Pair:
    """Payer (``plugin``, node ``a``) and payee (``peer``, node ``b``) on one fake network and clock."""

    def __init__(self, amountless=False, pool_size=2, a_msat=10 ** 9):
        self.network = FakeNetwork()
        self.network.reactor.advance(FakeLightning.EPOCH)
        self.ln = FakeLightning(self.network.reactor)
        self.a = self.ln.node(a_msat, pays_amountless=amountless)
        self.b = self.ln.node(pays_amountless=amountless)
        self.options = {"invoicePoolSize": pool_size}
        self.store_a, self.store_b = MemoryStore(), MemoryStore()
        self.linked = linked_settling_plugins(factory_on(self.a), factory_on(self.b), options=self.options,
                                              peer_options=self.options, network=self.network, store=self.store_a,
                                              peer_store=self.store_b)
        self.plugin, self.peer = self.linked.plugin, self.linked.peer
        self.credited: list = []
        self.peer.register_money_handler(self.credited.append)

    def settle(self, seconds=0.0):
        self.network.settle(seconds)

    def connect(self):
        ds = [self.plugin.connect(), self.peer.connect()]
        self.settle()
        for d in ds:
            result_of(d)
        self.settle(1)

    def send(self, sats, key=None):
        d = self.plugin.send_money(sats, key)
        self.settle()
        self.settle(1)  # the payee's poll
        return d

    def stop_peer(self):
        d = self.peer.disconnect()
        self.settle()
        result_of(d)

    def restart_peer(self):
        """A new payee plugin on the payee's store (the old one disconnected first)."""
        self.stop_peer()
        self.peer = factory_on(self.b)({**SETTLING_DIALLER, **self.options}, account_id="counterparty",
                                       services=plugin_services(self.network.reactor, account_id="counterparty",
                                                                store=self.store_b))
        self.peer.register_money_handler(self.credited.append)
        d = self.peer.connect()
        self.settle()
        result_of(d)

    def new_payer(self):
        """A new payer plugin on the payer's store, connected, as after kill -9: the old one is dropped as it
        is (its timers stopped, its link cut once the new one listens, so the peer redials the new one)."""
        old = self.plugin
        old.settlement.stop()
        if old.module._poller is not None and old.module._poller.running:
            old.module._poller.stop()
        self.plugin = factory_on(self.a)({**SETTLING_LISTENER, **self.options}, account_id="under-test",
                                         services=plugin_services(self.network.reactor, account_id="under-test",
                                                                  store=self.store_a))
        d = self.plugin.connect()
        self.settle()
        if old._session is not None:
            old._session.close()
        self.settle()
        result_of(d)
        return self.plugin


@pytest.fixture
def warnings():
    """Formatted log lines of level warn or above, while the test runs."""
    with LogLines() as lines:
        yield lines


def test_peering_links_both_node_ids_and_fills_the_pools():
    """On connect each side sends peeringRequest (its node id) and invoicePoolSize amountless invoices of its own."""
    pair = Pair(pool_size=3)
    pair.connect()
    assert pair.plugin.module.peer_node_id == pair.b.id and pair.peer.module.peer_node_id == pair.a.id
    assert sorted(inv.payee for inv in pair.plugin.module.pool) == [pair.b.id] * 3
    assert all(inv.amount_msat is None for inv in pair.plugin.module.pool + pair.peer.module.pool)
    assert len(pair.peer.module.pool) == 3


def test_exact_amount_invoice_is_paid_and_credited_once(warnings):
    """A node that cannot pay amountless invoices asks for one of the exact amount: paid, credited exactly once."""
    pair = Pair()
    pair.connect()
    d = pair.send(1234, "k1")
    assert result_of(d) is None
    assert pair.credited == [1234]
    assert pair.a.paid == [(pair.a.paid[0][0], 1234 * SAT)] and pair.b.local_msat == 10 ** 9 + 1234 * SAT
    pair.settle(5)
    again = pair.send(1234, "k1")
    assert result_of(again) is None and pair.credited == [1234] and len(pair.a.paid) == 1
    assert warnings == []  # the paymentPreimage hint and the poll did not both credit it


def test_amountless_pool_invoice_is_paid_and_replaced():
    """A node that pays amountless invoices pays the oldest pool invoice; the payee replaces it once paid."""
    pair = Pair(amountless=True, pool_size=2)
    pair.connect()
    oldest = pair.plugin.module.pool[0].payment_hash
    assert result_of(pair.send(500)) is None
    assert pair.a.paid == [(oldest, 500 * SAT)] and pair.credited == [500]
    assert len(pair.plugin.module.pool) == 2 and oldest not in {i.payment_hash for i in pair.plugin.module.pool}


def test_restarted_payer_gets_the_live_pool_again():
    """A peer that restarted (its pool was in memory) is sent our live pool invoices again, not new ones."""
    pair = Pair(amountless=True, pool_size=2)
    pair.connect()
    sent = sorted(inv.payment_hash for inv in pair.plugin.module.pool)
    pair.new_payer()
    pair.settle(1)
    assert sorted(inv.payment_hash for inv in pair.plugin.module.pool) == sent and len(pair.b.invoices) == 2


def test_pool_invoice_is_replaced_before_it_expires():
    """A pool invoice is replaced invoiceExpiry - 300 s after it was made (the JS 3300 s)."""
    pair = Pair(pool_size=1)
    pair.connect()
    first = pair.plugin.module.pool[0].payment_hash
    pair.settle(3301)
    hashes = [inv.payment_hash for inv in pair.plugin.module.pool]
    assert len(hashes) == 2 and hashes[0] == first  # the old one is still usable for a while
    pair.settle(300)
    pair.settle(1)
    assert [inv.payment_hash for inv in pair.plugin.module._pool_usable()] == hashes[1:]


def _answer_with(pair, bolt11):
    """Make the payee answer every invoiceRequest with ``bolt11`` (a peer that misbehaves)."""
    settlement = pair.peer.settlement
    del settlement._sub_protocols[protocol.INVOICE_REQUEST]  # the honest handler out, the bad one in (public API)
    settlement.register_sub_protocol(protocol.INVOICE_REQUEST,
                                     lambda entry: [protocol.text_entry(protocol.PAYMENT_REQUEST, bolt11)])


@pytest.mark.parametrize("case, says", [
    ("other node", "not the peer's node"),
    ("expired", "expires in"),
    ("too large", "msat is owed"),
    ("amountless", "is amountless"),
    ("malformed", "malformed BOLT11"),
])
def test_bad_invoice_from_peer_is_refused_logged_and_not_paid(case, says, warnings):
    """An invoice for another node, expired, above what is owed, amountless or malformed: refused, logged, unpaid."""
    pair = Pair(pool_size=0)
    pair.connect()
    pair.settle(100)
    now = int(pair.network.reactor.seconds())
    stranger = pair.ln.node()
    bolt11 = {
        "other node": make_invoice(stranger.key, amount_msat=1000 * SAT, date=now)[0],
        "expired": make_invoice(pair.b.key, amount_msat=1000 * SAT, date=now - 3590, expiry_s=3600)[0],
        "too large": make_invoice(pair.b.key, amount_msat=1001 * SAT, date=now)[0],
        "amountless": make_invoice(pair.b.key, date=now)[0],
        "malformed": "lnbcrt10u1qqqqqqqqqq",
    }[case]
    _answer_with(pair, bolt11)
    d = pair.send(1000)
    failure_of(d)
    assert pair.a.pay_calls == 0 and pair.credited == []
    assert any("not paying 1000000 msat" in line and says in line for line in warnings), warnings
    assert pair.plugin.settlement.payouts is not None
    queued = result_of(pair.plugin.settlement.payouts.prepared())
    assert [p.amount for p in queued] == [1000]


@pytest.mark.parametrize("case, says", [
    ("other node", "not the peer's node"),
    ("with amount", "pool takes amountless"),
    ("expired", "expires in"),
    ("malformed", "malformed BOLT11"),
])
def test_bad_pool_invoice_is_refused_with_f00(case, says, warnings):
    """A paymentRequest for another node, with an amount, expiring, or malformed: BTP F00, logged, not kept."""
    pair = Pair(pool_size=0, amountless=True)
    pair.connect()
    now = int(pair.network.reactor.seconds())
    stranger = pair.ln.node()
    bolt11 = {
        "other node": make_invoice(stranger.key, date=now)[0],
        "with amount": make_invoice(pair.b.key, date=now, amount_msat=5 * SAT)[0],
        "expired": make_invoice(pair.b.key, date=now, expiry_s=30)[0],
        "malformed": "lnbcrt1garbage",
    }[case]
    d = pair.peer.settlement.call_peer(protocol.PAYMENT_REQUEST, bolt11.encode(), protocol.CONTENT_TEXT)
    pair.settle()
    failure = failure_of(d)
    assert "F00" in str(failure.value) or "NotAccepted" in type(failure.value).__name__ + str(failure.value)
    assert pair.plugin.module.pool == []
    assert any("paymentRequest refused" in line and says in line for line in warnings), warnings
    assert pair.plugin.is_connected()


def test_invoice_request_before_peering_and_bad_hints_are_refused(warnings):
    """invoiceRequest from a peer with no linked node, and a paymentPreimage that is not hex: F00, nothing made."""
    pair = Pair(pool_size=0)
    pair.connect()
    pair.plugin.module.peer_node_id = None
    d = pair.peer.settlement.call_peer(protocol.INVOICE_REQUEST, b"1000000", protocol.CONTENT_TEXT)
    pair.settle()
    failure_of(d)
    hint = pair.peer.settlement.call_peer(protocol.PAYMENT_PREIMAGE, b"zz", protocol.CONTENT_TEXT)
    pair.settle()
    failure_of(hint)
    assert pair.a.invoices == {} and pair.credited == []
    assert any("before peeringRequest" in line for line in warnings), warnings
    assert any("paymentPreimage: not 32 bytes" in line for line in warnings), warnings


def test_peer_node_id_is_linked_for_life():
    """A second peeringRequest with another node id is refused; the linked one stays."""
    pair = Pair(pool_size=0)
    pair.connect()
    other = pair.ln.node()
    d = pair.peer.settlement.call_peer(protocol.PEERING_REQUEST, other.id.encode(), protocol.CONTENT_TEXT)
    pair.settle()
    failure_of(d)
    assert pair.plugin.module.peer_node_id == pair.b.id


def test_payment_while_payee_is_down_is_credited_once_after_restart():
    """An invoice paid while the payee's connector is stopped is credited once at its first poll after the restart."""
    pair = Pair(pool_size=0)
    pair.connect()
    pair.a.hold = True
    d = pair.plugin.send_money(700, "down")
    pair.settle()
    pair.stop_peer()
    pair.a.release()  # the payment settles on the nodes while the payee's connector is down
    pair.settle()
    assert result_of(d) is None and pair.credited == []
    pair.restart_peer()
    pair.settle(1)
    pair.settle(5)
    assert pair.credited == [700]
    assert result_of(pair.peer.module._load_issued()) == {}


def _payout_left_behind(setup, amount, key):
    """A connected pair whose payer started paying ``amount`` under ``key`` after ``setup(pair)`` (not awaited)."""
    pair = Pair(pool_size=0)
    pair.connect()
    setup(pair)
    pair.plugin.send_money(amount, key).addErrback(lambda f: None)
    pair.settle()
    return pair


def test_crash_in_the_middle_of_a_payment_pays_once():
    """kill -9 while the invoice is being paid: the restarted payer finds the payment by its hash and never pays twice."""
    pair = _payout_left_behind(lambda p: setattr(p.a, "hold", True), 900, "crash")
    assert pair.a.pay_calls == 1
    payer = pair.new_payer()
    pair.settle(2)  # the queued payout is retried: the payment is still in flight
    assert pair.a.pay_calls == 1
    pair.a.release(answer=False)  # it settled; the crashed process never heard
    pair.settle(5)
    pair.settle(10)
    assert pair.a.pay_calls == 1 and len(pair.a.paid) == 1 and pair.credited == [900]
    assert result_of(payer.settlement.payouts.prepared()) == []


def test_crash_after_the_invoice_was_recorded_pays_it_once():
    """kill -9 after the invoice was recorded but before it was paid: the restart pays that same invoice, once."""
    pair = _payout_left_behind(lambda p: setattr(p.a, "fail_payments", True), 300, "rec")
    pair.a.fail_payments = False
    pair.a.payments.clear()  # as if the pay call was never made: the node knows nothing of it
    issued_before = set(pair.b.invoices)
    pair.new_payer()
    pair.settle(2)
    pair.settle(5)
    assert pair.credited == [300] and len(pair.a.paid) == 1 and pair.a.paid[0][0] in issued_before
    assert set(pair.b.invoices) == issued_before


def test_failed_payment_gets_a_new_invoice():
    """A payment the node reports failed is retried on a new invoice (nothing was paid on the old one)."""
    pair = Pair(pool_size=0)
    pair.connect()
    pair.a.fail_payments = True
    d = pair.send(400, "f")
    failure_of(d)
    pair.a.fail_payments = False
    pair.settle(1)
    pair.settle(2)
    pair.settle(1)
    assert pair.credited == [400] and len(pair.a.paid) == 1 and len(pair.b.invoices) == 2


def test_wrong_preimage_is_not_a_payment():
    """A node answering a preimage that does not hash to the payment hash: the payout is not confirmed."""
    pair = Pair(pool_size=0)
    pair.connect()
    real_pay, real_status = pair.a.pay_invoice, pair.a.payment_status
    pair.a.pay_invoice = lambda bolt11, amount=None: real_pay(bolt11, amount).addCallback(lambda _: "00" * 32)
    pair.a.payment_status = lambda h: real_status(h).addCallback(
        lambda s: PaymentStatus(s.state, "00" * 32 if s.preimage else None))
    d = pair.send(100, "p")
    assert "does not hash" in str(failure_of(d).value)
    pair.settle(10)  # the retries find the payment "paid" with the same wrong preimage
    assert [p.amount for p in result_of(pair.plugin.settlement.payouts.prepared())] == [100]


def test_admin_info_names_nodes_and_channel():
    """admin info: our and the peer's node ids, invoices, the channel balance in msat."""
    pair = Pair(pool_size=1)
    pair.connect()
    info = result_of(pair.plugin.get_admin_info())["lightning"]
    assert info["nodeId"] == pair.a.id and info["peerNodeId"] == pair.b.id
    assert info["channel"] == {"localMsat": str(10 ** 9), "remoteMsat": "0"} and info["issuedInvoices"] == 1


@pytest.mark.parametrize("key, value, says", [
    ("electrumUrl", None, "required"),
    ("electrumUrl", "https://u:p@host:1", "http://user:password"),
    ("electrumUrl", "http://host:7777", "http://user:password"),
    ("invoicePoolSize", -1, ">= 0"),
    ("invoiceExpiry", 100, ">= 600"),
    ("invoicePollInterval", "soon", ">= 1"),
    ("role", "server", "client"),
    ("lnd", {"restUrl": "http://x:8080"}, "https://host:8080"),
    ("lnd", {"restUrl": "https://x:8080", "macaroonPath": "/nonexistent", "tlsCertPath": "/x"}, "cannot read"),
    ("lnd", "x", "must be"),
])
def test_bad_option_is_one_config_error_naming_the_key(key, value, says):
    """Each invalid option is one ConfigError naming accounts.<id>.options.<key>; the RPC password is not echoed."""
    options = {"electrumUrl": "http://u:secret@127.0.0.1:7777", key: value}
    if value is None:
        del options[key]
    with pytest.raises(ConfigError) as error:
        LightningModule(options, account_id="peer", services=plugin_services())
    assert error.value.key.startswith(f"accounts.peer.options.{key}") and says in error.value.problem
    assert "secret" not in str(error.value)


def test_entry_point_names_both_plugins():
    """The hook registers 'lightning' and 'ilp-plugin-lightning', both the settling plugin on LightningModule."""
    plugins = hooks.ilptx_ledger_plugins()
    assert set(plugins) == {"lightning", "ilp-plugin-lightning"}
    services = PluginServices(reactor=FakeNetwork().reactor, log=None, store=MemoryStore())
    plugin = plugins["ilp-plugin-lightning"]({**SETTLING_LISTENER, "electrumUrl": "http://u:p@127.0.0.1:1"},
                                              account_id="x", services=services)
    assert isinstance(plugin.module, LightningModule) and plugin.module.backend.rpc.url == "http://127.0.0.1:1/"


class TestLightningModuleContract(SettlingModuleContract):
    """LightningModule meets the settling module contract (ILedgerPlugin, money both ways, replays, restarts)."""

    def make_pair(self):
        pair = super().make_pair()
        self._ln.clock = pair.network.reactor  # the invoices' time is the plugins' clock
        pair.network.reactor.advance(FakeLightning.EPOCH)
        return pair

    def make_factories(self):
        ln = self._ln = FakeLightning(None)
        a, b = ln.node(), ln.node()
        return factory_on(a), factory_on(b), {"invoicePoolSize": 1}, {"invoicePoolSize": 1}
