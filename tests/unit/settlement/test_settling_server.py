"""The server role of the settling-plugin framework (ilptx.settlement.server) with the reference Ed25519
channel module on a FakeLedger and two clients over BTP on a FakeNetwork: one settlement account per client,
per-client balances in the store, payouts driven by the clients' Fulfills, restarts and crashes losing
nothing and doubling nothing."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ed25519_channel import module_factory
from twisted.internet.defer import Deferred
from twisted.logger import Logger, formatEvent

from ilptx.codec.btp import CONTENT_JSON, ProtocolDataEntry, Transfer
from ilptx.codec.ilp import Fulfill, Reject, decode_response, encode_packet
from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.settlement.plugin import SettlingPlugin, settling_plugin_factory
from ilptx.settlement.server import SettlingServerPlugin
from ilptx.stores.sqlite import SqliteStore
from ilptx.testing import (
    SERVER_FULFILLMENT, FakeLedger, FakeNetwork, SettlingServerModuleContract, failure_of, fulfilling_handler,
    linked_settling_server, plugin_services, result_of,
)
from test_settlement_model import InlineExecutor

SEEDS = {"server": "44" * 32, "alice": "55" * 32, "bob": "66" * 32}
KEYS = {name: Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)) for name, seed in SEEDS.items()}
ADDR = {name: FakeLedger.address_of(key) for name, key in KEYS.items()}
FUNDS = 10 ** 18
MILLI = 10 ** 3  # ledger scale 12, account scale 9


class World:
    """A FakeLedger, a settling server (seed "server") and clients alice and bob, each on its own store."""

    def __init__(self, network=None, store=None, **server_options) -> None:
        self.ledger = FakeLedger()
        for address in ADDR.values():
            self.ledger.fund(address, FUNDS)
        self.factory = settling_plugin_factory(module_factory(self.ledger))
        self.setup = linked_settling_server(
            self.factory, network=network, store=store, options={"seed": SEEDS["server"], **server_options},
            client_options={name: {"seed": SEEDS[name]} for name in ("alice", "bob")})
        self.credited: list = []
        self.events: list = []
        self.got = {"alice": [], "bob": []}
        self.client_handlers = {}
        for name, client in self.setup.clients.items():
            client.register_money_handler(self.got[name].append)
            handler = self.client_handlers[name] = fulfilling_handler([SERVER_FULFILLMENT], f"test.server.{name}")
            client.register_data_handler(handler)
        self._watch_server()
        self.setup.connect()
        self.setup.settle(1)

    def _watch_server(self) -> None:
        server = self.setup.server
        server.register_money_handler(self.credited.append)
        server.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.server"))
        server._log = Logger(observer=self.events.append)

    @property
    def server(self) -> SettlingServerPlugin:
        return self.setup.server

    def client(self, name: str) -> SettlingPlugin:
        return self.setup.clients[name]

    def prefund(self, name: str, amount: int) -> None:
        d = self.client(name).send_money(amount)
        self.setup.settle()
        assert result_of(d) is None

    def balance(self, store_id: str):
        return result_of(self.setup.store.get_balance(store_id))

    def receivable(self, name: str) -> int:
        return self.balance(self.server.client_account_id(name)).balance

    def restart_server(self) -> None:
        self.setup.restart_server()
        self._watch_server()
        d = self.server.connect()
        self.setup.settle(10)  # the clients' BTP reconnect
        result_of(d)
        self.setup.settle(10)

    def logged(self, text: str) -> bool:
        return any(text in formatEvent(e) for e in self.events)


def send_signed_claim(world: World, sender: str, signer: str, channel: str, value: int) -> Deferred:
    """``sender`` sends the server a claim on ``channel`` for ``value`` (ledger units) signed by ``signer``."""
    claim = {"channelId": channel, "value": str(value),
             "signature": FakeLedger.sign_claim(KEYS[signer], channel, value).hex()}
    d = world.client(sender).settlement.call_peer("claim", json.dumps(claim).encode(), CONTENT_JSON)
    world.setup.settle()
    return d


def reply_type(reply: bytes):
    return type(decode_response(reply))


class TestServerContract(SettlingServerModuleContract):
    """The reference module passes the framework's server-role contract."""

    def make_setup(self):
        ledger = FakeLedger()
        for address in ADDR.values():
            ledger.fund(address, FUNDS)
        return linked_settling_server(settling_plugin_factory(module_factory(ledger)),
                                      options={"seed": SEEDS["server"]},
                                      client_options={name: {"seed": SEEDS[name]} for name in ("alice", "bob")})


def test_role_picks_the_class_and_a_bad_role_is_a_config_error():
    """role server gives a SettlingServerPlugin, client (the default) a SettlingPlugin, another role a ConfigError."""
    factory = settling_plugin_factory(module_factory(FakeLedger()))
    server = factory({"role": "server", "seed": SEEDS["server"], "listener": {"port": 1}}, account_id="s",
                     services=plugin_services())
    client = factory({"seed": SEEDS["alice"], "server": "btp+ws://a:b@localhost:1/"}, account_id="c",
                     services=plugin_services())
    assert type(server) is SettlingServerPlugin and type(client) is SettlingPlugin
    with pytest.raises(ConfigError) as error:
        factory({"role": "peer", "seed": SEEDS["alice"]}, account_id="x", services=plugin_services())
    assert "accounts.x.options.role" in str(error.value) and "'peer'" in str(error.value)


def test_bad_module_options_stop_the_server_at_construction():
    """The module's own option errors surface when the server plugin is built, not at a client's first login."""

    def strict(options, *, account_id, services):
        raise ConfigError(f"accounts.{account_id}.options.seed", "required")

    factory = settling_plugin_factory(strict)
    with pytest.raises(ConfigError) as error:
        factory({"role": "server", "listener": {"port": 1}}, account_id="s", services=plugin_services())
    assert error.value.key == "accounts.s.options.seed"


def test_each_client_gets_its_own_settlement_account_and_channel():
    """Two clients prefunding: each credited once, on its own channel, under <account>:<client> keys."""
    world = World()
    world.prefund("alice", 1000)
    world.prefund("bob", 250)
    assert world.credited == [1000, 250]
    assert (world.receivable("alice"), world.receivable("bob")) == (-1000, -250)
    alice, bob = world.server.accounts["alice"], world.server.accounts["bob"]
    assert (alice.settlement.key_prefix, bob.settlement.key_prefix) == (
        "ed25519-channel:clients:alice", "ed25519-channel:clients:bob")
    assert alice.module.incoming_channel == world.client("alice").module.channel_id
    assert bob.module.incoming_channel == world.client("bob").module.channel_id != alice.module.incoming_channel
    assert result_of(alice.settlement.best_incoming_claim()).value == 1000 * MILLI
    assert result_of(bob.settlement.best_incoming_claim()).value == 250 * MILLI


def test_prefunded_client_packets_are_forwarded_until_the_maximum():
    """Max balance 0 (the JS server's): a Prepare without prefunding is T04; within the prefund it is forwarded."""
    world = World()
    refused = decode_response(world.setup.pay_server("alice", 10))
    assert type(refused) is Reject and refused.code == "T04"
    world.prefund("alice", 600)
    assert reply_type(world.setup.pay_server("alice", 400)) is Fulfill
    assert world.receivable("alice") == -200
    over = decode_response(world.setup.pay_server("alice", 201))
    assert type(over) is Reject and over.code == "T04"
    assert reply_type(world.setup.pay_server("alice", 200)) is Fulfill
    assert world.receivable("alice") == 0 and world.receivable("bob") == 0


def test_client_maximum_option_lets_a_client_owe_us():
    """clientBalance.maximum "500": alice may owe up to 500 without prefunding; 501 is T04."""
    world = World(clientBalance={"maximum": "500"})
    assert reply_type(world.setup.pay_server("alice", 500)) is Fulfill
    assert decode_response(world.setup.pay_server("alice", 1)).code == "T04"
    assert world.receivable("alice") == 500


def test_fulfills_from_a_client_are_paid_to_that_client_exactly():
    """Three Fulfills from bob: bob is paid each amount once by cumulative claims; alice gets nothing; the ledger agrees."""
    world = World()
    for amount in (300, 120, 5):
        assert reply_type(result_of(world.setup.pay_client("bob", amount))) is Fulfill
        world.setup.settle(1)
    assert world.got == {"alice": [], "bob": [300, 120, 5]}
    bob = world.server.accounts["bob"]
    assert result_of(bob.settlement.best_outgoing_claim()).value == 425 * MILLI
    assert world.balance(world.server.payable_id("bob")).balance == -425
    sums = result_of(bob.settlement.payouts.get_sums())
    assert (sums.outgoing_fulfilled, sums.outgoing_fulfilled_and_prepared) == (425, 425)
    world.setup.settle(60)  # bob's watcher cashes the server's claim
    channel = world.ledger.channel(bob.module.channel_id)
    assert channel.sender == ADDR["server"] and channel.receiver == ADDR["bob"] and channel.claimed == 425 * MILLI


def test_reject_from_a_client_pays_nothing_and_t04_sends_the_last_claim_again():
    """A Reject owes the client nothing; on a T04 Reject the server sends its best claim to that client again."""
    world = World()
    result_of(world.setup.pay_client("alice", 50))
    world.setup.settle(1)
    assert world.got["alice"] == [50]
    sent = []
    alice = world.server.accounts["alice"]
    call = alice.settlement._call_peer
    alice.settlement._call_peer = lambda entries: (sent.append(entries), call(entries))[1]
    world.client("alice").deregister_data_handler()
    world.client("alice").register_data_handler(
        lambda data: encode_packet(Reject("T04", "test.server.alice", "no liquidity", b"")))
    assert decode_response(result_of(world.setup.pay_client("alice", 70))).code == "T04"
    world.setup.settle(1)
    assert [e.protocol_name for entries in sent for e in entries] == ["claim"]
    assert json.loads(sent[0][0].data)["value"] == str(50 * MILLI)
    assert world.got["alice"] == [50]  # the same claim again: nothing more credited
    assert world.balance(world.server.payable_id("alice")).balance == -50


def test_replayed_claim_from_a_client_credits_nothing():
    """alice's last claim sent again is acknowledged, credits nothing, and her balance stays."""
    world = World()
    world.prefund("alice", 700)
    d = send_signed_claim(world, "alice", "alice", world.client("alice").module.channel_id, 700 * MILLI)
    assert result_of(d) == ()
    assert world.credited == [700] and world.receivable("alice") == -700


def test_claim_on_another_clients_channel_is_refused_and_credits_nothing():
    """bob presents a claim on alice's channel (signed by alice): refused F00 with a reason, nothing credited to anyone."""
    world = World()
    world.prefund("alice", 700)
    world.prefund("bob", 100)
    d = send_signed_claim(world, "bob", "alice", world.client("alice").module.channel_id, 900 * MILLI)
    assert "is not from the peer" in str(failure_of(d).value)
    assert world.credited == [700, 100]
    assert (world.receivable("alice"), world.receivable("bob")) == (-700, -100)
    assert world.logged("claim from the peer rejected")


def test_restart_keeps_balances_and_every_client_and_pays_nothing_twice():
    """Server restarted on its store: both clients reloaded, balances kept, replays credit nothing, new Fulfills paid once."""
    world = World()
    world.prefund("alice", 1000)
    result_of(world.setup.pay_client("bob", 300))
    world.setup.settle(1)
    world.restart_server()
    assert sorted(world.server.accounts) == ["alice", "bob"]
    assert (world.receivable("alice"), world.receivable("bob")) == (-1000, 0)
    assert world.got["bob"] == [300]
    world.prefund("alice", 1)
    assert world.credited == [1000, 1]  # the restarted server only saw the new 1
    result_of(world.setup.pay_client("bob", 20))
    world.setup.settle(1)
    assert world.got["bob"] == [300, 20]
    assert result_of(world.server.accounts["bob"].settlement.best_outgoing_claim()).value == 320 * MILLI


def test_kill_between_the_fulfill_and_the_payout_record_loses_nothing():
    """The Fulfill committed but the process died before the payout was queued: the restart queues and pays it once."""
    world = World()
    world.server._queue_owed_to = lambda client: Deferred()  # dies right after committing the Fulfill
    world.setup.pay_client("alice", 80)  # its answer never comes: the process is dead
    world.setup.settle(1)
    assert world.got["alice"] == [] and world.balance(world.server.payable_id("alice")).balance == -80
    world.restart_server()
    assert world.got["alice"] == [80]
    world.restart_server()
    assert world.got["alice"] == [80]


def test_kill_with_a_prepare_to_a_client_in_flight_pays_the_client():
    """A Prepare to bob in flight when the server died: recover() commits it and bob is paid it once (never under-paid)."""
    world = World()
    store = world.setup.store
    result_of(store.reserve_outgoing(world.server.payable_id("bob"), 45, None))  # what send_data had reserved
    world.setup.restart_server()
    result_of(store.recover())  # the connector's start-up
    world._watch_server()
    d = world.server.connect()
    world.setup.settle(10)
    result_of(d)
    world.setup.settle(10)
    assert world.got["bob"] == [45]


def test_kill_between_recording_a_credit_and_crediting_it_credits_at_most_once():
    """The claim's credit was recorded, the process died in the money handler: after restart a replay credits nothing."""
    world = World()
    world.server.deregister_money_handler()
    world.server.register_money_handler(lambda amount: Deferred())  # dies in there
    first = world.client("alice").send_money(500)
    world.setup.settle()
    world.restart_server()
    assert failure_of(first).check(PeerUnreachableError)  # the server died before acknowledging the claim
    world.setup.settle(60)  # alice's payout retried: the claim again
    assert world.credited == []
    assert world.logged("was recorded before a restart but not confirmed as applied")
    info = result_of(world.server.get_admin_info())
    assert info["clients"]["alice"]["settlement"]["unconfirmedCredits"] == [f"claim:{500 * MILLI}"]
    world.prefund("alice", 5)
    assert world.credited == [5]


def test_watcher_covers_every_client_even_offline():
    """The channel watcher runs every client's module, connected or not (after a restart too)."""
    world = World(channelWatcherInterval=1000)
    world.prefund("alice", 100)
    world.prefund("bob", 200)
    d = world.client("bob").disconnect()
    world.setup.settle()
    result_of(d)
    world.restart_server()
    world.setup.settle(2)
    assert world.ledger.channel(world.client("alice").module.channel_id).claimed == 100 * MILLI
    assert world.ledger.channel(world.client("bob").module.channel_id).claimed == 200 * MILLI
    assert world.ledger.balance(ADDR["server"]) == FUNDS + 300 * MILLI


def test_admin_info_shows_each_client():
    """GET /accounts/<id> info: per client balance, earned, pending payouts, the settlement and module state."""
    world = World()
    world.prefund("alice", 1000)
    assert reply_type(world.setup.pay_server("alice", 400)) is Fulfill
    result_of(world.setup.pay_client("bob", 30))
    world.setup.settle(1)
    info = result_of(world.server.get_admin_info())
    assert info["role"] == "server"
    alice, bob = info["clients"]["alice"], info["clients"]["bob"]
    assert (alice["balance"], alice["earned"], alice["pendingPayouts"]) == ("-600", "0", "0")
    assert (bob["balance"], bob["earned"], bob["pendingPayouts"]) == ("0", "30", "0")
    assert alice["settlement"]["bestIncomingClaim"] == str(1000 * MILLI)
    assert bob["settlement"]["bestOutgoingClaim"] == str(30 * MILLI)
    assert bob["ed25519-channel"]["channel"] == world.server.accounts["bob"].module.channel_id
    assert alice["connected"] and bob["connected"]
    json.dumps(info)


def test_send_money_of_the_account_is_refused_and_moves_nothing():
    """The connector's send_money on a server-role account errbacks (the JS: not supported); no client is paid."""
    world = World()
    failure = failure_of(world.server.send_money(100, "k"))
    assert failure.check(NotImplementedError) and "each client is settled after its Fulfills" in str(failure.value)
    world.setup.settle(1)
    assert world.got == {"alice": [], "bob": []}


def test_restart_on_a_new_sqlite_store_of_the_same_file_keeps_everything(tmp_path):
    """The server's state on SQLite: a new store object on the same file reloads both clients, their balances,
    best claims and payouts; the clients are then paid and credited exactly as if nothing had happened."""
    net = FakeNetwork()
    path = str(tmp_path / "server.sqlite")

    def open_store():
        store = SqliteStore(path, reactor=net.reactor, executor=InlineExecutor())
        result_of(store.open())
        return store

    world = World(network=net, store=open_store())
    world.prefund("alice", 1000)
    result_of(world.setup.pay_client("bob", 300))
    world.setup.settle(1)
    assert world.got["bob"] == [300]
    stopped = world.setup.server.disconnect()
    world.setup.settle()
    result_of(stopped)
    closed = world.setup.store.close()
    world.setup.settle()
    result_of(closed)
    world.setup.store = open_store()
    world.restart_server()
    assert sorted(world.server.accounts) == ["alice", "bob"]
    assert world.receivable("alice") == -1000
    bob = world.server.accounts["bob"]
    assert result_of(bob.settlement.best_outgoing_claim()).value == 300 * MILLI
    assert result_of(world.server.accounts["alice"].settlement.best_incoming_claim()).value == 1000 * MILLI
    world.prefund("alice", 7)
    result_of(world.setup.pay_client("bob", 11))
    world.setup.settle(1)
    assert world.credited == [1000, 7] and world.got["bob"] == [300, 11]
    assert world.balance(world.server.payable_id("bob")).balance == -311


def _transfer_from(world: World, name: str, amount: int, entries=()) -> Deferred:
    d = world.client(name)._session.request(lambda rid: Transfer(rid, amount, tuple(entries)))
    world.setup.settle()
    return d


def test_transfer_from_a_client_goes_to_that_clients_module_only():
    """A BTP TRANSFER from alice reaches alice's module's verify_claim_transfer (not bob's); a module without
    one refuses it F00 (mini-accounts) and nothing is credited."""
    world = World()
    assert "No sendMoney" in str(failure_of(_transfer_from(world, "alice", 5)).value)
    seen = {"alice": [], "bob": []}
    for name in seen:
        world.server.accounts[name].module.verify_claim_transfer = \
            lambda transfer, name=name: (seen[name].append(transfer.amount), 0)[1]
    assert result_of(_transfer_from(world, "alice", 5)) is not None
    assert seen == {"alice": [5], "bob": []} and world.credited == []


def test_module_with_a_plugin_attribute_gets_a_link_to_its_own_client():
    """A module with a ``plugin`` attribute gets a ClientLink: its TRANSFERs and MESSAGEs go to its client, and it
    knows the client's ILP address."""
    ledger = FakeLedger()
    for address in ADDR.values():
        ledger.fund(address, FUNDS)
    make = module_factory(ledger)

    def with_plugin(options, *, account_id, services):
        module = make(options, account_id=account_id, services=services)
        module.plugin = None
        return module

    setup = linked_settling_server(settling_plugin_factory(with_plugin), options={"seed": SEEDS["server"]},
                                   client_options={name: {"seed": SEEDS[name]} for name in ("alice", "bob")})
    got = []
    for client in setup.clients.values():
        client.register_money_handler(lambda amount: None)
    setup.clients["bob"].verify_transfer = lambda transfer: (got.append(("bob", transfer.amount)), 0)[1]
    setup.clients["alice"].verify_transfer = lambda transfer: (got.append(("alice", transfer.amount)), 0)[1]
    setup.connect()
    setup.settle(1)
    link = setup.server.accounts["bob"].module.plugin
    assert (link.client, link.ilp_address) == ("bob", "test.server.bob")
    d = link.send_transfer(7, ())
    setup.settle()
    assert result_of(d) is None and got == [("bob", 7)]
    setup.clients["bob"].settlement.register_sub_protocol("ping", lambda entry: [entry])
    ping = ProtocolDataEntry("ping", CONTENT_JSON, b"{}")
    d = link.send_entries([ping])
    setup.settle()
    assert result_of(d) == (ping,)
