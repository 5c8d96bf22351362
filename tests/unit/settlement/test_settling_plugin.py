"""The settling-plugin framework (ilptx.settlement.plugin / .engine) with the reference Ed25519 channel module
on a FakeLedger: claims credited once whatever is replayed or forged, payouts paid once across restarts (the
kill -9 points of the engine's docstring), scale leftovers kept, the ledger agreeing with both sides."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ed25519_channel import module_factory
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ilptx.codec.btp import CONTENT_JSON
from ilptx.codec.ilp import Reject, decode_response, encode_packet
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import (
    SETTLING_DIALLER, SETTLING_LISTENER, FakeLedger, failure_of, linked_settling_plugins, plugin_services, result_of,
    server_prepare,
)

SEED_A, SEED_B, SEED_EVE = "11" * 32, "22" * 32, "33" * 32
KEY_A, KEY_B, KEY_EVE = (Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s)) for s in (SEED_A, SEED_B, SEED_EVE))
ADDR_A, ADDR_B = FakeLedger.address_of(KEY_A), FakeLedger.address_of(KEY_B)
FUNDS = 10 ** 18


class World:
    """A ledger, the payer ("plugin": listens, seed A) and the payee ("peer": dials, seed B), each on its own store;
    restart() replaces one side by a new plugin on the same store (a process restart)."""

    def __init__(self, **module_options) -> None:
        self.ledger = FakeLedger()
        for address in (ADDR_A, ADDR_B, FakeLedger.address_of(KEY_EVE)):
            self.ledger.fund(address, FUNDS)
        self.factory = settling_plugin_factory(module_factory(self.ledger))
        self.options = {"plugin": {"seed": SEED_A, **module_options}, "peer": {"seed": SEED_B, **module_options}}
        self.pair = linked_settling_plugins(self.factory, options=self.options["plugin"],
                                            peer_options=self.options["peer"])
        self.net = self.pair.network
        self.stores = {"plugin": self.pair.plugin.settlement.store, "peer": self.pair.peer.settlement.store}
        self.sides = {"plugin": self.pair.plugin, "peer": self.pair.peer}
        self.credited: dict = {"plugin": [], "peer": []}
        self.events: dict = {"plugin": [], "peer": []}
        for side in self.sides:
            self._watch(side)
        self._connect(*self.sides.values())

    def _watch(self, side: str) -> None:
        plugin = self.sides[side]
        plugin.register_money_handler(self.credited[side].append)
        plugin.settlement.log = Logger(observer=self.events[side].append)

    def _connect(self, *plugins) -> None:
        connecting = [maybeDeferred(p.connect) for p in plugins]
        self.net.settle()
        for d in connecting:
            result_of(d)

    def disconnect(self, side: str) -> None:
        d = self.sides[side].disconnect()
        self.net.settle()
        result_of(d)

    def restart(self, side: str) -> None:
        """Drop ``side`` (its Deferreds in flight never fire: the process died) and start a new one on its store."""
        old = self.sides[side]
        self.disconnect(side)
        btp = SETTLING_LISTENER if side == "plugin" else SETTLING_DIALLER
        account = old.account_id
        new = self.factory({**btp, **self.options[side]}, account_id=account,
                           services=plugin_services(self.net.reactor, account_id=account, store=self.stores[side]))
        self.sides[side] = new
        self._watch(side)
        self._connect(new)
        self.net.settle(60)

    @property
    def payer(self):
        return self.sides["plugin"]

    @property
    def payee(self):
        return self.sides["peer"]

    def pay(self, amount: int, key=None):
        d = self.payer.send_money(amount, key)
        self.net.settle()
        return d

    def send_claim(self, claim: dict):
        """Send a hand-made claim from the payer's connection (as a misbehaving peer would)."""
        d = self.payer.settlement.call_peer("claim", json.dumps(claim).encode(), CONTENT_JSON)
        self.net.settle()
        return d

    def channel(self):
        return self.ledger.channel(self.payer.module.channel_id)

    def logged(self, side: str, text: str) -> bool:
        from twisted.logger import formatEvent

        return any(text in formatEvent(e) for e in self.events[side])


def signed(key, channel_id: str, value: int) -> dict:
    signature = FakeLedger.sign_claim(key, channel_id, value).hex()
    return {"channelId": channel_id, "value": str(value), "signature": signature}


def test_payouts_flow_as_cumulative_claims_and_the_ledger_agrees():
    """Three payouts: three claims of rising totals, the payee credited each amount once; cashing moves exactly that."""
    world = World()
    for amount in (1000, 2500, 4):
        assert result_of(world.pay(amount)) is None
    assert world.credited["peer"] == [1000, 2500, 4]
    best = result_of(world.payee.settlement.best_incoming_claim())
    assert best.value == 3504 * 10 ** 3  # ledger scale 12, account scale 9
    world.net.settle(60)  # the payee's channel watcher cashes the best claim
    assert world.ledger.balance(ADDR_B) == FUNDS + 3504 * 10 ** 3
    assert world.channel().claimed == 3504 * 10 ** 3
    assert world.ledger.balance(ADDR_A) == FUNDS - world.channel().amount


def test_replayed_claim_credits_nothing_and_says_so():
    """The last claim sent again is acknowledged but credits nothing; a warning names both totals."""
    world = World()
    result_of(world.pay(700))
    claim = signed(KEY_A, world.payer.module.channel_id, 700 * 10 ** 3)
    assert result_of(world.send_claim(claim)) == ()
    assert world.credited["peer"] == [700]
    assert world.logged("peer", "incoming claim of total 700000 is the same as the best claim 700000; nothing credited")


def test_lower_total_credits_nothing_and_says_so():
    """A validly signed claim below the best total credits nothing; the warning says it is below."""
    world = World()
    result_of(world.pay(700))
    result_of(world.send_claim(signed(KEY_A, world.payer.module.channel_id, 500 * 10 ** 3)))
    assert world.credited["peer"] == [700]
    assert world.logged("peer", "incoming claim of total 500000 is below the best claim 700000; nothing credited")


def test_forged_claims_are_rejected_with_f00_and_credit_nothing():
    """Wrong signer, value above the deposit, a channel not from the peer: F00, nothing credited, a clear log line."""
    world = World(channelAmount=10 ** 6)
    result_of(world.pay(1))
    channel_id = world.payer.module.channel_id
    eve_channel = world.ledger.open_channel(KEY_EVE, ADDR_B, 10 ** 9)
    cases = [
        (signed(KEY_EVE, channel_id, 5 * 10 ** 3), "claim signature does not verify"),
        (signed(KEY_A, channel_id, 2 * 10 ** 6), "is above the deposit"),
        (signed(KEY_EVE, eve_channel, 5 * 10 ** 3), "is not from the peer"),
        ({"channelId": channel_id, "value": "x"}, "unreadable claim"),
    ]
    for claim, why in cases:
        failure = failure_of(world.send_claim(claim))
        assert failure.value.btp_error.code == "F00" and why in failure.value.btp_error.data.decode()
        assert world.logged("peer", "claim from the peer rejected: ") and world.logged("peer", why)
    assert world.credited["peer"] == [1]
    assert world.payee.is_connected()


def test_same_key_is_paid_once_and_a_duplicate_key_with_another_amount_is_refused():
    """send_money with a confirmed key pays nothing again; the same key with another amount errbacks."""
    world = World()
    result_of(world.pay(100, "k1"))
    result_of(world.pay(100, "k1"))
    assert world.credited["peer"] == [100]
    assert "already in the log with other content" in str(failure_of(world.pay(200, "k1")).value)
    assert world.credited["peer"] == [100]


def test_payout_queued_then_restart_is_sent_once():
    """A payout queued while the payee is away survives the payer's restart and is paid once; the key then is done."""
    world = World()
    world.disconnect("peer")
    failure_of(world.pay(900, "owed"))
    info = result_of(world.payer.get_admin_info())
    assert info["settlement"]["queuedPayouts"] == [{"key": "owed", "amount": "900"}]
    world.restart("plugin")
    world._connect(world.payee)
    world.net.settle(60)
    assert world.credited["peer"] == [900]
    assert result_of(world.pay(900, "owed")) is None
    assert world.credited["peer"] == [900]
    assert result_of(world.payer.get_admin_info())["settlement"]["queuedPayouts"] == []


def test_kill_between_signing_a_claim_and_recording_it():
    """The payer dies after signing, before recording: nothing was sent; after restart one claim pays it once."""
    world = World()
    signed_claims = []
    module, tracker = world.payer.module, world.payer.settlement.outgoing_claim
    signing = module.create_claim
    module.create_claim = lambda total: signing(total).addCallback(lambda c: signed_claims.append(c) or c)
    tracker.set_if_max = lambda value, data: Deferred()  # the process dies before the claim is recorded
    outcome: list = []
    world.pay(400, "k").addBoth(outcome.append)
    assert len(signed_claims) == 1 and outcome == [] and world.credited["peer"] == []
    assert result_of(tracker.get_max()).value == 0
    world.restart("plugin")
    assert world.credited["peer"] == [400]
    assert result_of(world.pay(400, "k")) is None and world.credited["peer"] == [400]


def test_kill_after_the_claim_was_sent_before_the_ack():
    """The payer dies after the payee credited the claim but before the ack: after restart it is re-sent, not paid."""
    world = World()
    module = world.payer.module
    sending = module.send_claim

    def sent_then_killed(claim):
        sending(claim)
        return Deferred()  # the ack never reaches the (dead) process

    module.send_claim = sent_then_killed
    world.pay(400, "k")
    assert world.credited["peer"] == [400]
    world.restart("plugin")
    assert world.credited["peer"] == [400]
    assert world.logged("peer", "is the same as the best claim 400000; nothing credited")
    assert result_of(world.pay(400, "k")) is None and world.credited["peer"] == [400]


def test_kill_between_receiving_a_claim_and_crediting_it():
    """The payee dies before recording the credit: after its restart the re-sent claim is credited once."""
    world = World(responseTimeout=1000)
    world.payee.settlement.credit_claim = lambda total, record: Deferred()  # dies before recording
    world.pay(300, "k")
    assert world.credited["peer"] == []
    world.restart("peer")
    world.net.settle(5)  # the payer's attempt timed out and is retried
    assert world.credited["peer"] == [300]
    assert result_of(world.pay(300, "k")) is None and world.credited["peer"] == [300]


def test_credit_recorded_then_restart_is_not_credited_again():
    """The payee dies after recording a credit, inside the money handler: the restart does not credit it again."""
    world = World(responseTimeout=1000)
    seen = []
    world.payee.deregister_money_handler()
    world.payee.register_money_handler(lambda amount: seen.append(amount) or Deferred())  # dies in there
    world.pay(300, "k")
    assert seen == [300]
    world.restart("peer")
    world.net.settle(5)
    assert world.credited["peer"] == []
    assert world.logged("peer", "was recorded before a restart but not confirmed as applied")
    assert result_of(world.payee.get_admin_info())["settlement"]["unconfirmedCredits"] == ["claim:300000"]
    assert result_of(world.pay(300, "k")) is None and world.credited["peer"] == []


def test_leftover_below_one_ledger_unit_is_carried_not_dropped():
    """Ledger coarser than the account (scale 6 vs 9): 1500 + 1500 units are claimed as 1 then 3 ledger units."""
    world = World(ledgerScale=6)
    result_of(world.pay(1500))
    assert result_of(world.payer.settlement.best_outgoing_claim()).value == 1
    result_of(world.pay(1500))
    assert result_of(world.payer.settlement.best_outgoing_claim()).value == 3
    assert world.credited["peer"] == [1000, 2000]


def test_incoming_leftover_below_one_account_unit_is_carried():
    """Claims of 1500 then 2600 ledger units (scale 12) credit 1 then 1 account unit: the 600 is kept in the total."""
    world = World()
    result_of(world.pay(1))
    channel_id = world.payer.module.channel_id
    for value in (1500 + 1000, 2600 + 1000):
        result_of(world.send_claim(signed(KEY_A, channel_id, value)))
    assert world.credited["peer"] == [1, 1, 1]
    result_of(world.send_claim(signed(KEY_A, channel_id, 4000)))
    assert world.credited["peer"] == [1, 1, 1, 1]


def _queue_a_failed_payout(world) -> None:
    """A payout of 250 (key "k") whose claim cannot be signed once (the ledger is down): it errbacks, stays queued."""
    module = world.payer.module
    real = module.create_claim
    module.create_claim = lambda total: (_ for _ in ()).throw(RuntimeError("ledger down"))
    failure_of(world.pay(250, "k"))
    module.create_claim = real


def test_failing_payout_stays_queued_and_is_retried_on_the_clock():
    """A claim that cannot be signed (ledger refuses the deposit) errbacks, stays queued, and is paid on a retry."""
    world = World()
    _queue_a_failed_payout(world)
    assert world.credited["peer"] == []
    world.net.settle(1)
    assert world.credited["peer"] == [250]


def _answer_with(world, code: str):
    """The payee answers every Prepare with a Reject of ``code``; the payer sends one. :returns: the answer."""
    world.payee.deregister_data_handler()
    world.payee.register_data_handler(lambda data: encode_packet(Reject(code, "test.peer", "no", b"")))
    d = world.payer.send_data(server_prepare("test.peer.x", 10))
    world.net.settle()
    return decode_response(result_of(d))


def test_t04_from_the_peer_sends_the_best_claim_again_and_credits_nothing_twice():
    """A T04 Reject of our Prepare re-sends our best claim (the same bytes); the payee acknowledges it, credits nothing
    more; the Reject itself reaches the connector unchanged. Any other Reject sends nothing."""
    world = World()
    result_of(world.pay(1000))
    sent = []
    real = world.payer.module.send_claim
    world.payer.module.send_claim = lambda claim: (sent.append(claim), real(claim))[1]
    assert _answer_with(world, "T02").code == "T02" and sent == []
    answer = _answer_with(world, "T04")
    assert type(answer) is Reject and answer.code == "T04"
    best = result_of(world.payer.settlement.best_outgoing_claim())
    assert sent == [best.data]
    assert world.credited["peer"] == [1000]


def test_t04_from_the_peer_pays_a_queued_payout_without_waiting_for_the_retry():
    """A payout that failed stays queued; a T04 from the peer pays it at once (no clock advance), once."""
    world = World()
    _queue_a_failed_payout(world)
    _answer_with(world, "T04")
    assert world.credited["peer"] == [250]
    world.net.settle(120)  # the retry timer finds nothing left to pay
    assert world.credited["peer"] == [250]


def test_is_t04_reject_reads_only_rejects():
    """is_t04_reject: True for a T04 Reject only; a T02 Reject, a Fulfill, b"" and garbage are False."""
    from ilptx.codec.ilp import Fulfill
    from ilptx.settlement.plugin import is_t04_reject

    assert is_t04_reject(encode_packet(Reject("T04", "test.x", "", b"")))
    assert not is_t04_reject(encode_packet(Reject("T02", "test.x", "", b"")))
    assert not is_t04_reject(encode_packet(Fulfill(b"\x00" * 32, b"")))
    assert not is_t04_reject(b"") and not is_t04_reject(b"\x0e\xff")


def test_send_money_after_disconnect_errbacks_t01_and_stays_queued():
    """send_money on a disconnected plugin fails at once with PeerUnreachableError (no hang); it stays queued."""
    from ilptx.errors import PeerUnreachableError

    world = World()
    world.disconnect("plugin")
    assert failure_of(world.pay(80, "late")).check(PeerUnreachableError)
    info = result_of(world.payer.settlement.admin_info())
    assert info["queuedPayouts"] == [{"key": "late", "amount": "80"}]


def test_factory_refuses_a_module_without_the_interface_and_a_bad_watcher_interval():
    """A module not providing ISettlementModule, or a negative channelWatcherInterval: a ConfigError naming the key."""
    import pytest

    from ilptx.errors import ConfigError

    services = plugin_services(account_id="x")
    bad_module = settling_plugin_factory(lambda options, *, account_id, services: object())
    with pytest.raises(ConfigError, match=r"accounts\.x\.plugin.*does not provide ISettlementModule"):
        bad_module(dict(SETTLING_LISTENER), account_id="x", services=services)
    factory = settling_plugin_factory(module_factory(FakeLedger()))
    with pytest.raises(ConfigError, match=r"accounts\.x\.options\.channelWatcherInterval"):
        factory({**SETTLING_LISTENER, "seed": SEED_A, "channelWatcherInterval": -1}, account_id="x",
                services=services)
