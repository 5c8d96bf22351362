"""The xrp-asym-server plugin (ilp-plugin-xrp-asym-server 1.8.1) on the framework's server role, with our
xrp-asym-client as its clients alice and bob, on the rippled double's ledger engine in process, a fake network and
a task clock: the handshake per client, prefunding, money both ways, forged and zero claims, a channel linked to
another client, a restart, a closed channel unlinked, parallel fund_channel."""

from __future__ import annotations

from test_xrp_plugin_contract import XRP, funded_pair
from xrp_fake_ledger import SharedLedger

from twisted.internet.task import deferLater

from ilptx.codec.btp import Message
from ilptx.codec.ilp import Fulfill, Reject, decode_response
from ilptx.settlement import ClaimRejectedError
from ilptx.testing import (
    SERVER_FULFILLMENT, FakeNetwork, SettlingServerModuleContract, failure_of, fulfilling_handler,
    linked_settling_server, result_of,
)

from ilptx_xrp_paychan import asym, hooks, protocol
from ilptx_xrp_paychan.asym_client import xrp_asym_client_plugin
from ilptx_xrp_paychan.asym_server import SERVER_CHANNEL_KEYS_TAG, xrp_asym_server_plugin
from ilptx_xrp_paychan.claims import channel_key, sign_claim
from xrpl.models.transactions import PaymentChannelClaim, PaymentChannelClaimFlag


def make_setup(shared, store=None, **server_extra):
    """On ``shared`` (:func:`new_shared`): the server and clients alice and bob (funded wallets), not connected."""
    server, alice = funded_pair(shared)
    bob = funded_pair(shared)[0]

    def server_factory(options, *, account_id, services):
        return xrp_asym_server_plugin(options, account_id=account_id, services=services, ledger_factory=shared.client)

    def client_factory(options, *, account_id, services):
        return xrp_asym_client_plugin(options, account_id=account_id, services=services, ledger_factory=shared.client)

    def opts(wallet):
        return {"xrpServer": "ws://fake", "secret": wallet.seed, "currencyScale": 9}

    setup = linked_settling_server(server_factory, client_factory, options={**opts(server), **server_extra},
                                   client_options={"alice": opts(alice), "bob": opts(bob)}, store=store,
                                   network=shared.network)
    setup.shared, setup.wallets = shared, {"server": server, "alice": alice, "bob": bob}
    return setup


def new_shared():
    """A ledger engine on a new FakeNetwork's clock (``shared.network``)."""
    net = FakeNetwork()
    shared = SharedLedger(net.reactor)
    shared.network = net
    return shared


class World:
    def __init__(self, shared=None, store=None, **server_extra) -> None:
        self.setup = make_setup(shared or new_shared(), store, **server_extra)
        self.credited: list = []
        self.got = {"alice": [], "bob": []}
        self.setup.server.register_money_handler(self.credited.append)
        self.setup.server.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.server"))
        for name, client in self.setup.clients.items():
            client.register_money_handler(self.got[name].append)
            client.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], f"test.server.{name}"))
        self.setup.connect()
        self.setup.settle(5)

    @property
    def server(self):
        return self.setup.server

    def module(self, name):
        return self.server.accounts[name].module

    def client(self, name):
        return self.setup.clients[name].module

    def pay(self, name, amount):
        d = self.setup.clients[name].send_money(amount)
        self.setup.settle(1)
        return d

    def balance(self, name):
        return result_of(self.setup.store.get_balance(self.server.client_account_id(name))).balance


class TestXrpAsymServerContract(SettlingServerModuleContract):
    """xrp-asym-server meets the framework's server-role contract (payments credited once, Fulfills paid once)."""

    def make_setup(self):
        return make_setup(new_shared())


def test_entry_points_name_the_asym_server():
    """Both names resolve to the asym server factory through the distribution's hooks."""
    plugins = hooks.ilptx_ledger_plugins()
    assert plugins["xrp-asym-server"] is plugins["ilp-plugin-xrp-asym-server"] is xrp_asym_server_plugin


def test_each_client_gets_its_own_linked_channels():
    """alice and bob each link their channel to the server and get one from it, keyed HMAC(tag + client name)."""
    world = World()
    seen = set()
    for name in ("alice", "bob"):
        server_side, client_side = world.module(name), world.client(name)
        assert server_side.incoming["channelId"] == client_side.outgoing["channelId"]
        assert server_side.outgoing["channelId"] == client_side.incoming["channelId"]
        assert server_side.key == channel_key(server_side.options.secret, name, SERVER_CHANNEL_KEYS_TAG)
        assert server_side.peer_address == world.setup.wallets[name].classic_address
        node = world.setup.shared.ledger.channel(server_side.outgoing["channelId"], True).json()
        assert (node["Destination"], node["Amount"], node["SettleDelay"]) == (server_side.peer_address, str(XRP), 3600)
        seen |= {server_side.incoming["channelId"], server_side.outgoing["channelId"]}
    assert len(seen) == 4


def test_prefunding_then_money_both_ways():
    """A Prepare before any claim gets T04 (maxBalance 0); after alice's claim of 1000 she may send 1000, and a
    Fulfill to her makes the server pay her exactly that, once."""
    world = World()
    reply = decode_response(world.setup.pay_server("alice", 10))
    assert type(reply) is Reject and reply.code == "T04"
    assert result_of(world.pay("alice", 1000)) is None
    assert world.credited == [1000] and world.balance("alice") == -1000
    assert type(decode_response(world.setup.pay_server("alice", 1000))) is Fulfill
    assert type(decode_response(result_of(world.setup.pay_client("alice", 300)))) is Fulfill
    world.setup.settle(1)
    assert world.got == {"alice": [300], "bob": []}


def test_max_balance_option_allows_credit():
    """maxBalance 500: alice may owe 500 before paying anything, not 501."""
    world = World(maxBalance="500")
    assert type(decode_response(world.setup.pay_server("alice", 500))) is Fulfill
    reply = decode_response(world.setup.pay_server("alice", 1))
    assert type(reply) is Reject and reply.code == "T04"


def test_forged_claim_credits_nothing():
    """A claim signed with another key (bob's channel key) on alice's channel is refused F00; nothing credited."""
    world = World()
    alice = world.setup.clients["alice"]
    forged = protocol.encode_claim(1000, sign_claim(world.client("bob").key, world.client("alice").outgoing["channelId"],
                                                    1))
    failure = failure_of(_settled(world, alice.send_transfer(1000, (protocol.claim_entry(forged),))))
    assert "does not verify" in str(failure.value)
    assert world.credited == [] and world.balance("alice") == 0


def test_replayed_claim_transfer_credits_nothing():
    """alice's claim TRANSFER sent again is acknowledged and credits nothing more (idempotent by its total)."""
    world = World()
    alice, sent = world.setup.clients["alice"], []
    send = alice.send_transfer
    alice.send_transfer = lambda amount, entries: (sent.append((amount, entries)), send(amount, entries))[1]
    assert result_of(world.pay("alice", 1000)) is None
    assert result_of(_settled(world, send(*sent[-1]))) is None
    assert world.credited == [1000] and world.balance("alice") == -1000


def test_zero_claim_is_acknowledged_and_credits_nothing():
    """A claim of 0 units is answered (no error, the JS server would throw) and credits nothing."""
    world = World()
    zero = protocol.encode_claim(0, "00" * 64)
    assert result_of(_settled(world, world.setup.clients["alice"].send_transfer(0, (protocol.claim_entry(zero),)))) \
        is None
    assert world.credited == []


def test_a_channel_linked_to_another_client_is_refused():
    """bob announcing alice's channel (proof signed for bob's ILP address by alice's key) is refused: it is linked
    to alice."""
    world = World()
    bob_module = world.module("bob")
    bob_module.incoming = bob_module.incoming_node = bob_module.peer_address = None  # as if bob were new
    channel = world.client("alice").outgoing["channelId"]
    proof = asym.sign_channel_proof(world.client("alice").key, channel, world.server.client_address("bob"))
    d = world.server._client_message("bob", Message(1, tuple(asym.channel_entries(channel, proof))))
    failure = failure_of(_settled(world, d))
    assert failure.check(ClaimRejectedError) and "linked to account clients:alice" in str(failure.value)
    assert bob_module.incoming is None


def test_restart_keeps_links_and_credits_once():
    """After a server restart on the same store alice's channel is still hers; her claims credit only what is new."""
    world = World()
    assert result_of(world.pay("alice", 1000)) is None
    channel = world.module("alice").incoming["channelId"]
    server = world.setup.restart_server()
    server.register_money_handler(world.credited.append)
    server.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.server"))
    world.setup.connect(server)
    world.setup.settle(5)
    assert world.module("alice").incoming["channelId"] == channel
    assert result_of(world.pay("alice", 500)) is None
    assert world.credited == [1000, 500] and world.balance("alice") == -1500


def test_closed_channel_is_unlinked_by_the_watcher():
    """alice closes her channel on the ledger; once it is gone the watcher unlinks it (she may open a new one)."""
    world = World()
    module = world.module("alice")
    channel = module.incoming["channelId"]
    wallet = world.setup.wallets["alice"]
    close = PaymentChannelClaim(account=wallet.classic_address, channel=channel, flags=PaymentChannelClaimFlag.TF_CLOSE)
    result_of(world.setup.shared.client().submit_transaction(wallet, close))
    world.setup.settle(3700)
    world.setup.shared.ledger.close()  # Expiration is judged against the previous ledger's close time
    result_of(world.setup.shared.client().submit_transaction(wallet, close))
    assert world.setup.shared.ledger.channel(channel, True) is None
    result_of(_settled(world, module.watch()))
    assert module.incoming is None
    assert result_of(world.setup.store.get(f"xrp-asym-server:incoming-channel:{channel}")) is None


class SlowLedger:
    """An IXrpLedger whose submits take 2 s of the clock; counts how many of one account overlap."""

    def __init__(self, inner, clock, overlaps: dict) -> None:
        self._inner, self._clock, self.overlaps, self._busy = inner, clock, overlaps, {}

    def submit_transaction(self, wallet, tx):
        account = wallet.classic_address
        self._busy[account] = self._busy.get(account, 0) + 1
        self.overlaps[account] = max(self.overlaps.get(account, 0), self._busy[account])

        def later(_):
            self._busy[account] -= 1
            return self._inner.submit_transaction(wallet, tx)

        return deferLater(self._clock, 2, lambda: None).addCallback(later)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_parallel_channel_opens_do_not_collide():
    """alice and bob open their channels at once on a slow ledger: the server's PaymentChannelCreates go one at a
    time (never two of its transactions in flight), one channel each; a second fund_channel opens no other."""
    shared, overlaps = new_shared(), {}
    original = shared.client
    shared.client = lambda url="ws://fake": SlowLedger(original(url), shared.clock, overlaps)
    world = World(shared)
    for _ in range(15):  # each settle fires the timers due once: step the 2 s submits through
        world.setup.settle(2)
    server_address = world.setup.wallets["server"].classic_address
    assert overlaps[server_address] == 1
    creates = [t for t in shared.submitted
               if t["TransactionType"] == "PaymentChannelCreate" and t["Account"] == server_address]
    ours = {world.module(name).outgoing["channelId"] for name in ("alice", "bob")}
    assert len(creates) == 2 and len(ours) == 2
    entry = asym.fund_channel_entry(world.module("bob").peer_address)
    ds = [world.server._client_message("bob", Message(i, (entry,))) for i in (1, 2)]
    for _ in range(3):
        world.setup.settle(2)
    assert {bytes(result_of(d)[0].data).hex().upper() for d in ds} == {world.module("bob").outgoing["channelId"]}
    assert len([t for t in shared.submitted if t["TransactionType"] == "PaymentChannelCreate"
                and t["Account"] == server_address]) == 2


def _settled(world, d):
    world.setup.settle(1)
    return d
