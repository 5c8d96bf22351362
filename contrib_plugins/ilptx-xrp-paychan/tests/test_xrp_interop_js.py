"""Interop with the real JS ``ilp-plugin-xrp-paychan`` 2.4.1 (npm, pinned in tests/js), both on the rippled double
run as its own process (the JS plugin talks to it through ripple-lib 0.22 over WebSocket): a ``twistd`` connector
whose account ``js`` is ``plugin: xrp-paychan`` and a Node process running the JS plugin with ilp-protocol-stream
2.7.1 over it, both ways (ilptx listens / the JS plugin listens). A STREAM payment crosses several settle thresholds,
every claim is accepted by the other side, and the claim one side submits on the ledger moves exactly its drops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest_twisted
import treq
from conftest import make_wallet
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from xrp_procs import ILPTX_TREE, JsPlugin, free_ports, start_connector, start_double, until
from xrpl import CryptoAlgorithm

from ilptx_xrp_paychan.rippled import RippledClient

FUNDS = 1000 * 10 ** 6
TOTAL = 10 ** 8  # units at scale 9: 0.1 XRP
PACKET = 7_000_001  # maxPacketAmount of the paying accounts: claims are not whole drops on the way
RIPPLE_LIB_FEE = 12  # drops: ripple-lib's getFee is the 10-drop base fee × its feeCushion 1.2


def _config(rippled: str, wallet, btp: dict, admin: int, balance: dict, child: dict) -> dict:
    js = {"relation": "child", "plugin": "xrp-paychan", "assetCode": "XRP", "assetScale": 9, "balance": balance,
          "maxPacketAmount": str(PACKET),
          "options": {**btp, "xrpServer": rippled, "secret": wallet.seed, "currencyScale": 9}}
    return {"ilpAddress": "test.a", "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin,
            "accounts": {"js": js, **child}}


@pytest_twisted.inlineCallbacks
def _get(port: int, path: str):
    response = yield treq.get(f"http://127.0.0.1:{port}{path}")
    assert response.code == 200, (path, response.code)
    return (yield treq.json_content(response))


def _drops(units: int) -> int:
    return -(-units // 1000)


class _Setup:
    def __init__(self):
        self.ours, self.theirs = make_wallet(), make_wallet(CryptoAlgorithm.SECP256K1)
        self.rippled_port, = free_ports(1)
        self.rippled = f"ws://127.0.0.1:{self.rippled_port}"
        self.double = start_double(self.rippled_port, {w.classic_address: FUNDS for w in (self.ours, self.theirs)})
        self.client = RippledClient(self.rippled, reactor)
        self.client.start()
        self.children: list = []

    def balance(self, wallet):
        return self.client.account_info(wallet.classic_address).addCallback(lambda a: int(a["Balance"]))

    @pytest_twisted.inlineCallbacks
    def close(self):
        yield self.client.stop()
        for child in reversed(self.children):
            if hasattr(child, "stop"):
                child.stop()
            child.close()
        self.double.stop()
        self.double.close()


@pytest_twisted.inlineCallbacks
def test_ilptx_listener_pays_the_js_client_by_stream(installed, js_modules):
    """ilptx listens, the JS plugin dials: 10^8 units by STREAM from ilptx's child to a JS STREAM server; the
    connector settles every 2·10^7 with claims the JS plugin accepts (money events = what ilptx paid); the JS plugin's
    disconnect submits its best claim: the channel pays exactly ceil(paid/1000) drops."""
    s = _Setup()
    try:
        btp, alice, admin, spsp = free_ports(4)
        balance = {"maximum": str(10 ** 10), "settleThreshold": str(-2 * 10 ** 7), "settleTo": "0"}
        payer = {"alice": {"relation": "child", "plugin": "btp", "assetCode": "XRP", "assetScale": 9,
                           "balance": {"maximum": str(10 ** 10)}, "maxPacketAmount": str(PACKET),
                           "options": {"listener": {"host": "127.0.0.1", "port": alice, "secret": "alice"}}}}
        connector = start_connector(_config(s.rippled, s.ours, {"listener": {"host": "127.0.0.1", "port": btp,
                                                                             "secret": "js"}},
                                            admin, balance, payer), installed)
        s.children.append(connector)
        connector.wait_for_ports(btp, alice, admin)
        js = JsPlugin(js_modules.node, {"xrpServer": s.rippled, "secret": s.theirs.seed, "currencyScale": 9,
                                        "server": f"btp+ws://js:js@127.0.0.1:{btp}", "spspPort": spsp})
        s.children.append(js)
        yield until(lambda: js.has("spsp") or js.proc.poll() is not None, "the JS plugin to connect", 90)
        assert js.has("spsp"), js.output() + connector.output()
        done = yield deferToThread(subprocess.run, [
            sys.executable, "-m", "ilptx", "pay", f"http://127.0.0.1:{spsp}/", str(TOTAL), "--allow-http",
            "--uplink", f"btp+ws://:alice@127.0.0.1:{alice}", "--json",
            "--max-in-flight", "1"],  # one packet at a time, as ilp-protocol-stream: thresholds crossed one by one
            capture_output=True, text=True, timeout=300, cwd=ILPTX_TREE)
        assert done.returncode == 0, done.stderr + js.output() + connector.output()
        assert json.loads(done.stdout.strip().splitlines()[-1])["delivered"] == str(TOTAL)

        def all_credited():
            return _get(admin, "/accounts/js").addCallback(
                lambda r: not r["info"]["settlement"]["queuedPayouts"]
                and sum(js.money()) == int(r["info"]["settlement"]["paid"]) > 0)

        yield until(all_credited, "the JS plugin to accept every claim", 60)
        info = (yield _get(admin, "/accounts/js"))["info"]
        paid = int(info["settlement"]["paid"])
        assert len(js.money()) >= 4 and paid >= TOTAL - 2 * 10 ** 7, (js.money(), info)
        balances = (yield _get(admin, "/balance"))["accounts"]
        assert int(balances["js"]["balance"]) == paid - TOTAL  # what is below the threshold is still owed
        asked = js.command("info")
        yield until(lambda: js.answer(asked), "the JS plugin's info")
        state = js.answer(asked)
        channel = info["xrp-paychan"]["outgoingChannel"]["channelId"]
        assert state["incoming"] == channel and state["incomingClaim"]["amount"] == str(paid)

        before = yield s.balance(s.theirs)
        quit_id = js.command("quit")
        yield until(lambda: js.proc.poll() is not None, "the JS plugin to claim and quit", 60)
        assert js.answer(quit_id) is not None, js.output()
        node = yield s.client.channel(channel)
        assert node["Balance"] == str(_drops(paid)), (node, js.output())
        assert (yield s.balance(s.theirs)) - before == _drops(paid) - RIPPLE_LIB_FEE
    finally:
        yield s.close()


@pytest_twisted.inlineCallbacks
def test_js_listener_pays_ilptx_by_stream(installed, js_modules):
    """The JS plugin listens, ilptx dials: the JS side pays 10^8 units by STREAM to ilptx's stream-receiver in 5 chunks,
    sendMoney after each (the connector's balance maximum needs every claim to go on; its channel is funded on the
    way); ilptx credits exactly 10^8; its SIGTERM claims on the ledger exactly 10^5 drops."""
    s = _Setup()
    try:
        btp, admin, spsp = free_ports(3)
        js = JsPlugin(js_modules.node, {"xrpServer": s.rippled, "secret": s.theirs.seed, "currencyScale": 9,
                                        "listener": {"port": btp, "secret": "js"},
                                        "opts": {"channelAmount": TOTAL}})
        s.children.append(js)
        shop = {"shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "XRP", "assetScale": 9,
                         "balance": {"minimum": str(-10 ** 10), "maximum": "0"},
                         "options": {"spsp": {"host": "127.0.0.1", "port": spsp}}}}
        connector = start_connector(_config(s.rippled, s.ours, {"server": f"btp+ws://a:js@127.0.0.1:{btp}"}, admin,
                                            {"maximum": str(3 * 10 ** 7)}, shop), installed)
        s.children.append(connector)
        connector.wait_for_ports(spsp, admin)
        yield until(lambda: js.has("connected") or js.proc.poll() is not None, "the JS plugin to connect", 90)
        assert js.has("connected"), js.output() + connector.output()
        yield until(lambda: _get(admin, "/accounts/js").addCallback(
            lambda r: r["info"]["xrp-paychan"]["incomingChannel"] is not None), "ilptx to link the JS channel", 60)
        paying = js.command("stream", spsp=f"http://127.0.0.1:{spsp}/", chunks=[str(TOTAL // 5)] * 5)
        yield until(lambda: js.answer(paying), "the JS STREAM payment", 180)
        assert js.answer(paying)["event"] == "done", js.output() + connector.output()
        info = (yield _get(admin, "/accounts/js"))["info"]
        assert info["settlement"]["credited"] == str(TOTAL), info
        assert connector.output().count("credit claim:") >= 5, connector.output()  # every chunk's claim accepted
        balances = (yield _get(admin, "/balance"))["accounts"]
        assert balances["js"]["balance"] == "0" and balances["shop"]["balance"] == str(-TOTAL), balances
        channel = info["xrp-paychan"]["incomingChannel"]["channelId"]
        yield until(lambda: s.client.channel(channel).addCallback(lambda n: n["Amount"] == str(2 * _drops(TOTAL))),
                    "the JS plugin to fund its channel past fundThreshold (doubling it)", 30)
        before = yield s.balance(s.ours)
        assert connector.stop() in (0, -signal.SIGTERM), connector.output()
        assert "claimed 100000 drops of channel" in connector.output(), connector.output()
        yield until(lambda: s.client.channel(channel).addCallback(lambda n: n["Balance"] == str(_drops(TOTAL))),
                    "ilptx's claim to be validated", 30)
        assert (yield s.balance(s.ours)) - before == _drops(TOTAL) - 10
    finally:
        yield s.close()
