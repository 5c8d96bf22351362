"""Two real connectors (build_connector, through ilptx.testing.ConnectorHarness on one fake network and clock)
peered with the framework's settling plugin and the reference Ed25519 channel module: settleThreshold crossed
several times, claims flow, and both connectors' balances and the FakeLedger agree exactly."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ed25519_channel import module_factory

from ilptx.codec.ilp import Fulfill
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import SETTLING_DIALLER, SETTLING_LISTENER, ConnectorHarness, FakeLedger, FakeNetwork, result_of

SEED_A, SEED_B = "11" * 32, "22" * 32
ADDR_A, ADDR_B = (FakeLedger.address_of(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)))
                  for seed in (SEED_A, SEED_B))
ALICE_BALANCE = {"maximum": "5000", "minimum": "-5000", "settleThreshold": "-1000", "settleTo": "0"}
FUNDS = 10 ** 18


class BobHarness(ConnectorHarness):
    ADDRESS = "test.bob"


def test_settle_threshold_crossed_three_times_and_everything_agrees():
    """9 Prepares of 400 from alice to bob: 3 settlements of 1200, 3 claims; balances 0 on both sides, ledger exact."""
    ledger = FakeLedger()
    ledger.fund(ADDR_A, FUNDS)
    ledger.fund(ADDR_B, FUNDS)
    factory = settling_plugin_factory(module_factory(ledger))
    net = FakeNetwork()
    alice = ConnectorHarness(factory, {**SETTLING_LISTENER, "seed": SEED_A}, plugin_prefix="test.bob", network=net,
                             settings={"balance": ALICE_BALANCE})
    bob = BobHarness(factory, {**SETTLING_DIALLER, "seed": SEED_B}, plugin_prefix="test.harness", network=net,
                     settings={"balance": {"maximum": "5000"}})
    alice.start()
    bob.start()
    fulfillments = [bytes([i]) * 32 for i in range(1, 10)]
    bob.receive(fulfillments)
    settled_balances = []
    for fulfillment in fulfillments:
        answer = result_of(alice.send(alice.prepare(400, fulfillment, "test.bob.memory")))
        assert isinstance(answer, Fulfill)
        settled_balances.append(alice.balance())
    assert settled_balances == [-400, -800, 0] * 3
    assert alice.balance() == 0 and bob.balance() == 0
    assert result_of(alice.store.pending_settlements()) == []
    best = result_of(bob.plugin.settlement.best_incoming_claim())
    assert best.value == 3600 * 10 ** 3
    assert result_of(alice.plugin.get_admin_info())["settlement"]["paid"] == "3600"
    assert result_of(bob.plugin.get_admin_info())["settlement"]["credited"] == str(3600 * 10 ** 3)
    net.settle(60)  # bob's channel watcher cashes the best claim
    channel = ledger.channel(alice.plugin.module.channel_id)
    assert channel.claimed == 3600 * 10 ** 3
    assert ledger.balance(ADDR_B) == FUNDS + 3600 * 10 ** 3
    assert ledger.balance(ADDR_A) + channel.amount == FUNDS
    alice.stop()
    bob.stop()
