"""Interop of ilptx's ``role: server`` with the real ilp-plugin-ethereum 3.0.0-beta.20 (npm, tests/js) as one of
its clients, on ganache over real BTP WebSockets, with an ilptx client beside it: claims accepted both ways
(the JS client pays the server; the server pays the JS client after its Fulfill), a claim the other client forges
on the JS client's channel refused with nothing credited, and both channels claimed on chain for exactly the
claimed wei net of gas."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

import pytest_twisted
from eth_helpers import free_ports, until
from test_eth_interop_js import JS_HARNESS, JsPlugin
from twisted.internet import reactor
from twisted.logger import Logger

from ilptx.codec.btp import CONTENT_JSON
from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.plugins.base import PluginServices
from ilptx.stores.memory import MemoryStore

from ilptx_ethereum.claims import make_claim
from ilptx_ethereum.hooks import ethereum_plugin

GWEI = 10 ** 9
PAID = 1_000_000  # gwei each way
FULFILLMENT = b"\x5a" * 32


def _services(store=None) -> PluginServices:
    return PluginServices(reactor=reactor, log=Logger(), store=store if store is not None else MemoryStore())


@pytest_twisted.inlineCallbacks
def test_js_client_of_the_ilptx_server_pays_and_is_paid_and_forged_claims_credit_nothing(ganache, js_modules):
    """JS client → ilptx server 1e6 gwei and server → JS client 1e6 gwei (after its Fulfill), both credited exactly;
    the ilptx client's forged claim on the JS channel is refused; both channels claimed on chain exactly."""
    js_key, server_key, eve_key = ganache.keys[1], ganache.keys[2], ganache.keys[3]
    (port,) = free_ports()
    store = MemoryStore()
    chain = {"ethereumProvider": ganache.url, "contractAddress": ganache.contract_address,
             "outgoingChannelAmount": 3_000_000}
    server = ethereum_plugin({"role": "server", "listener": {"host": "127.0.0.1", "port": port},
                              "debugHostIldcpInfo": {"clientAddress": "test.server", "assetScale": 9,
                                                     "assetCode": "ETH"},
                              "ethereumPrivateKey": server_key, **chain}, account_id="clients", services=_services(store))
    eve = ethereum_plugin({"server": f"btp+ws://eve:eve-token@127.0.0.1:{port}", "ethereumPrivateKey": eve_key,
                           **chain}, account_id="eve", services=_services())
    credited: list = []
    server.register_money_handler(credited.append)
    eve.register_money_handler(lambda amount: None)
    js = JsPlugin()
    config = {"url": ganache.url, "key": js_key, "contractAddress": ganache.contract_address,
              "server": f"btp+ws://js:js-token@127.0.0.1:{port}", "fulfillment": FULFILLMENT.hex()}
    process = reactor.spawnProcess(js, js_modules.node, [js_modules.node, JS_HARNESS, json.dumps(config)],
                                   env=dict(os.environ), path=os.path.dirname(JS_HARNESS))
    try:
        yield server.connect()
        yield js.wait_for(lambda: any(e["event"] == "connected" for e in js.events), "the JS client to connect")
        yield eve.connect()
        yield until(lambda: "js" in server.accounts and server.accounts["js"].module.peer_address is not None
                    and "eve" in server.accounts and server.accounts["eve"].module.peer_address is not None,
                    "both clients' info exchange")
        js_module = server.accounts["js"].module

        # JS client → server: its channel, the zero claim and the claim are accepted; the server credits it exactly
        yield js.command("fund", wei=str(5_000_000 * GWEI))
        yield js.command("sendMoney", gwei=str(PAID))
        yield until(lambda: sum(credited) >= PAID, "the server to credit the JS client")
        assert sum(credited) == PAID
        assert (yield store.get_balance("clients:js")).balance == -PAID
        channel_id = js_module.incoming["channelId"]

        # server → JS client: a Prepare the JS client fulfills; the server opens a channel and pays it exactly
        prepare = Prepare(PAID, datetime.now(timezone.utc) + timedelta(seconds=30),
                          hashlib.sha256(FULFILLMENT).digest(), "test.server.js.x", b"")
        assert isinstance(decode_response((yield server.send_data(encode_packet(prepare)))), Fulfill)
        yield js.wait_for(lambda: js.money() >= PAID, "the JS client to be credited")
        assert js.money() == PAID

        # eve (an ilptx client) presents a claim on the JS client's channel, signed by its sender: refused
        forged = make_claim(js_key, ganache.contract_address, channel_id, 2 * PAID * GWEI)
        body = json.dumps({"channelId": forged.channel_id, "signature": forged.signature, "value": str(forged.value),
                           "contractAddress": forged.contract_address}).encode()
        refused = []
        yield eve.settlement.call_peer("machinomy", body, CONTENT_JSON).addErrback(refused.append)
        assert refused and "ChannelLinkedElsewhereError" in str(refused[0].value), refused
        assert sum(credited) == PAID
        assert (yield store.get_balance("clients:eve")).balance == 0

        info = (yield server.get_admin_info())["clients"]["js"]["ethereum"]
        assert info["incomingChannel"]["bestClaim"] == str(PAID * GWEI)
        assert info["outgoingChannel"]["claimed"] == str(PAID * GWEI)

        # the server claims the JS client's channel: exactly the claim, net of its gas
        before = ganache.balance(js_module.address)
        tx = yield js_module.claim_incoming(reason="test", worthwhile_only=False)
        assert ganache.balance(js_module.address) - before == PAID * GWEI - tx.fee_wei
        assert (yield js_module.ledger.channel(channel_id)) is None

        # requestClose: the JS client claims the server's channel to it on chain
        js_address = js_module.peer_address
        before = ganache.balance(js_address)
        yield js_module.request_close()
        out_channel = info["outgoingChannel"]["channelId"]
        yield until(lambda: js_module.ledger.channel(out_channel).addCallback(lambda c: c is None),
                    "the JS client to claim the server's channel")
        _, js_fee = ganache.last_tx_fee(js_address)
        assert ganache.balance(js_address) - before == PAID * GWEI - js_fee
        yield js.command("quit")
    finally:
        yield eve.disconnect()
        yield server.disconnect()
        if not js.ended.called:
            process.signalProcess("KILL")
        yield js.ended
