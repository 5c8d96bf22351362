"""role: server of the ethereum plugin (ilptx_ethereum.server) on an in-memory Unidirectional chain and a fake
network (no EVM): one module and channel state per client, one shared chain client, the claim-linking check
across clients, the watcher over every client's channel, the admin view per client."""

from __future__ import annotations

import json

from eth_fake_chain import FakeChain
from test_eth_module_contract import module_options

from ilptx.codec.btp import CONTENT_JSON
from ilptx.codec.ilp import Fulfill, decode_response
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.settlement.server import SettlingServerPlugin
from ilptx.testing import (
    SERVER_FULFILLMENT, SettlingServerModuleContract, failure_of, fulfilling_handler, linked_settling_server,
    plugin_services, result_of,
)

from ilptx_ethereum import hooks
from ilptx_ethereum.claims import address_of, make_claim
from ilptx_ethereum.module import EthereumModule
from ilptx_ethereum.server import ethereum_server_modules

KEYS = {"server": "0x" + "c3" * 32, "alice": "0x" + "d4" * 32, "bob": "0x" + "e5" * 32}
ETH, GWEI = 10 ** 18, 10 ** 9


def setup_on(chain: FakeChain, **server_options):
    """A server-role ethereum plugin (key "server") and clients alice and bob on ``chain``, not yet connected."""

    def client_module(options, *, account_id, services):
        return EthereumModule(options, account_id=account_id, services=services,
                              ledger_factory=chain.client(options["ethereumPrivateKey"]))

    def server_modules(options, *, account_id, services):
        return ethereum_server_modules(options, account_id=account_id, services=services,
                                       make_ledger=chain.client(KEYS["server"]))

    factory = settling_plugin_factory(client_module, server_modules)
    return linked_settling_server(factory, options={**module_options(KEYS["server"]), **server_options},
                                  client_options={name: module_options(KEYS[name]) for name in ("alice", "bob")})


def funded_chain() -> FakeChain:
    chain = FakeChain()
    for key in KEYS.values():
        chain.fund(key, 10 * ETH)
    return chain


class World:
    def __init__(self, **server_options) -> None:
        self.chain = funded_chain()
        self.setup = setup_on(self.chain, **server_options)
        self.credited: list = []
        self.got = {"alice": [], "bob": []}
        self.setup.server.register_money_handler(self.credited.append)
        self.setup.server.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.server"))
        for name, client in self.setup.clients.items():
            client.register_money_handler(self.got[name].append)
            client.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], f"test.server.{name}"))
        self.setup.connect()
        self.setup.settle(1)

    @property
    def server(self) -> SettlingServerPlugin:
        return self.setup.server

    def prefund(self, name: str, gwei: int) -> None:
        d = self.setup.clients[name].send_money(gwei)
        self.setup.settle()
        assert result_of(d) is None

    def incoming_channel(self, name: str) -> str:
        return self.server.accounts[name].module.incoming["channelId"]


class TestEthereumServerContract(SettlingServerModuleContract):
    """EthereumModule meets the framework's server-role contract."""

    def make_setup(self):
        return setup_on(funded_chain())


def test_role_server_builds_a_settling_server_from_the_entry_point():
    """The entry point's factory with role server gives a SettlingServerPlugin; bad options still fail at once."""
    plugin = hooks.ethereum_plugin({**module_options(KEYS["server"]), "role": "server", "listener": {"port": 1}},
                                   account_id="eth", services=plugin_services())
    assert type(plugin) is SettlingServerPlugin


def test_each_client_has_its_own_channel_state_and_one_chain_client_serves_all():
    """alice and bob prefund: two incoming channels, stored under ethereum:<account>:<client>, one shared ledger."""
    world = World()
    world.prefund("alice", 1000)
    world.prefund("bob", 300)
    assert world.credited == [1000, 300]
    alice, bob = world.incoming_channel("alice"), world.incoming_channel("bob")
    assert alice != bob
    assert alice == world.setup.clients["alice"].module.outgoing["channelId"]
    store = world.setup.store
    assert json.loads(result_of(store.get("ethereum:clients:alice:incoming-channel")))["channelId"] == alice
    assert json.loads(result_of(store.get("ethereum:clients:bob:incoming-channel")))["channelId"] == bob
    assert result_of(store.get(f"ethereum:incoming-channel:{alice.lower()}")) == "clients:alice"
    server_ledgers = [c for c in world.chain.clients if c.address == address_of(KEYS["server"])]
    assert len(server_ledgers) == 1 and server_ledgers[0].running
    d = world.server.disconnect()
    world.setup.settle()
    result_of(d)
    assert not server_ledgers[0].running


def test_claim_on_another_clients_channel_is_refused_and_credits_nothing():
    """bob relays a claim alice signed on her channel (higher than hers): refused as linked to clients:alice; no credit."""
    world = World()
    world.prefund("alice", 1000)
    channel = world.incoming_channel("alice")
    forged = make_claim(KEYS["alice"], world.server.accounts["alice"].module.contract_address, channel, 1500 * GWEI)
    body = json.dumps({"channelId": forged.channel_id, "signature": forged.signature, "value": str(forged.value),
                       "contractAddress": forged.contract_address}).encode()
    d = world.setup.clients["bob"].settlement.call_peer("machinomy", body, CONTENT_JSON)
    world.setup.settle()
    why = str(failure_of(d).value)
    assert "ChannelLinkedElsewhereError" in why and "clients:alice" in why
    assert world.credited == [1000]
    assert result_of(world.setup.store.get_balance("clients:bob")).balance == 0
    assert result_of(world.setup.store.get_balance("clients:alice")).balance == -1000


def test_fulfills_from_each_client_open_a_channel_to_it_and_pay_it_exactly():
    """Fulfills from alice and bob: the server opens one channel to each and pays each its amounts, once."""
    world = World()
    for name, amounts in (("alice", (200, 50)), ("bob", (70,))):
        for amount in amounts:
            assert type(decode_response(result_of(world.setup.pay_client(name, amount)))) is Fulfill
            world.setup.settle(1)
    assert world.got == {"alice": [200, 50], "bob": [70]}
    out = {name: world.server.accounts[name].module.outgoing["channelId"] for name in ("alice", "bob")}
    assert out["alice"] != out["bob"]
    for name, total in (("alice", 250), ("bob", 70)):
        channel = world.chain.channels[out[name]]
        assert channel.receiver == address_of(KEYS[name]) and channel.sender == address_of(KEYS["server"])
        assert result_of(world.setup.clients[name].settlement.best_incoming_claim()).value == total * GWEI


def test_watcher_claims_every_clients_channel_whose_sender_starts_settling():
    """alice (connected) and bob (gone) both start settling: the server's watcher claims both channels."""
    world = World(channelWatcherInterval=1000)
    world.prefund("alice", 1000)
    world.prefund("bob", 400)
    gone = world.setup.clients["bob"].disconnect()
    world.setup.settle()
    result_of(gone)
    for name in ("alice", "bob"):
        result_of(world.chain.client(KEYS[name])("x").start_settling(world.incoming_channel(name)))
    before = world.chain.balances[address_of(KEYS["server"])]
    world.setup.settle(1)
    world.setup.settle(1)
    assert world.chain.balances[address_of(KEYS["server"])] == before + 1400 * GWEI
    assert world.incoming_channel("alice") not in world.chain.channels
    assert world.incoming_channel("bob") not in world.chain.channels


def test_admin_info_shows_channel_state_per_client():
    """Admin info per client: balance, earned, pending payouts, channel ids, deposited, claimed, best incoming claim."""
    world = World()
    world.prefund("alice", 1000)
    result_of(world.setup.pay_client("bob", 30))
    world.setup.settle(1)
    info = result_of(world.server.get_admin_info())
    alice, bob = info["clients"]["alice"], info["clients"]["bob"]
    assert alice["balance"] == "-1000" and bob["earned"] == "30" and bob["pendingPayouts"] == "0"
    assert alice["ethereum"]["incomingChannel"]["channelId"] == world.incoming_channel("alice")
    assert alice["ethereum"]["incomingChannel"]["bestClaim"] == str(1000 * GWEI)
    assert alice["ethereum"]["incomingChannel"]["deposited"] == str(1_000_000 * GWEI)
    assert bob["ethereum"]["outgoingChannel"]["claimed"] == str(30 * GWEI)
    assert bob["ethereum"]["peerAddress"] == address_of(KEYS["bob"])
    json.dumps(info)
