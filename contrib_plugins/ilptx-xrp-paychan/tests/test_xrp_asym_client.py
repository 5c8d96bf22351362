"""The xrp-asym-client plugin (ilp-plugin-xrp-asym-client 1.6.0) on the rippled double's ledger engine in process,
against a fake asym server (xrp_asym_fake_server), on a fake network and task clock: Node's lenient base64, the BTP
token, the handshake, money both ways, forged and zero claims, a lost store, a stored channel that is gone."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

from test_xrp_plugin_contract import XRP, funded_pair
from xrp_asym_fake_server import CLIENT_ILP_ADDRESS, fake_server_factory
from xrp_fake_ledger import SharedLedger

from ilptx.codec.btp import Transfer
from ilptx.errors import ConfigError
from ilptx.stores.memory import MemoryStore
from ilptx.testing import (
    SETTLING_DIALLER, FakeNetwork, failure_of, linked_settling_plugins, plugin_services, result_of,
)

from ilptx_xrp_paychan import asym, hooks, protocol
from ilptx_xrp_paychan.asym_client import xrp_asym_client_plugin
from ilptx_xrp_paychan.claims import channel_key, sign_claim, units_to_drops

import pytest


def client_factory(shared):
    def factory(options, *, account_id, services):
        return xrp_asym_client_plugin(options, account_id=account_id, services=services, ledger_factory=shared.client)
    return factory


def options_of(wallet, **extra):
    return {"xrpServer": "ws://127.0.0.1:1", "secret": wallet.seed, "currencyScale": 9, **extra}


def make_pair(shared=None, client_store=None, server_extra=None, client_extra=None, wallets=None):
    """(plugin = fake server, peer = our asym client) on one fake ledger, not connected."""
    net = FakeNetwork()
    shared = shared or SharedLedger(net.reactor)
    server, client = wallets or funded_pair(shared)
    pair = linked_settling_plugins(fake_server_factory(shared), client_factory(shared),
                                   options=options_of(server, **(server_extra or {})),
                                   peer_options=options_of(client, **(client_extra or {})), network=net,
                                   peer_store=client_store)
    pair.shared, pair.wallets = shared, (server, client)
    return pair


def connected(pair):
    ds = [pair.plugin.connect(), pair.peer.connect()]
    pair.settle(5)
    for d in ds:
        result_of(d)
    return pair


def credits_of(plugin) -> list:
    credited: list = []
    plugin.register_money_handler(credited.append)
    return credited


def paid(pair, sender, amount):
    d = sender.send_money(amount)
    pair.settle(1)
    return result_of(d)


def test_node_base64_decode_matches_node_buffer_from():
    """node_base64_decode gives what Node 20's Buffer.from(x, 'base64') gives (vectors printed by node)."""
    vectors = {"test.xrp.alice": "b5eb2dc6ba5a96271e", "g.a-b_c": "81af9bfd", "ab=cd": "69", "a": "", "ab": "69",
               "abc": "69b7", "QUJD": "414243", "test.moneyd.client1~x": "b5eb2d9a89dec9d72589e9edd7"}
    for text, expected in vectors.items():
        assert asym.node_base64_decode(text).hex() == expected, text


def test_btp_token_derived_as_the_js_client_derives_it():
    """No password in the URL: the JS client's HMAC token (vectors from node's URL + crypto); a password is kept."""
    secret = "sn3nxiW7v8KXzPzAqzyHXbSSKNuN9"
    assert asym.derive_btp_server("btp+ws://alice@example.com:7768/x", secret) == (
        "btp+ws://alice:3d3f8dc7ea69a0328bc1c4fd0a9a3f8a1d62e741b53211bd567280d9cff329d1@example.com:7768/x")
    assert asym.derive_btp_server("btp+wss://ilsp.example:443", secret) == (
        "btp+wss://:2058d960a2cac58fb71e0478e441e29ee7a0913e30e6dac36fde6300096ce2fa@ilsp.example:443")
    assert asym.derive_btp_server("btp+ws://a:given@h:1", secret) == "btp+ws://a:given@h:1"


def test_entry_points_name_the_asym_client():
    """Both names resolve to the asym client factory, through the distribution's one entry point."""
    plugins = hooks.ilptx_ledger_plugins()
    assert plugins["xrp-asym-client"] is plugins["ilp-plugin-xrp-asym-client"] is xrp_asym_client_plugin
    assert "ilptx_xrp_paychan.hooks" in {ep.value for ep in entry_points(group="ilptx")}


def test_bad_outgoing_channel_amount_is_a_config_error():
    """outgoingChannelAmountXRP that is not XRP in whole drops is a ConfigError naming the key."""
    shared = SharedLedger(FakeNetwork().reactor)
    server, client = funded_pair(shared)
    pair = None
    with pytest.raises(ConfigError, match="outgoingChannelAmountXRP"):
        pair = make_pair(shared, wallets=(server, client), client_extra={"outgoingChannelAmountXRP": "0.0000001"})
    assert pair is None


def test_handshake_opens_both_channels_with_the_stateless_key():
    """Connecting: our channel of 10 XRP is keyed HMAC('ilp-plugin-xrp-stateless'+server), proven, and linked."""
    pair = connected(make_pair())
    client, server = pair.peer.module, pair.plugin.module
    assert client.ready and not client.blocked
    assert client.key == channel_key(client.options.secret, server.address, "ilp-plugin-xrp-stateless")
    node = pair.shared.ledger.channel(client.outgoing["channelId"], True).json()
    assert (node["Account"], node["Destination"], node["PublicKey"], node["Amount"], node["SettleDelay"]) == (
        client.address, server.address, client.key.public_key, str(10 * XRP), 3600)
    assert server.incoming["channelId"] == client.outgoing["channelId"]
    assert client.incoming["channelId"] == server.outgoing["channelId"]
    assert client.ilp_address == CLIENT_ILP_ADDRESS


def test_money_both_ways_is_credited_exactly():
    """Client pays the server and the server pays the client; each side is credited exactly what was sent."""
    pair = connected(make_pair())
    to_server, to_client = credits_of(pair.plugin), credits_of(pair.peer)
    for amount in (1_234_567_891, 5, 10 ** 9):
        paid(pair, pair.peer, amount)
    paid(pair, pair.plugin, 777_000_001)
    assert sum(to_server) == 1_234_567_891 + 5 + 10 ** 9
    assert sum(to_client) == 777_000_001


def _claim_transfer(key, channel, amount, scale=9):
    signature = sign_claim(key, channel, units_to_drops(amount, scale))
    return Transfer(1, amount, (protocol.claim_entry(protocol.encode_claim(amount, signature)),))


def test_forged_and_zero_claims_credit_nothing():
    """Claims by another key, above the channel or malformed are refused; a zero claim is acknowledged; none credits."""
    pair = connected(make_pair())
    client = pair.peer.module
    credited = credits_of(pair.peer)
    channel = client.incoming["channelId"]
    forged = channel_key("snoPBrXtMeMyMHUVTgbuqAfg1SUTb", client.address)
    failure = failure_of(client.verify_claim_transfer(_claim_transfer(forged, channel, 1000)))
    assert "does not verify" in str(failure.value)
    server_key = pair.plugin.module.key
    failure = failure_of(client.verify_claim_transfer(_claim_transfer(server_key, channel, 10 ** 12)))
    assert "above the channel's amount" in str(failure.value)
    malformed = Transfer(1, 5, (protocol.claim_entry('{"amount": "5"}'),))
    assert "signature must be 128 hex" in str(failure_of(client.verify_claim_transfer(malformed)).value)
    zero = Transfer(1, 0, (protocol.claim_entry(json.dumps({"amount": "0", "signature": "0" * 128})),))
    assert result_of(client.verify_claim_transfer(zero)) == 0
    assert credited == [] and result_of(pair.peer.settlement.best_incoming_claim()).value == 0


def test_lost_client_store_resumes_from_the_servers_last_claim():
    """A client restarted on an empty store adopts its channel from info and pays on top of the server's last claim."""
    pair = connected(make_pair())
    to_server = credits_of(pair.plugin)
    paid(pair, pair.peer, 3 * 10 ** 9)
    channel = pair.peer.module.outgoing["channelId"]
    stopping = pair.peer.disconnect()
    pair.settle(1)
    result_of(stopping)
    fresh = client_factory(pair.shared)({**SETTLING_DIALLER, **options_of(pair.wallets[1])},
                                        account_id="counterparty",
                                        services=plugin_services(pair.network.reactor, account_id="counterparty",
                                                                 store=MemoryStore()))
    d = fresh.connect()
    pair.settle(5)
    result_of(d)
    assert fresh.module.outgoing["channelId"] == channel
    assert fresh.module.outgoing["base"] == -3 * 10 ** 9
    paid(pair, fresh, 2 * 10 ** 9)
    assert sum(to_server) == 5 * 10 ** 9
    assert pair.shared.ledger.channel(channel, True) is not None


def test_stored_channel_that_no_longer_exists_does_not_crash_start_up():
    """A stored outgoing channel absent from the ledger: start-up creates a new one and announces it, no crash."""
    store = MemoryStore()
    gone = "AB" * 32
    result_of(store.put("xrp-asym-client:counterparty:outgoing-channel", json.dumps({"channelId": gone, "base": 0})))
    pair = connected(make_pair(client_store=store))
    client = pair.peer.module
    assert client.ready and client.outgoing["channelId"] != gone
    assert pair.plugin.module.incoming["channelId"] == client.outgoing["channelId"]


def test_server_channel_with_a_short_settle_delay_blocks_the_account():
    """fund_channel answers a channel of settle delay 60 s: the client refuses it, blocks, and pays nothing."""
    pair = make_pair()
    pair.plugin.module.options = pair.plugin.module.options.__class__(
        **{**pair.plugin.module.options.__dict__, "settle_delay": 60})
    connected(pair)
    client = pair.peer.module
    assert client.blocked and "settle delay 60" in client.blocked and not client.ready
    to_server = credits_of(pair.plugin)
    d = pair.peer.send_money(5)
    pair.settle(1)
    assert "not paying: the peer's channel" in str(failure_of(d).value)
    assert to_server == []


def test_currency_scale_mismatch_blocks_the_account():
    """The server's info says currencyScale 6, ours is 9: blocked, no channel created."""
    pair = connected(make_pair(server_extra={"currencyScale": 6}))
    client = pair.peer.module
    assert client.blocked and "currency scale mismatch" in client.blocked
    assert client.outgoing is None


def test_disconnect_claims_exactly_the_claimed_drops_on_the_ledger():
    """The server paid the client; the client's disconnect submits the claim: the ledger moves exactly its drops."""
    pair = connected(make_pair())
    credits_of(pair.peer)
    paid(pair, pair.plugin, 1_500_000_001)  # 1500000.001 drops, claimed rounded up: 1500001
    client = pair.peer.module
    before = pair.shared.balance(client.address)
    channel = client.incoming["channelId"]
    stopping = pair.peer.disconnect()
    pair.settle(1)
    result_of(stopping)
    node = pair.shared.ledger.channel(channel, True).json()
    assert node["Balance"] == str(units_to_drops(1_500_000_001, 9)) == "1500001"
    claim_fee = [tx for tx in pair.shared.submitted if tx["TransactionType"] == "PaymentChannelClaim"][-1]["Fee"]
    assert pair.shared.balance(client.address) == before + 1_500_001 - int(claim_fee)


def test_restarted_client_submits_the_stored_best_claim():
    """Restart on the same store: the best claim received before is kept and submitted on disconnect (JS loses it)."""
    store = MemoryStore()
    pair = connected(make_pair(client_store=store))
    credits_of(pair.peer)
    paid(pair, pair.plugin, 4 * 10 ** 9)
    channel = pair.peer.module.incoming["channelId"]
    pair.peer.module.disconnect = lambda: None  # a crash: nothing claimed on the way down
    stopping = pair.peer.disconnect()
    pair.settle(1)
    result_of(stopping)
    assert pair.shared.ledger.channel(channel, True).json().get("Balance", "0") == "0"
    again = client_factory(pair.shared)({**SETTLING_DIALLER, **options_of(pair.wallets[1])}, account_id="counterparty",
                                        services=plugin_services(pair.network.reactor, account_id="counterparty",
                                                                 store=store))
    d = again.connect()
    pair.settle(5)
    result_of(d)
    assert again.module.incoming["channelId"] == channel
    stopping = again.disconnect()
    pair.settle(1)
    result_of(stopping)
    assert pair.shared.ledger.channel(channel, True).json()["Balance"] == str(4 * 10 ** 6)
