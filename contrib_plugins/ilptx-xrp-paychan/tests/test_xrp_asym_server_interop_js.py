"""Interop of ilptx's xrp-asym-server with the real JS ``ilp-plugin-xrp-asym-client`` 1.6.0 (npm, pinned in tests/js),
both on the rippled double run as its own process: a ``twistd -n ilpconnector`` whose child account ``moneyd`` is
``plugin: xrp-asym-server`` (mini-accounts) and a Node process running the JS client (its BTP token derived from its
secret, as moneyd does) with ilp-protocol-stream 2.7.1 over it as the sender to ilptx's stream-receiver. The JS client
prefunds, then pays a claim each time 2·10^7 units were fulfilled (several settle thresholds); ilptx accepts every
claim, and its SIGTERM submits the best one: the channel pays exactly its drops."""

from __future__ import annotations

import signal

import pytest_twisted
from test_xrp_interop_js import _get, _Setup
from xrp_procs import JsPlugin, free_ports, start_connector, until

TOTAL = 10 ** 8  # units at scale 9: 0.1 XRP
CHUNKS = 5
THRESHOLD = 2 * 10 ** 7
PREFUND = 10 ** 7
FEE = 10  # drops: the double's base fee, what ilptx pays for its claim


@pytest_twisted.inlineCallbacks
def test_js_asym_client_pays_the_ilptx_asym_server_by_stream(installed, js_modules):
    """The JS asym client opens its channel (proved for its ILP address), gets one from ilptx by fund_channel, prefunds
    10^7, streams 10^8 units to ilptx's stream-receiver paying a claim every 2·10^7: ilptx credits every claim (the
    client's balance = −prefund at the end), and ilptx's SIGTERM claims exactly ceil(paid / 1000) drops on the ledger."""
    s = _Setup()
    btp, admin, spsp = free_ports(3)
    accounts = {
        "moneyd": {"relation": "child", "plugin": "ilp-plugin-xrp-asym-server", "assetCode": "XRP", "assetScale": 9,
                   "options": {"listener": {"host": "127.0.0.1", "port": btp}, "xrpServer": s.rippled,
                               "secret": s.ours.seed, "currencyScale": 9, "maxBalance": str(THRESHOLD + PREFUND),
                               "claimInterval": 3_600_000}},
        "shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "XRP", "assetScale": 9,
                 "balance": {"minimum": str(-10 ** 10), "maximum": "0"},
                 "options": {"spsp": {"host": "127.0.0.1", "port": spsp}}}}
    try:
        connector = start_connector({"ilpAddress": "test.ilsp", "adminApi": True, "adminApiHost": "127.0.0.1",
                                     "adminApiPort": admin, "spread": 0, "accounts": accounts}, installed)
        s.children.append(connector)
        connector.wait_for_ports(admin, btp, spsp)
        js = JsPlugin(js_modules.node, {"server": f"btp+ws://127.0.0.1:{btp}", "xrpServer": s.rippled,
                                        "secret": s.theirs.seed, "currencyScale": 9, "settleThreshold": str(THRESHOLD)},
                      script="run_js_asym_client.js")
        s.children.append(js)

        def output():
            return f"{js.output()}\n{connector.output()}"

        @pytest_twisted.inlineCallbacks
        def wait(predicate, what, timeout=60):
            try:
                yield until(predicate, what, timeout)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{output()}") from None

        yield wait(lambda: js.has("connected") or js.proc.poll() is not None, "the JS asym client handshake", 120)
        assert js.has("connected"), output()
        prefund = js.command("pay", amount=str(PREFUND))
        yield wait(lambda: js.answer(prefund), "the prefunding claim")
        assert js.answer(prefund)["event"] == "done", output()
        paying = js.command("stream", spsp=f"http://127.0.0.1:{spsp}/", chunks=[str(TOTAL // CHUNKS)] * CHUNKS)
        yield wait(lambda: js.answer(paying), "the JS STREAM payment", 240)
        assert js.answer(paying)["event"] == "done", output()
        paid = PREFUND + TOTAL
        settled = [e for e in js.events if e["event"] == "settled"]
        assert int(settled[-1]["paid"]) == paid and len(settled) >= 1 + TOTAL // THRESHOLD, settled
        clients = (yield _get(admin, "/accounts/moneyd"))["info"]["clients"]
        assert len(clients) == 1, clients
        client = next(iter(clients.values()))
        assert client["balance"] == str(-PREFUND), client
        mine = client["xrp-asym-server"]
        connected = next(e for e in js.events if e["event"] == "connected")
        assert mine["incomingChannel"]["channelId"] == connected["channel"].upper(), (mine, connected)
        assert mine["outgoingChannel"]["channelId"] == connected["clientChannel"].upper(), (mine, connected)
        channel = mine["incomingChannel"]["channelId"]
        before = yield s.balance(s.ours)
        assert connector.stop() in (0, -signal.SIGTERM), output()
        drops = -(-paid // 1000)
        yield wait(lambda: s.client.channel(channel).addCallback(lambda n: n["Balance"] == str(drops)),
                   "ilptx's claim to be validated", 30)
        assert (yield s.balance(s.ours)) - before == drops - FEE
    finally:
        yield s.close()
