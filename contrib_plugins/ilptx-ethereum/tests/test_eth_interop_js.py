"""Interop with the real ilp-plugin-ethereum 3.0.0-beta.20 (npm, tests/js) on ganache, over real BTP WebSockets:
ilptx's ethereum plugin as the dialler of a JS listener and as the listener of a JS dialler; 1,000,000 gwei paid
each way, claims accepted by both sides, and channels claimed on chain for exactly the claimed wei."""

from __future__ import annotations

import json
import os
import socket

import pytest
import pytest_twisted
from eth_helpers import free_ports, until
from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ilptx.plugins.base import PluginServices
from ilptx.stores.memory import MemoryStore

from ilptx_ethereum.hooks import ethereum_plugin

JS_HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js", "run_js_plugin.js")
GWEI = 10 ** 9
PAID = 1_000_000  # gwei each way


class JsPlugin(ProcessProtocol):
    """The JS plugin in a node child (tests/js/run_js_plugin.js): JSON events from stdout, commands to stdin."""

    def __init__(self) -> None:
        self.events: list = []
        self.stderr = b""
        self._buffer = b""
        self._ids = 0
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        self.events += [json.loads(line) for line in lines if line.strip()]

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason) -> None:
        self.ended.callback(None)

    def money(self) -> int:
        """gwei the JS plugin's money handler received so far."""
        return sum(int(e["amount"]) for e in self.events if e["event"] == "money")

    @pytest_twisted.inlineCallbacks
    def wait_for(self, predicate, what: str, timeout: float = 30.0):
        for _ in range(int(timeout / 0.05)):
            if predicate():
                return
            if self.ended.called:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"waiting for {what}: events {self.events}\n{self.stderr.decode(errors='replace')}")

    @pytest_twisted.inlineCallbacks
    def command(self, cmd: str, **args):
        self._ids += 1
        ident = self._ids
        self.transport.write((json.dumps({"id": ident, "cmd": cmd, **args}) + "\n").encode())
        yield self.wait_for(lambda: any(e.get("id") == ident for e in self.events), f"command {cmd}")
        (answer,) = [e for e in self.events if e.get("id") == ident]
        assert answer["event"] == "done", answer


@pytest.mark.parametrize("ilptx_listens", [False, True], ids=["ilptx-dials-js", "js-dials-ilptx"])
@pytest_twisted.inlineCallbacks
def test_ilptx_and_the_js_plugin_pay_each_other_and_claim_on_chain(ganache, js_modules, ilptx_listens):
    """1e6 gwei each way between ilptx and ilp-plugin-ethereum 3.0.0-beta.20: both credit exactly; ilptx claims the JS
    channel (exact wei net of gas) and the JS plugin claims ilptx's on requestClose."""
    js_key, our_key = ganache.keys[1], ganache.keys[2]
    (port,) = free_ports()
    btp_js = {"server": f"btp+ws://js:s@127.0.0.1:{port}"} if ilptx_listens else {"listener": {"port": port,
                                                                                                "secret": "s"}}
    btp_ours = ({"listener": {"host": "127.0.0.1", "port": port, "secret": "s"}} if ilptx_listens
                else {"server": f"btp+ws://ilptx:s@127.0.0.1:{port}"})
    ours = ethereum_plugin({**btp_ours, "ethereumPrivateKey": our_key, "ethereumProvider": ganache.url,
                            "contractAddress": ganache.contract_address, "outgoingChannelAmount": 3_000_000},
                           account_id="js", services=PluginServices(reactor=reactor, log=Logger(), store=MemoryStore()))
    credited: list = []
    ours.register_money_handler(credited.append)
    js = JsPlugin()
    config = {"url": ganache.url, "key": js_key, "contractAddress": ganache.contract_address, **btp_js}
    process = reactor.spawnProcess(js, js_modules.node, [js_modules.node, JS_HARNESS, json.dumps(config)],
                                   env=dict(os.environ), path=os.path.dirname(JS_HARNESS))
    try:
        if ilptx_listens:
            yield ours.connect()
        else:
            for _ in range(400):  # the JS listener's port
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                yield deferLater(reactor, 0.05, lambda: None)
            yield ours.connect()
        yield js.wait_for(lambda: any(e["event"] == "connected" for e in js.events), "the JS plugin to connect")
        yield until(lambda: ours.module.peer_address is not None, "the info exchange")

        # ilptx → JS: our channel opens, the zero claim and the claim are accepted, the JS money handler gets it all
        yield ours.send_money(PAID)
        yield js.wait_for(lambda: js.money() >= PAID, "the JS plugin to be credited")
        assert js.money() == PAID

        # JS → ilptx: the JS plugin opens a channel (fundOutgoingChannel) and pays; we credit exactly
        yield js.command("fund", wei=str(5_000_000 * GWEI))
        yield js.command("sendMoney", gwei=str(PAID))
        yield until(lambda: sum(credited) >= PAID, "ilptx to be credited")
        assert sum(credited) == PAID and all(type(x) is int for x in credited)
        info = (yield ours.get_admin_info())["ethereum"]
        assert info["incomingChannel"]["bestClaim"] == str(PAID * GWEI)

        # ilptx claims the JS plugin's channel: exactly the claim, net of our gas
        before = ganache.balance(ours.module.address)
        tx = yield ours.module.claim_incoming(reason="test", worthwhile_only=False)
        assert ganache.balance(ours.module.address) - before == PAID * GWEI - tx.fee_wei
        assert (yield ours.module.ledger.channel(info["incomingChannel"]["channelId"])) is None

        # requestClose: the JS plugin claims our channel on chain
        js_address = ours.module.peer_address
        before = ganache.balance(js_address)
        yield ours.module.request_close()
        out_channel = info["outgoingChannel"]["channelId"]
        yield until(lambda: ours.module.ledger.channel(out_channel).addCallback(lambda c: c is None),
                     "the JS plugin to claim our channel")
        _, js_fee = ganache.last_tx_fee(js_address)
        assert ganache.balance(js_address) - before == PAID * GWEI - js_fee
        yield js.command("quit")
    finally:
        yield ours.disconnect()
        if not js.ended.called:
            process.signalProcess("KILL")
        yield js.ended
