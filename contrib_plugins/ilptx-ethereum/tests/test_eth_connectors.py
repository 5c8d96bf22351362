"""Two ilptx connectors (build_connector, the real reactor) peered with ``plugin: ethereum`` over real BTP
WebSockets on ganache: Prepares both ways cross settleThreshold several times, channels open, claims flow,
balances agree with the claims, and closing on chain moves exactly the claimed wei (gas from the receipts)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest_twisted
from eth_helpers import until
from twisted.internet import reactor

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpPlugin
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager
from ilptx.testing import fulfilling_handler

from ilptx_ethereum.hooks import ethereum_plugin

GWEI = 10 ** 9
PACKET = 1_000_000  # gwei (0.001 ETH) per Prepare
THRESHOLD = {"maximum": "100000000", "settleThreshold": "-2500000", "settleTo": "0"}  # settles every 3 Prepares


def _factories() -> dict:
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    factories.update({"ethereum": ethereum_plugin})
    return factories


def _eth_account(ganache, key: str, btp: dict) -> dict:
    return {"relation": "peer", "plugin": "ethereum", "assetCode": "ETH", "assetScale": 9, "balance": THRESHOLD,
            "options": {**btp, "ethereumPrivateKey": key, "ethereumProvider": ganache.url,
                        "contractAddress": ganache.contract_address, "outgoingChannelAmount": 20_000_000}}


def _child(secret: str) -> dict:
    return {"relation": "child", "plugin": "btp", "assetCode": "ETH", "assetScale": 9,
            "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": secret}}}


def _soon(seconds: int = 30):
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest_twisted.inlineCallbacks
def test_two_connectors_settle_over_ethereum_and_close_on_chain(ganache):
    """9 Prepares a→b and 6 b→a of 1e6 gwei over ethereum peers (3 and 2 settlements): balances 0 on both connectors,
    equal to the claims; b claims a's channel, a claims b's (requestClose): the claimed wei move exactly, net of gas."""
    key_a, key_b = ganache.keys[4], ganache.keys[5]
    factories = _factories()
    started, clients = [], []
    try:
        a = build_connector(parse_config({
            "ilpAddress": "test.a", "spread": 0,
            "accounts": {"b": _eth_account(ganache, key_a, {"listener": {"host": "127.0.0.1", "port": 0,
                                                                         "secret": "a_b"}}),
                         "alice": _child("alice")},
            "routes": [{"targetPrefix": "test.b", "peerId": "b"}]}), reactor=reactor, plugin_factories=factories)
        a.startService()
        started.append(a)
        yield a.ready
        port = a.accounts.get("b").plugin.port
        b = build_connector(parse_config({
            "ilpAddress": "test.b", "spread": 0,
            "accounts": {"a": _eth_account(ganache, key_b, {"server": f"btp+ws://b:a_b@127.0.0.1:{port}"}),
                         "bob": _child("bob")},
            "routes": [{"targetPrefix": "test.a", "peerId": "a"}]}), reactor=reactor, plugin_factories=factories)
        b.startService()
        started.append(b)
        yield b.ready
        plugin_a, plugin_b = a.accounts.get("b").plugin, b.accounts.get("a").plugin
        module_a, module_b = plugin_a.module, plugin_b.module
        yield until(lambda: module_a.peer_address is not None and module_b.peer_address is not None,
                        "the info exchange")
        assert (module_a.peer_address, module_b.peer_address) == (module_b.address, module_a.address)

        ends = {}
        for name, connector, secret in (("alice", a, "alice"), ("bob", b, "bob")):
            port = connector.accounts.get(name).plugin.port
            end = BtpPlugin({"server": f"btp+ws://:{secret}@127.0.0.1:{port}"}, account_id=name, reactor=reactor)
            clients.append(end)
            ends[name] = end
        preimages = {name: [bytes([i, n]) * 16 for i in range(1, 10)] for n, name in enumerate(("alice", "bob"))}
        ends["alice"].register_data_handler(fulfilling_handler(preimages["alice"], address="test.a.alice"))
        ends["bob"].register_data_handler(fulfilling_handler(preimages["bob"], address="test.b.bob"))
        for end in ends.values():
            yield end.connect()

        def pay(sender, destination, preimage):
            prepare = Prepare(PACKET, _soon(), hashlib.sha256(preimage).digest(), destination, b"")
            return sender.send_data(encode_packet(prepare)).addCallback(decode_response)

        for preimage in preimages["bob"]:          # 9 × a → b: a settles 3 × 3e6 gwei
            assert isinstance((yield pay(ends["alice"], "test.b.bob.x", preimage)), Fulfill)
        for preimage in preimages["alice"][:6]:    # 6 × b → a: b settles 2 × 3e6 gwei
            assert isinstance((yield pay(ends["bob"], "test.a.alice.x", preimage)), Fulfill)

        def settled():
            return _all([a.store.get_balance("b"), b.store.get_balance("a")]).addCallback(
                lambda balances: [x.balance for x in balances] == [0, 0]) \
                .addCallback(lambda zero: zero and _idle(plugin_a, plugin_b))
        yield until(settled, "both connectors to settle to 0")

        a_info, b_info = (yield plugin_a.get_admin_info()), (yield plugin_b.get_admin_info())
        assert a_info["settlement"]["paid"] == str(9 * PACKET) and b_info["settlement"]["paid"] == str(6 * PACKET)
        assert b_info["settlement"]["credited"] == str(9 * PACKET * GWEI)
        assert a_info["settlement"]["credited"] == str(6 * PACKET * GWEI)
        out_a, in_b = a_info["ethereum"]["outgoingChannel"], b_info["ethereum"]["incomingChannel"]
        assert out_a["channelId"] == in_b["channelId"]
        assert out_a["claimed"] == in_b["bestClaim"] == str(9 * PACKET * GWEI)
        assert out_a["deposited"] == in_b["deposited"] == str(20_000_000 * GWEI)
        assert b_info["ethereum"]["outgoingChannel"]["channelId"] == a_info["ethereum"]["incomingChannel"]["channelId"]

        # b claims a's channel itself: b gains exactly the claim net of its gas, a gets the rest back
        before = {who: ganache.balance(addr) for who, addr in (("a", module_a.address), ("b", module_b.address),
                                                                 ("contract", ganache.contract_address))}
        tx = yield module_b.claim_incoming(reason="test", worthwhile_only=False)
        assert tx.events == ("DidClaim",)
        claimed = 9 * PACKET * GWEI
        assert ganache.balance(module_b.address) - before["b"] == claimed - tx.fee_wei
        assert ganache.balance(module_a.address) - before["a"] == 20_000_000 * GWEI - claimed
        assert before["contract"] - ganache.balance(ganache.contract_address) == 20_000_000 * GWEI
        assert (yield module_a.ledger.channel(out_a["channelId"])) is None

        # b asks a to close b's channel (requestClose): a claims it on chain
        in_a = a_info["ethereum"]["incomingChannel"]
        before_a, before_b = ganache.balance(module_a.address), ganache.balance(module_b.address)
        yield module_b.request_close()
        assert (yield module_b.ledger.channel(in_a["channelId"])) is None
        tx_hash, fee = ganache.last_tx_fee(module_a.address)
        assert ganache.balance(module_a.address) - before_a == 6 * PACKET * GWEI - fee
        assert ganache.balance(module_b.address) - before_b == 20_000_000 * GWEI - 6 * PACKET * GWEI

        # paying on after the close opens a new channel whose claims continue the lifetime totals
        for preimage in (b"\x77" * 32, b"\x78" * 32, b"\x79" * 32):
            ends["bob"].deregister_data_handler()
            ends["bob"].register_data_handler(fulfilling_handler([preimage], address="test.b.bob"))
            assert isinstance((yield pay(ends["alice"], "test.b.bob.y", preimage)), Fulfill)
        yield until(settled, "the settlement on a new channel")
        b_info = yield plugin_b.get_admin_info()
        assert b_info["settlement"]["credited"] == str(12 * PACKET * GWEI)
        new_in = b_info["ethereum"]["incomingChannel"]
        assert new_in["channelId"] != out_a["channelId"] and new_in["bestClaim"] == str(3 * PACKET * GWEI)
    finally:
        for end in clients:
            yield end.disconnect()
        for connector in reversed(started):
            yield connector.stopService()


def _all(ds):
    from twisted.internet.defer import gatherResults

    return gatherResults(ds, consumeErrors=True)


def _idle(*plugins):
    """True when no plugin has a payout queued."""
    return _all([p.settlement.payouts.prepared() for p in plugins]).addCallback(
        lambda queued: all(len(q) == 0 for q in queued))
