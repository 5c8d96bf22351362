"""Two real ``twistd -n ilpconnector`` processes with this distribution installed by pip (``--target``, found
through its ``ilptx`` entry point), peered with ``plugin: xrp-paychan`` on the rippled double run as its own process
(``python -m rippled_double``, ledgers closing every 0.25 s): a 10^9-unit STREAM payment (asset scale 9 ↔ drops)
settles with no unit lost to rounding, the payee's SIGTERM claims on the ledger exactly the claimed drops; a ledger
that is down at start-up is logged and retried, and settles once it is up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest_twisted
import treq
from conftest import make_wallet
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from xrp_procs import ILPTX_TREE, free_ports, start_connector, start_double, until

from ilptx_xrp_paychan.rippled import RippledClient

UNITS = 10 ** 9
FUNDS = 1000 * 10 ** 6  # drops each side holds
PACKET = 33_333_333  # maxPacketAmount: not a multiple of 1000, so claims round up on the way


def _config(address: str, rippled: str, wallet, btp: dict, admin: int, route: str, child: dict) -> dict:
    peer = {"relation": "peer", "plugin": "xrp-paychan", "assetCode": "XRP", "assetScale": 9,
            "maxPacketAmount": str(PACKET),
            "balance": {"maximum": str(10 * UNITS), "settleThreshold": "-1", "settleTo": "0"},
            "options": {**btp, "xrpServer": rippled, "secret": wallet.seed, "currencyScale": 9}}
    return {"ilpAddress": address, "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin,
            "store": "sqlite", "storePath": "STORE",
            "accounts": {"peer": peer, **child}, "routes": [{"targetPrefix": route, "peerId": "peer"}]}


@pytest_twisted.inlineCallbacks
def _get(port: int, path: str):
    response = yield treq.get(f"http://127.0.0.1:{port}{path}")
    assert response.code == 200, (path, response.code)
    return (yield treq.json_content(response))


class _Pair:
    """Connector a (listens, pays through its child alice) and b (dials a; its stream-receiver shop is paid)."""

    def __init__(self, site: Path, rippled_port: int, tmp: Path) -> None:
        self.wallets = make_wallet(), make_wallet()
        peer, self.alice, self.spsp, self.admin_a, self.admin_b = free_ports(5)
        rippled = f"ws://127.0.0.1:{rippled_port}"
        alice = {"alice": {"relation": "child", "plugin": "btp", "assetCode": "XRP", "assetScale": 9,
                           "balance": {"maximum": str(10 * UNITS)},
                           "options": {"listener": {"host": "127.0.0.1", "port": self.alice, "secret": "alice"}}}}
        shop = {"shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "XRP", "assetScale": 9,
                         "balance": {"minimum": str(-10 * UNITS), "maximum": "0"},
                         "options": {"spsp": {"host": "127.0.0.1", "port": self.spsp}}}}
        self.configs = [
            _config("test.a", rippled, self.wallets[0], {"listener": {"host": "127.0.0.1", "port": peer,
                                                                      "secret": "ab"}}, self.admin_a, "test.b", alice),
            _config("test.b", rippled, self.wallets[1], {"server": f"btp+ws://b:ab@127.0.0.1:{peer}"}, self.admin_b,
                    "test.a", shop)]
        for config, name in zip(self.configs, "ab", strict=True):
            config["storePath"] = str(tmp / f"{name}.sqlite")
        self.site, self.peer_port = site, peer
        self.started: list = []

    def start(self, which: int):
        child = start_connector(self.configs[which], self.site)
        self.started.append(child)
        return child

    def pay(self, amount: int):
        """``ilptx pay`` from alice to the shop's SPSP endpoint (in a thread: it is a blocking subprocess)."""
        return deferToThread(subprocess.run, [sys.executable, "-m", "ilptx", "pay", f"http://127.0.0.1:{self.spsp}/",
                                              str(amount), "--allow-http", "--uplink",
                                              f"btp+ws://:alice@127.0.0.1:{self.alice}", "--json",
                                              # one packet at a time, as ilp-protocol-stream: every Fulfill
                                              # crosses the threshold on its own (the count below)
                                              "--max-in-flight", "1"],
                             capture_output=True, text=True, timeout=300, cwd=ILPTX_TREE)

    def close(self) -> None:
        for child in reversed(self.started):
            child.stop()
            child.close()


@pytest_twisted.inlineCallbacks
def test_two_twistd_connectors_settle_a_stream_payment_and_claim_exactly_on_sigterm(installed, tmp_path):
    """10^9 units (scale 9) by STREAM a→b in packets of 33333333: b credited exactly 10^9 by claims, a paid 10^9, both
    balances 0; SIGTERM of b submits the best claim: b's XRP rises by exactly 10^6 drops less the 10-drop fee."""
    rippled_port, = free_ports(1)
    pair = _Pair(installed, rippled_port, tmp_path)
    double = start_double(rippled_port, {w.classic_address: FUNDS for w in pair.wallets})
    client = RippledClient(f"ws://127.0.0.1:{rippled_port}", reactor)
    client.start()
    try:
        a = pair.start(0)
        a.wait_for_ports(pair.peer_port, pair.alice, pair.admin_a)
        b = pair.start(1)
        b.wait_for_ports(pair.spsp, pair.admin_b)
        yield until(lambda: _get(pair.admin_b, "/accounts/peer").addCallback(
            lambda r: r["info"]["xrp-paychan"]["incomingChannel"] is not None), "b to link a's channel", 60)
        done = yield pair.pay(UNITS)
        assert done.returncode == 0, done.stderr + a.output() + b.output()
        assert json.loads(done.stdout.strip().splitlines()[-1])["delivered"] == str(UNITS)

        @pytest_twisted.inlineCallbacks
        def settled():  # b credited by claims; a's payouts confirmed (a claim may cover payouts queued after it)
            b_side = (yield _get(pair.admin_b, "/accounts/peer"))["info"]["settlement"]
            a_side = (yield _get(pair.admin_a, "/accounts/peer"))["info"]["settlement"]
            return b_side["credited"] == a_side["paid"] == str(UNITS) and not a_side["queuedPayouts"]

        yield until(settled, "b to be credited and a's payouts confirmed, 10^9 units", 120)
        info_a = (yield _get(pair.admin_a, "/accounts/peer"))["info"]
        info_b = (yield _get(pair.admin_b, "/accounts/peer"))["info"]
        assert info_a["settlement"]["paid"] == str(UNITS) and not info_a["settlement"]["queuedPayouts"]
        assert info_a["settlement"]["bestOutgoingClaim"] == info_b["settlement"]["bestIncomingClaim"] == str(UNITS)
        channel = info_a["xrp-paychan"]["outgoingChannel"]["channelId"]
        assert channel == info_b["xrp-paychan"]["incomingChannel"]["channelId"]
        balances_a = (yield _get(pair.admin_a, "/balance"))["accounts"]
        balances_b = (yield _get(pair.admin_b, "/balance"))["accounts"]
        assert balances_a["peer"]["balance"] == balances_b["peer"]["balance"] == "0", (balances_a, balances_b)
        assert balances_a["alice"]["balance"] == str(UNITS) and balances_b["shop"]["balance"] == str(-UNITS)
        assert a.output().count("payout(s) of") >= 10 and "funded channel" in a.output()  # thresholds, a fund

        address_b = pair.wallets[1].classic_address
        before = int((yield client.account_info(address_b))["Balance"])
        assert (yield client.channel(channel))["Balance"] == "0"
        assert b.stop() in (0, -signal.SIGTERM), b.output()
        out = b.output()
        assert "claimed 1000000 drops of channel" in out and "Traceback" not in out, out
        yield until(lambda: client.channel(channel).addCallback(lambda node: node["Balance"] == str(10 ** 6)),
                    "the claim to be validated", 30)
        assert int((yield client.account_info(address_b))["Balance"]) - before == 10 ** 6 - 10
    finally:
        yield client.stop()
        pair.close()
        double.stop()
        double.close()


@pytest_twisted.inlineCallbacks
def test_ledger_down_at_start_is_logged_retried_and_settles_once_up(installed, tmp_path):
    """No rippled when both connectors start: they run, b logs the failed channel set-up and retries; once the double
    listens the channels are made and a STREAM payment settles exactly."""
    rippled_port, = free_ports(1)
    pair = _Pair(installed, rippled_port, tmp_path)
    double = None
    try:
        a = pair.start(0)
        a.wait_for_ports(pair.peer_port, pair.alice, pair.admin_a)
        b = pair.start(1)
        b.wait_for_ports(pair.spsp, pair.admin_b)
        yield until(lambda: "setting up the payment channels failed" in b.output(), "b to log the failed set-up", 60)
        assert a.proc.poll() is None and b.proc.poll() is None
        assert "Traceback" not in a.output() + b.output()
        double = start_double(rippled_port, {w.classic_address: FUNDS for w in pair.wallets})
        yield until(lambda: _get(pair.admin_b, "/accounts/peer").addCallback(
            lambda r: r["info"]["xrp-paychan"]["incomingChannel"] is not None), "b to link a's channel", 120)
        done = yield pair.pay(5 * 10 ** 7 + 1)
        assert done.returncode == 0, done.stderr + a.output() + b.output()
        yield until(lambda: _get(pair.admin_b, "/accounts/peer").addCallback(
            lambda r: r["info"]["settlement"]["credited"] == str(5 * 10 ** 7 + 1)), "b to be credited", 60)
    finally:
        pair.close()
        if double is not None:
            double.stop()
            double.close()


def test_bad_option_stops_twistd_with_one_line_naming_the_key(installed, tmp_path):
    """A secret that is not an XRP seed: twistd exits 2 with one 'config error' line naming the key, no traceback,
    the secret not echoed."""
    pair = _Pair(installed, free_ports(1)[0], tmp_path)
    pair.configs[0]["accounts"]["peer"]["options"]["secret"] = "sNotASeedAtAllXYZ"
    connector = pair.start(0)
    try:
        status = connector.proc.wait(60)
        out = connector.output()
        assert status == 2, out
        assert "accounts.peer.options.secret: required: the XRP secret (seed, s...) of the account" in out, out
        assert "Traceback" not in out and "sNotASeedAtAllXYZ" not in out, out
    finally:
        pair.close()
