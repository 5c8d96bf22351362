"""Every built-in middleware pins its ILP code and data; the pipeline order decides which error wins.

Connectors are built by the real composition root (:func:`ilptx.node.build_connector`) with
in-memory plugins, a MemoryStore and a fake clock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer

from ilptx.codec.ilp import AmountTooLargeData, Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.codec.oer import encode_var_octet_string
from ilptx.config import parse_config
from ilptx.core.balances import BalanceState
from ilptx.core.middleware import Middleware
from ilptx.core.middleware.echo import ECHO_DATA_PREFIX
from ilptx.core.stats import CountingStats
from ilptx.errors import PeerUnreachableError
from ilptx.interfaces import IMiddleware
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, fulfilling_handler

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FULFILLMENT = b"\x11" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def child(**settings):
    return {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, **settings}


class Net:
    """A connector test.node with child accounts alice and bob (settings per test)."""

    def __init__(self, alice=None, bob=None, custom=None, store=None, **top):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.clients: dict[str, MemoryPlugin] = {}
        self.store = store if store is not None else MemoryStore()
        self.stats = CountingStats()
        data = {"ilpAddress": "test.node", "spread": 0,
                "accounts": {"alice": child(**(alice or {})), "bob": child(**(bob or {}))}, **top}
        self.connector = build_connector(parse_config(data), reactor=self.clock,
                                         plugin_factories={"mem": self._factory}, store=self.store,
                                         stats=self.stats, custom_middleware_factories=custom or {})
        self.connector.startService()
        for client in self.clients.values():
            client.connect()
        self.bob_handler = fulfilling_handler([FULFILLMENT], address="test.node.bob")
        self.clients["bob"].register_data_handler(self.bob_handler)

    def _factory(self, options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        self.clients[account_id] = client
        return plugin

    def prepare(self, amount=10, destination="test.node.bob.x", data=b"", condition=CONDITION, expires_in=10):
        expires = EPOCH + timedelta(seconds=self.clock.seconds() + expires_in)
        return Prepare(amount, expires, condition, destination, data)

    def send(self, packet, account="alice") -> Deferred:
        """:returns: Deferred[Fulfill | Reject]."""
        return self.clients[account].send_data(encode_packet(packet)).addCallback(decode_response)

    def result(self, packet, account="alice"):
        out = []
        self.send(packet, account).addCallback(out.append)
        assert out, "no synchronous answer"
        return out[0]

    def balance(self, account_id):
        return self.store.balances[account_id].balance if account_id in self.store.balances else 0


# -- rateLimit ----------------------------------------------------------------------------

def test_rate_limit_rejects_with_t05_and_refills():
    """rateLimit: T05 'too many requests, throttling.' when the bucket is empty; it refills over refillPeriod."""
    net = Net(alice={"rateLimit": {"capacity": 2, "refillCount": 1, "refillPeriod": 1000}})
    assert isinstance(net.result(net.prepare(data=b"1")), Fulfill)
    assert isinstance(net.result(net.prepare(data=b"2")), Fulfill)
    limited = net.result(net.prepare(data=b"3"))
    assert (limited.code, limited.message, limited.triggered_by) == (
        "T05", "too many requests, throttling.", "test.node")
    assert net.stats.counts[("rate_limited_packet", "alice")] == 1
    net.clock.advance(1.0)
    assert isinstance(net.result(net.prepare(data=b"4")), Fulfill)


def test_rate_limit_default_is_10000_per_minute():
    """rateLimit defaults to the reference's 10000 packets per 60000 ms."""
    net = Net()
    bucket = next(m for m in net.connector.switch.pipelines["alice"].middlewares if m.name == "rateLimit").bucket
    assert bucket.tokens == 10000
    for _ in range(10000):
        assert bucket.take()
    assert not bucket.take()
    net.clock.advance(0.006)  # 10000 / 60000 ms → one token per 6 ms
    assert bucket.take() and not bucket.take()


# -- maxPacketAmount ------------------------------------------------------------------------

def test_max_packet_amount_f08_carries_received_and_maximum():
    """maxPacketAmount: F08 whose data is (received amount, maximum) as two UInt64 (RFC 27)."""
    net = Net(alice={"maxPacketAmount": "100"})
    assert isinstance(net.result(net.prepare(amount=100)), Fulfill)
    reject = net.result(net.prepare(amount=101))
    assert reject.code == "F08"
    assert reject.message == "packet size too large. maxAmount=100 actualAmount=101"
    assert AmountTooLargeData.decode(reject.data) == AmountTooLargeData(101, 100)
    assert len(net.bob_handler.received) == 1


# -- throughput -------------------------------------------------------------------------------

def test_throughput_incoming_t04_per_refill_period():
    """throughput.incomingAmount: T04 'exceeded money bandwidth, throttling.' past the amount per period."""
    net = Net(alice={"throughput": {"incomingAmount": "100", "refillPeriod": 1000}})
    assert isinstance(net.result(net.prepare(amount=60, data=b"a")), Fulfill)
    reject = net.result(net.prepare(amount=60, data=b"b"))
    assert (reject.code, reject.message) == ("T04", "exceeded money bandwidth, throttling.")
    net.clock.advance(0.6)  # 60 units refilled
    assert isinstance(net.result(net.prepare(amount=60, data=b"c")), Fulfill)


def test_throughput_outgoing_t04():
    """throughput.outgoingAmount limits value sent to the account."""
    net = Net(bob={"throughput": {"outgoingAmount": "50"}})
    assert isinstance(net.result(net.prepare(amount=50, data=b"a")), Fulfill)
    assert net.result(net.prepare(amount=1, data=b"b")).code == "T04"
    assert len(net.bob_handler.received) == 1


# -- balance ------------------------------------------------------------------------------------

def test_balance_incoming_maximum_t04_and_reservations_count():
    """balance.maximum: T04 'exceeded maximum balance.'; in-flight Prepares count; Rejects release."""
    net = Net(alice={"balance": {"maximum": "100"}})
    assert isinstance(net.result(net.prepare(amount=60, data=b"a")), Fulfill)
    assert net.balance("alice") == 60
    reject = net.result(net.prepare(amount=50, data=b"b"))
    assert (reject.code, reject.message) == ("T04", "exceeded maximum balance.")
    # a Prepare the receiver rejects leaves the balance as it was
    assert net.result(net.prepare(amount=40, data=b"c", condition=b"\x00" * 32)).code == "F05"
    assert net.balance("alice") == 60 and net.store.balances["alice"].incoming_reserved == 0
    # two in flight: the second sees the first's reservation
    hold = Deferred()
    net.clients["bob"].deregister_data_handler()
    net.clients["bob"].register_data_handler(lambda data: hold)
    first, second = [], []
    net.send(net.prepare(amount=30, data=b"d")).addCallback(first.append)
    net.send(net.prepare(amount=30, data=b"e")).addCallback(second.append)
    assert second[0].code == "T04" and first == []
    hold.callback(encode_packet(Fulfill(FULFILLMENT, b"")))
    assert isinstance(first[0], Fulfill) and net.balance("alice") == 90


def test_balance_outgoing_minimum_checked_before_forwarding():
    """balance.minimum: T04 before forwarding, so the connector never forwards money it cannot afford."""
    net = Net(bob={"balance": {"minimum": "-100", "maximum": "0"}})
    assert isinstance(net.result(net.prepare(amount=70, data=b"a")), Fulfill)
    assert net.balance("bob") == -70
    reject = net.result(net.prepare(amount=40, data=b"b"))
    assert reject.code == "T04" and reject.message.startswith("insufficient funds.")
    assert len(net.bob_handler.received) == 1  # the second Prepare never reached bob
    assert net.balance("bob") == -70


def test_balance_outgoing_released_on_timeout():
    """An outgoing reservation is released when the next hop times out (R00)."""
    net = Net(bob={"balance": {"minimum": "-100", "maximum": "0"}})
    net.clients["bob"].deregister_data_handler()
    net.clients["bob"].register_data_handler(lambda data: Deferred())
    out = []
    net.send(net.prepare(amount=80, expires_in=5)).addCallback(out.append)
    assert net.store.balances["bob"].outgoing_reserved == 80
    net.clock.advance(5)
    assert out[0].code == "R00"
    assert net.store.balances["bob"].outgoing_reserved == 0 and net.balance("bob") == 0


def test_settlement_triggered_below_threshold_and_counted_once():
    """Below settleThreshold the plugin is asked to send settleTo - balance, once, with an idempotency key."""
    net = Net(bob={"balance": {"minimum": "-1000", "maximum": "0", "settleThreshold": "-50", "settleTo": "0"}})
    bob_plugin = net.connector.accounts.get("bob").plugin
    assert isinstance(net.result(net.prepare(amount=40, data=b"a")), Fulfill)
    assert bob_plugin.sent_money == []  # -40 is above the threshold
    assert isinstance(net.result(net.prepare(amount=30, data=b"b")), Fulfill)
    assert bob_plugin.sent_money == [70] and bob_plugin.money_keys[0]
    assert net.balance("bob") == 0 and net.store.outbox == {}
    assert net.stats.values[("outgoing_money", "bob", "succeeded")] == 70


def test_failed_settlement_is_retried_with_the_same_key_never_doubled():
    """A failed settlement stays in the outbox, is retried with the same key, and counts once."""
    net = Net(bob={"balance": {"minimum": "-1000", "maximum": "0", "settleThreshold": "-50", "settleTo": "0"}})
    bob_plugin = net.connector.accounts.get("bob").plugin
    bob_plugin.fail_money = PeerUnreachableError("peer down")
    assert isinstance(net.result(net.prepare(amount=60, data=b"a")), Fulfill)
    assert bob_plugin.sent_money == [] and len(net.store.outbox) == 1
    assert net.store.balances["bob"].settling == 60 and net.balance("bob") == -60
    # more packets do not start a second settlement while one is pending
    assert isinstance(net.result(net.prepare(amount=5, data=b"b")), Fulfill)
    assert len(net.store.outbox) == 1
    net.clock.advance(1)
    assert len(bob_plugin.money_keys) == 2 and bob_plugin.money_keys[0] == bob_plugin.money_keys[1]
    bob_plugin.fail_money = None
    net.clock.advance(2)
    assert bob_plugin.sent_money == [60]
    assert bob_plugin.money_keys[-1] == bob_plugin.money_keys[0]
    assert net.balance("bob") == -5 and net.store.outbox == {} and net.store.balances["bob"].settling == 0
    net.clock.advance(120)
    assert bob_plugin.sent_money == [60]


class SlowOutboxStore(MemoryStore):
    """A MemoryStore whose outbox writes (add_settlement) wait for the test."""

    def __init__(self):
        super().__init__()
        self.writes: list[Deferred] = []

    def add_settlement(self, settlement_id, account_id, amount):
        done = super().add_settlement(settlement_id, account_id, amount)
        gate = Deferred()
        self.writes.append(gate)
        return gate.addCallback(lambda _: done)


def test_fulfills_while_a_settlement_is_recorded_are_settled_once_it_is():
    """Fulfills that land while a settlement is being written to the outbox are not forgotten: once the write is
    done the threshold is checked again and the rest is settled (balance back to settleTo, nothing paid twice)."""
    net = Net(bob={"balance": {"minimum": "-1000", "maximum": "0", "settleThreshold": "-50", "settleTo": "0"}},
              store=SlowOutboxStore())
    bob_plugin = net.connector.accounts.get("bob").plugin
    assert isinstance(net.result(net.prepare(amount=60, data=b"a")), Fulfill)
    assert len(net.store.writes) == 1 and bob_plugin.sent_money == []  # the outbox write of 60 is under way
    assert isinstance(net.result(net.prepare(amount=70, data=b"b")), Fulfill)
    assert len(net.store.writes) == 1  # no second settlement while the first is being recorded
    net.store.writes[0].callback(None)
    assert bob_plugin.sent_money == [60] and len(net.store.writes) == 2  # the 70 is recorded in its turn
    net.store.writes[1].callback(None)
    assert bob_plugin.sent_money == [60, 70]
    assert net.balance("bob") == 0 and net.store.outbox == {} and net.store.balances["bob"].settling == 0


def test_money_received_reduces_what_the_peer_owes():
    """A settlement from the peer (money handler) takes the amount off its balance."""
    net = Net(alice={"balance": {"maximum": "1000"}})
    assert isinstance(net.result(net.prepare(amount=100)), Fulfill)
    net.clients["alice"].send_money(30)
    assert net.balance("alice") == 70
    assert net.stats.values[("incoming_money", "alice", "succeeded")] == 30


def test_verified_settlement_below_minimum_is_recorded_and_logged_loudly(monkeypatch):
    """A verified settlement is booked even past balance.minimum, with an error naming account, amount, balance."""
    from twisted.logger import Logger, LogLevel

    from ilptx.core.middleware import balance

    events = []
    monkeypatch.setattr(balance, "log", Logger(observer=events.append))
    net = Net(alice={"balance": {"minimum": "-50", "maximum": "1000"}})
    net.clients["alice"].send_money(30)
    assert net.balance("alice") == -30 and events == []
    net.clients["alice"].send_money(70)
    assert net.balance("alice") == -100
    (event,) = events
    assert event["log_level"] is LogLevel.error
    assert (event["account"], event["amount"], event["balance"], event["minimum"]) == ("alice", 70, -100, -50)


# -- echo --------------------------------------------------------------------------------------

def test_echo_request_is_sent_back_to_its_source():
    """echo: a request to our own address goes back to the source address as an echo response."""
    net = Net()
    alice_handler = fulfilling_handler([FULFILLMENT], address="test.node.alice")
    net.clients["alice"].register_data_handler(alice_handler)
    data = ECHO_DATA_PREFIX + b"\x00" + encode_var_octet_string(b"test.node.alice.me")
    assert isinstance(net.result(net.prepare(amount=7, destination="test.node", data=data)), Fulfill)
    (echoed,) = alice_handler.received
    assert echoed.destination == "test.node.alice.me" and echoed.data == ECHO_DATA_PREFIX + b"\x01"
    assert echoed.amount == 7 and echoed.execution_condition == CONDITION


@pytest.mark.parametrize("data, message", [
    (b"ECHO", "packet data too short for echo request. length=4"),
    (b"X" * 16 + b"\x00", "packet data does not start with ECHO prefix."),
    (ECHO_DATA_PREFIX + b"\x01", "unexpected ping response."),
])
def test_bad_echo_is_f01(data, message):
    """echo: malformed echo data gives F01 with the reference's message."""
    net = Net()
    reject = net.result(net.prepare(destination="test.node", data=data))
    assert (reject.code, reject.message) == ("F01", message)


# -- deduplicate ----------------------------------------------------------------------------------

def test_deduplicate_shares_one_outcome():
    """deduplicate: the same destination, condition and data in flight are forwarded once."""
    net = Net()
    hold = Deferred()
    net.clients["bob"].deregister_data_handler()
    seen = []
    net.clients["bob"].register_data_handler(lambda data: (seen.append(data), hold)[1])
    first, second = [], []
    net.send(net.prepare(data=b"same")).addCallback(first.append)
    net.send(net.prepare(data=b"same")).addCallback(second.append)
    assert len(seen) == 1
    hold.callback(encode_packet(Fulfill(FULFILLMENT, b"ok")))
    assert first == second == [Fulfill(FULFILLMENT, b"ok")]
    net.send(net.prepare(data=b"other"))
    assert len(seen) == 2


def test_deduplicate_cleanup_forgets_old_packets():
    """deduplicate: entries go packetLifetime after their expiry."""
    net = Net(bob={"deduplicate": {"cleanupInterval": 1000, "packetLifetime": 1000}})
    net.result(net.prepare(data=b"x", expires_in=3))
    dedup = next(m for m in net.connector.switch.pipelines["bob"].middlewares if m.name == "deduplicate")
    assert len(dedup.cache) == 1
    net.clock.advance(3)
    assert len(dedup.cache) == 1
    net.clock.advance(2)
    assert dedup.cache == {}


# -- stats ---------------------------------------------------------------------------------------

def test_stats_count_results_codes_and_value():
    """stats: incoming and outgoing packets by result and code, with their value."""
    net = Net()
    net.result(net.prepare(amount=5, data=b"1"))
    net.result(net.prepare(amount=3, data=b"2", condition=b"\x00" * 32))
    net.result(net.prepare(amount=2, destination="g.nowhere"))
    assert net.stats.counts[("incoming", "alice", "fulfilled", "")] == 1
    assert net.stats.counts[("incoming", "alice", "rejected", "F05")] == 1
    assert net.stats.counts[("incoming", "alice", "failed", "F02")] == 1
    assert net.stats.values[("outgoing", "bob", "fulfilled", "")] == 5
    assert net.stats.counts[("outgoing", "bob", "rejected", "F05")] == 1


# -- alert -----------------------------------------------------------------------------------------

def test_alert_on_peer_t04_exceeded_maximum_balance():
    """alert: a T04 'exceeded maximum balance.' from the next hop becomes an alert; the Reject is relayed."""
    net = Net()
    reject = Reject("T04", "test.node.bob", "exceeded maximum balance.", b"")
    net.clients["bob"].deregister_data_handler()
    net.clients["bob"].register_data_handler(lambda data: encode_packet(reject))
    assert net.result(net.prepare(data=b"1")) == reject
    assert net.result(net.prepare(data=b"2")) == reject
    (alert,) = net.connector.alerts.list()
    assert (alert.account_id, alert.triggered_by, alert.count) == ("bob", "test.node.bob", 2)
    assert net.connector.alerts.dismiss(alert.id) and net.connector.alerts.list() == []


# -- order -----------------------------------------------------------------------------------------

def test_order_rate_limit_beats_max_packet_amount_beats_balance():
    """Incoming order: rateLimit (T05) before maxPacketAmount (F08) before throughput/balance (T04)."""
    net = Net(alice={"rateLimit": {"capacity": 1, "refillCount": 1, "refillPeriod": 60000},
                     "maxPacketAmount": "10", "balance": {"maximum": "5"}})
    assert net.result(net.prepare(amount=50)).code == "F08"  # over max packet and max balance: F08 wins
    assert net.result(net.prepare(amount=50)).code == "T05"  # now also rate limited: T05 wins
    net2 = Net(alice={"maxPacketAmount": "100", "throughput": {"incomingAmount": "10"}, "balance": {"maximum": "5"}})
    assert net2.result(net2.prepare(amount=50)).message == "exceeded money bandwidth, throttling."  # before balance


def test_order_outgoing_deduplicate_before_balance():
    """Outgoing order: a copy of a fulfilled Prepare gets the cached Fulfill, no second charge; a new one gets T04."""
    net = Net(bob={"balance": {"minimum": "-10", "maximum": "0"}})
    assert isinstance(net.result(net.prepare(amount=10, data=b"dup")), Fulfill)
    assert net.result(net.prepare(amount=10, data=b"dup")) == net.result(net.prepare(amount=10, data=b"dup"))
    assert isinstance(net.result(net.prepare(amount=10, data=b"dup")), Fulfill)
    assert net.balance("bob") == -10 and len(net.bob_handler.received) == 1
    assert net.result(net.prepare(amount=10, data=b"new")).code == "T04"


def test_duplicates_move_the_outgoing_balance_once():
    """Six copies of one Prepare, in flight together: the next hop sees one, bob's balance moves once."""
    net = Net(bob={"balance": {"minimum": "-1000", "maximum": "0"}})
    hold = Deferred()
    net.clients["bob"].deregister_data_handler()
    seen = []
    net.clients["bob"].register_data_handler(lambda data: (seen.append(data), hold)[1])
    answers = []
    for _ in range(6):
        net.send(net.prepare(amount=25, data=b"six")).addCallback(answers.append)
    assert len(seen) == 1 and net.store.balances["bob"].outgoing_reserved == 25
    hold.callback(encode_packet(Fulfill(FULFILLMENT, b"")))
    assert answers == [Fulfill(FULFILLMENT, b"")] * 6
    assert net.store.balances["bob"] == BalanceState(balance=-25)


def test_pipeline_orders_match_the_reference_but_deduplicate_first():
    """The composed pipelines list the built-ins in the reference's order, except deduplicate before balance."""
    from ilptx.core.middleware import INCOMING_ORDER, OUTGOING_ORDER

    assert INCOMING_ORDER == ("errorHandler", "rateLimit", "maxPacketAmount", "throughput", "balance", "echo", "stats")
    assert OUTGOING_ORDER == ("throughput", "deduplicate", "balance", "expire", "validateFulfillment", "stats", "alert")


def test_disable_middleware_removes_a_builtin():
    """disableMiddleware: a disabled rateLimit no longer rejects."""
    net = Net(alice={"rateLimit": {"capacity": 1, "refillCount": 1}}, disableMiddleware=["rateLimit"])
    for i in range(5):
        assert isinstance(net.result(net.prepare(data=bytes([i]))), Fulfill)
    names = [m.name for m in net.connector.switch.pipelines["alice"].middlewares]
    assert "rateLimit" not in names and "balance" not in names  # no balance settings either


def test_custom_middleware_from_config_runs_after_builtins():
    """A middleware type from the hook, named in config, runs after the built-ins on its account."""
    calls = []

    @implementer(IMiddleware)
    class Tag(Middleware):
        name = "tag"

        def __init__(self, options):
            self.label = options["label"]

        def incoming(self, account, prepare, next_handler):
            calls.append((self.label, account.id, prepare.amount))
            return next_handler(account, prepare)

    net = Net(alice={"maxPacketAmount": "10"}, custom={"tagger": lambda options, account, services: Tag(options)},
              middlewares={"mytag": {"type": "tagger", "options": {"label": "L"}}})
    net.result(net.prepare(amount=5))
    assert calls == [("L", "alice", 5)]
    assert net.result(net.prepare(amount=50)).code == "F08"
    assert len(calls) == 1  # maxPacketAmount (a built-in) ran first and stopped it


def test_unknown_custom_middleware_type_stops_startup():
    """A middlewares entry with an unknown type names the key."""
    from ilptx.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Net(middlewares={"x": {"type": "nope"}})
    assert str(info.value) == "middlewares.x.type: unknown middleware type 'nope'; installed: none"


class GatedStore(MemoryStore):
    """A MemoryStore whose durable steps (fulfilled incoming settle, outgoing reserve) wait for the test."""

    def __init__(self):
        super().__init__()
        self.gates: list[tuple[str, Deferred]] = []

    def _gate(self, what, value):
        d = Deferred()
        self.gates.append((what, d))
        return d.addCallback(lambda _: value)

    def settle_incoming(self, account_id, amount, fulfilled):
        state = super().settle_incoming(account_id, amount, fulfilled).result
        return self._gate("commit", state) if fulfilled else _fired(state)

    def reserve_outgoing(self, account_id, amount, minimum):
        ok = super().reserve_outgoing(account_id, amount, minimum).result
        return self._gate("reserve", ok) if ok else _fired(ok)


def _fired(value):
    d = Deferred()
    d.callback(value)
    return d


def test_fulfill_is_relayed_only_after_the_commit_is_durable():
    """The sender gets the Fulfill only once the store says the incoming commit is durable."""
    net = Net(alice={"balance": {"maximum": "1000"}}, bob={"balance": {"minimum": "-1000", "maximum": "0"}},
              store=GatedStore())
    out = []
    net.send(net.prepare(amount=5, data=b"g1")).addCallback(out.append)
    (what, gate), = [(w, g) for w, g in net.store.gates if w == "reserve"]
    assert net.bob_handler.received == []  # not forwarded before the outgoing reservation is durable
    gate.callback(None)
    assert len(net.bob_handler.received) == 1 and out == []  # bob fulfilled; the sender still waits
    (what, commit), = [(w, g) for w, g in net.store.gates if w == "commit"]
    commit.callback(None)
    assert out == [Fulfill(FULFILLMENT, b"")]
