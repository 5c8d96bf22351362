"""Interop of ilptx's xrp-asym-client with the real JS ``ilp-plugin-xrp-asym-server`` 1.8.1 (npm, pinned in
tests/js; on ilp-plugin-mini-accounts 4.2), both on the rippled double run as its own process: a ``twistd`` connector
whose parent account is ``plugin: xrp-asym-client`` (a URL without a password: the BTP token is derived as the JS
client derives it) and a Node process running the JS server with ilp-protocol-stream 2.7.1 over it as the sender. The
JS server pays a claim after every Fulfill; ilptx accepts each; its SIGTERM submits the best claim on the ledger."""

from __future__ import annotations

import signal

import pytest_twisted
import treq
from conftest import make_wallet
from twisted.internet import reactor
from xrp_procs import JsPlugin, free_ports, start_connector, start_double, until
from xrpl import CryptoAlgorithm

from ilptx_xrp_paychan.rippled import RippledClient

FUNDS = 1000 * 10 ** 6
TOTAL = 10 ** 8  # units at scale 9: 0.1 XRP
CHUNKS = 5
FEE = 10  # drops: the double's base fee, what ilptx pays


@pytest_twisted.inlineCallbacks
def _get(port: int, path: str):
    response = yield treq.get(f"http://127.0.0.1:{port}{path}")
    assert response.code == 200, (path, response.code)
    return (yield treq.json_content(response))


@pytest_twisted.inlineCallbacks
def test_js_asym_server_pays_the_ilptx_asym_client_by_stream(installed, js_modules):
    """The JS asym server sends 10^8 units by STREAM (5 chunks) to ilptx's stream-receiver behind its xrp-asym-client
    parent: the handshake opens both channels, every claim is accepted (credited = 10^8 exactly), and ilptx's SIGTERM
    claims exactly ceil(10^8 / 1000) drops of the server's channel on the ledger."""
    ours, theirs = make_wallet(), make_wallet(CryptoAlgorithm.SECP256K1)
    rippled_port, btp, admin, spsp = free_ports(4)
    rippled = f"ws://127.0.0.1:{rippled_port}"
    double = start_double(rippled_port, {w.classic_address: FUNDS for w in (ours, theirs)})
    client = RippledClient(rippled, reactor)
    client.start()
    children: list = []
    try:
        js = JsPlugin(js_modules.node, {"xrpServer": rippled, "secret": theirs.seed, "address": theirs.classic_address,
                                        "currencyScale": 9, "port": btp, "clientAddress": "test.js"},
                      script="run_js_asym_server.js")
        children.append(js)
        yield until(lambda: js.has("connected") or js.proc.poll() is not None, "the JS asym server to listen", 90)
        assert js.has("connected"), js.output()
        config = {"adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin, "spread": 0, "accounts": {
            "up": {"relation": "parent", "plugin": "xrp-asym-client", "assetCode": "XRP", "assetScale": 9,
                   "balance": {"maximum": str(10 ** 10), "minimum": str(-10 ** 10)},
                   "options": {"server": f"btp+ws://127.0.0.1:{btp}", "xrpServer": rippled, "secret": ours.seed,
                               "currencyScale": 9}},
            "shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "XRP", "assetScale": 9,
                     "balance": {"minimum": str(-10 ** 10), "maximum": "0"},
                     "options": {"spsp": {"host": "127.0.0.1", "port": spsp}}}}}
        connector = start_connector(config, installed)
        children.append(connector)
        connector.wait_for_ports(spsp, admin)
        try:
            yield until(lambda: _get(admin, "/accounts/up").addCallback(
                lambda r: r["info"]["xrp-asym-client"]["incomingChannel"] is not None), "the asym handshake", 40)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{js.output()}\n{connector.output()}") from None
        paying = js.command("stream", spsp=f"http://127.0.0.1:{spsp}/", chunks=[str(TOTAL // CHUNKS)] * CHUNKS)
        yield until(lambda: js.answer(paying), "the JS STREAM payment", 180)
        assert js.answer(paying)["event"] == "done", js.output() + connector.output()

        def all_credited():
            return _get(admin, "/accounts/up").addCallback(
                lambda r: r["info"]["settlement"]["credited"] == str(TOTAL))

        try:
            yield until(all_credited, "ilptx to credit every claim of the JS server", 30)
        except AssertionError as exc:
            info = (yield _get(admin, "/accounts/up"))["info"]
            raise AssertionError(f"{exc}\n{info}\n{js.output()}\n{connector.output()}") from None
        info = (yield _get(admin, "/accounts/up"))["info"]
        assert connector.output().count("credit claim:") >= CHUNKS, connector.output()
        asked = js.command("info")
        yield until(lambda: js.answer(asked), "the JS server's info")
        state = js.answer(asked)
        assert state["event"] == "done" and "channel" in state, f"{state}\n{js.output()}\n{connector.output()}"
        mine = info["xrp-asym-client"]
        assert state["channel"] == mine["outgoingChannel"]["channelId"], (state, mine)
        assert state["clientChannel"] == mine["incomingChannel"]["channelId"], (state, mine)
        assert state["outgoingBalance"] == str(TOTAL), state
        channel = mine["incomingChannel"]["channelId"]
        before = int((yield client.account_info(ours.classic_address))["Balance"])
        assert connector.stop() in (0, -signal.SIGTERM), connector.output()
        yield until(lambda: client.channel(channel).addCallback(lambda n: n["Balance"] == str(TOTAL // 1000)),
                    "ilptx's claim to be validated", 30)
        assert int((yield client.account_info(ours.classic_address))["Balance"]) - before == TOTAL // 1000 - FEE
    finally:
        yield client.stop()
        for child in reversed(children):
            if hasattr(child, "stop"):
                child.stop()
            child.close()
        double.stop()
        double.close()
