"""Interop of ilptx's xrp-asym-client with the real JS ``ilp-plugin-xrp-asym-server`` 1.8.1 (npm, pinned in
tests/js; on ilp-plugin-mini-accounts 4.2), both on the rippled double run as its own process: a ``twistd`` connector
whose parent account is ``plugin: xrp-asym-client`` (a URL without a password: the BTP token is derived as the JS
client derives it) and a Node process running the JS server with ilp-protocol-stream 2.7.1 over it as the sender. Both
ways: the JS server pays a claim after every Fulfill, ilptx accepts each and its SIGTERM submits the best one; ilptx
settles its parent with claims the JS server accepts, and the JS server's on-ledger claim moves exactly their drops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest_twisted
from test_xrp_interop_js import _get, _Setup
from twisted.internet.threads import deferToThread
from xrp_procs import ILPTX_TREE, JsPlugin, free_ports, start_connector, until

TOTAL = 10 ** 8  # units at scale 9: 0.1 XRP
CHUNKS = 5
FEE = 10  # drops: the double's base fee, what ilptx pays
PACKET = 7_000_001  # maxPacketAmount towards the server: claims are not whole drops on the way


class _Asym(_Setup):
    """The double, the JS asym server (``js_extra`` merged into its config) and an ilptx connector whose parent ``up``
    is ``plugin: xrp-asym-client`` (``up_extra`` merged into the account) plus ``accounts``; started in :meth:`start`."""

    def __init__(self, installed, js_modules, js_extra: dict, up_extra: dict, accounts: dict, ports: tuple):
        super().__init__()
        self.btp, self.admin = free_ports(2)
        self.args = (installed, js_modules, js_extra, up_extra, accounts, ports)

    @pytest_twisted.inlineCallbacks
    def start(self):
        installed, js_modules, js_extra, up_extra, accounts, ports = self.args
        self.js = JsPlugin(js_modules.node, {"xrpServer": self.rippled, "secret": self.theirs.seed,
                                             "address": self.theirs.classic_address, "currencyScale": 9,
                                             "port": self.btp, "clientAddress": "test.js", **js_extra},
                           script="run_js_asym_server.js")
        self.children.append(self.js)
        yield until(lambda: self.js.has("connected") or self.js.proc.poll() is not None, "the JS asym server", 90)
        assert self.js.has("connected"), self.js.output()
        up = {"relation": "parent", "plugin": "xrp-asym-client", "assetCode": "XRP", "assetScale": 9,
              "balance": {"maximum": str(10 ** 10), "minimum": str(-10 ** 10)},
              "options": {"server": f"btp+ws://127.0.0.1:{self.btp}", "xrpServer": self.rippled,
                          "secret": self.ours.seed, "currencyScale": 9}, **up_extra}
        self.connector = start_connector({"adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": self.admin,
                                          "spread": 0, "accounts": {"up": up, **accounts}}, installed)
        self.children.append(self.connector)
        self.connector.wait_for_ports(self.admin, *ports)
        yield self.wait(lambda: _get(self.admin, "/accounts/up").addCallback(
            lambda r: r["info"]["xrp-asym-client"]["incomingChannel"] is not None), "the asym handshake", 40)

    def output(self) -> str:
        return f"{self.js.output()}\n{self.connector.output()}"

    @pytest_twisted.inlineCallbacks
    def wait(self, predicate, what: str, timeout: float = 60):
        try:
            yield until(predicate, what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None

    @pytest_twisted.inlineCallbacks
    def js_info(self):
        asked = self.js.command("info")
        yield until(lambda: self.js.answer(asked), "the JS server's info")
        state = self.js.answer(asked)
        assert state["event"] == "done" and "channel" in state, f"{state}\n{self.output()}"
        return state


@pytest_twisted.inlineCallbacks
def test_js_asym_server_pays_the_ilptx_asym_client_by_stream(installed, js_modules):
    """The JS asym server sends 10^8 units by STREAM (5 chunks) to ilptx's stream-receiver behind its xrp-asym-client
    parent: the handshake opens both channels, every claim is accepted (credited = 10^8 exactly), and ilptx's SIGTERM
    claims exactly ceil(10^8 / 1000) drops of the server's channel on the ledger."""
    spsp, = free_ports(1)
    shop = {"shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "XRP", "assetScale": 9,
                     "balance": {"minimum": str(-10 ** 10), "maximum": "0"},
                     "options": {"spsp": {"host": "127.0.0.1", "port": spsp}}}}
    s = _Asym(installed, js_modules, {}, {}, shop, (spsp,))
    try:
        yield s.start()
        paying = s.js.command("stream", spsp=f"http://127.0.0.1:{spsp}/", chunks=[str(TOTAL // CHUNKS)] * CHUNKS)
        yield s.wait(lambda: s.js.answer(paying), "the JS STREAM payment", 180)
        assert s.js.answer(paying)["event"] == "done", s.output()
        yield s.wait(lambda: _get(s.admin, "/accounts/up").addCallback(
            lambda r: r["info"]["settlement"]["credited"] == str(TOTAL)), "ilptx to credit every claim", 30)
        mine = (yield _get(s.admin, "/accounts/up"))["info"]["xrp-asym-client"]
        assert s.connector.output().count("credit claim:") >= CHUNKS, s.output()
        state = yield s.js_info()
        assert state["channel"] == mine["outgoingChannel"]["channelId"], (state, mine)
        assert state["clientChannel"] == mine["incomingChannel"]["channelId"], (state, mine)
        assert state["outgoingBalance"] == str(TOTAL), state
        channel = mine["incomingChannel"]["channelId"]
        before = yield s.balance(s.ours)
        assert s.connector.stop() in (0, -signal.SIGTERM), s.output()
        yield s.wait(lambda: s.client.channel(channel).addCallback(lambda n: n["Balance"] == str(TOTAL // 1000)),
                     "ilptx's claim to be validated", 30)
        assert (yield s.balance(s.ours)) - before == TOTAL // 1000 - FEE
    finally:
        yield s.close()


@pytest_twisted.inlineCallbacks
def test_ilptx_asym_client_pays_the_js_asym_server_by_stream(installed, js_modules):
    """ilptx pays 10^8 units by STREAM (ilptx pay through a child) to a JS STREAM server on the JS asym server: the
    connector settles its parent every 2·10^7 with claims the JS server accepts (its best claim = what ilptx paid);
    the JS server's claimInterval claim moves exactly ceil(paid / 1000) drops of ilptx's channel on the ledger."""
    spsp, alice = free_ports(2)
    payer = {"alice": {"relation": "child", "plugin": "btp", "assetCode": "XRP", "assetScale": 9,
                       "balance": {"maximum": str(10 ** 10)}, "maxPacketAmount": str(PACKET),
                       "options": {"listener": {"host": "127.0.0.1", "port": alice, "secret": "alice"}}}}
    up = {"maxPacketAmount": str(PACKET),
          "balance": {"maximum": str(10 ** 10), "minimum": str(-10 ** 10), "settleThreshold": str(-2 * 10 ** 7),
                      "settleTo": "0"}}
    s = _Asym(installed, js_modules, {"spspPort": spsp, "opts": {"maxBalance": str(4 * 10 ** 7), "claimInterval": 3000}},
              up, payer, (alice,))
    try:
        yield s.start()
        yield s.wait(lambda: s.js.has("spsp"), "the JS SPSP server", 30)
        done = yield deferToThread(subprocess.run, [
            sys.executable, "-m", "ilptx", "pay", f"http://127.0.0.1:{spsp}/", str(TOTAL), "--allow-http",
            "--uplink", f"btp+ws://:alice@127.0.0.1:{alice}", "--json"],
            capture_output=True, text=True, timeout=300, cwd=ILPTX_TREE)
        assert done.returncode == 0, done.stderr + s.output()
        assert json.loads(done.stdout.strip().splitlines()[-1])["delivered"] == str(TOTAL)
        yield s.wait(lambda: _get(s.admin, "/accounts/up").addCallback(
            lambda r: not r["info"]["settlement"]["queuedPayouts"] and int(r["info"]["settlement"]["paid"]) > 0),
            "ilptx's payouts to be acknowledged", 60)
        info = (yield _get(s.admin, "/accounts/up"))["info"]
        paid = int(info["settlement"]["paid"])
        assert paid >= TOTAL - 2 * 10 ** 7, info
        state = yield s.js_info()
        assert state["incomingClaim"]["amount"] == str(paid), (state, info)
        channel = info["xrp-asym-client"]["outgoingChannel"]["channelId"]
        yield s.wait(lambda: s.client.channel(channel).addCallback(lambda n: n.get("Balance") == str(-(-paid // 1000))),
                     "the JS server's claim on the ledger", 30)
    finally:
        yield s.close()
