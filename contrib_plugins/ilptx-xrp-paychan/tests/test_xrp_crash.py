"""kill -9 of an xrp-paychan plugin's process (SQLite store, the rippled double as its own process, real BTP
WebSockets) between receiving a claim and crediting it, between signing a claim and recording it, and after the peer
acknowledged a claim before the payout is confirmed: after the restart nothing is credited twice, nothing is lost,
one channel is created, and the on-ledger claim moves exactly the claimed drops."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest_twisted
from conftest import make_wallet
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import Logger
from xrp_procs import ILPTX_TREE, TESTS, Child, free_ports, start_double, until

from ilptx.plugins.base import PluginServices
from ilptx.stores.memory import MemoryStore

from ilptx_xrp_paychan.module import xrp_paychan_plugin
from ilptx_xrp_paychan.rippled import RippledClient

AMOUNT = 1_000_001  # units at scale 9: a claim of 1001 drops (rounded up)
CLAIMED = 1001
FUNDS = 100 * 10 ** 6


def _child(cfg: dict) -> Child:
    return Child([sys.executable, str(TESTS / "xrp_crash_child.py"), json.dumps(cfg)],
                 env={"PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(ILPTX_TREE)])}, prefix="ilptx-xrp-crash-")


@pytest_twisted.inlineCallbacks
def _wait_for(child: Child, text: str, timeout: float = 60.0):
    yield until(lambda: text in child.output() or child.proc.poll() is not None, f"{text!r} from the child", timeout)
    assert text in child.output(), child.output()


def _listener(url: str, wallet, port: int):
    return xrp_paychan_plugin({"listener": {"host": "127.0.0.1", "port": port, "secret": "s"}, "xrpServer": url,
                               "secret": wallet.seed, "currencyScale": 9, "channelWatcherInterval": 0},
                              account_id="child", services=PluginServices(reactor=reactor, log=Logger(),
                                                                          store=MemoryStore()))


def _credited(output: str) -> list:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("CREDITED ")]


class _Ledger:
    def __init__(self, *wallets):
        self.port, = free_ports()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.double = start_double(self.port, {w.classic_address: FUNDS for w in wallets})
        self.client = RippledClient(self.url, reactor)
        self.client.start()

    def balance(self, wallet):
        return self.client.account_info(wallet.classic_address).addCallback(lambda a: int(a["Balance"]))

    @pytest_twisted.inlineCallbacks
    def close(self):
        yield self.client.stop()
        self.double.stop()
        self.double.close()


@pytest_twisted.inlineCallbacks
def test_payee_killed_before_recording_a_credit_is_credited_once_after_restart(tmp_path):
    """kill -9 of the payee between receiving the claim and recording the credit: after its restart the payer's
    queued payout is sent again and credited once; the payee's SIGTERM claims exactly 1001 drops on the ledger."""
    payer_wallet, payee_wallet = make_wallet(), make_wallet()
    ledger = _Ledger(payer_wallet, payee_wallet)
    port, = free_ports()
    payer = _listener(ledger.url, payer_wallet, port)
    children = []
    cfg = {"role": "payee", "path": str(tmp_path / "payee.sqlite"), "port": port, "secret": payee_wallet.seed,
           "url": ledger.url, "kill_at": "before-record", "pay": None}
    try:
        yield payer.connect()
        first = _child(cfg)
        children.append(first)
        yield _wait_for(first, "CONNECTED")
        yield until(lambda: payer.module.ready and payer.module.incoming is not None, "the channels both ways")
        sent = payer.send_money(AMOUNT, "k1")
        yield _wait_for(first, "KILLED before recording the credit")
        first.proc.wait(10)
        try:
            yield sent
            raise AssertionError("the payout was confirmed although the payee died before crediting it")
        except AssertionError:
            raise
        except Exception:
            pass  # the link went down: the payout stays queued
        second = _child(dict(cfg, kill_at=""))
        children.append(second)
        yield _wait_for(second, "CREDITED")
        yield payer.send_money(AMOUNT, "k1")  # the connector's retry with the same key: paid once
        yield deferLater(reactor, 0.5, lambda: None)
        assert _credited(first.output()) == [] and _credited(second.output()) == [AMOUNT], second.output()
        assert f"balance -{AMOUNT}" in second.output()

        channel = payer.module.outgoing["channelId"]
        before = yield ledger.balance(payee_wallet)
        assert second.stop() in (0, -signal.SIGTERM), second.output()
        assert f"claimed {CLAIMED} drops of channel {channel}" in second.output(), second.output()
        yield until(lambda: ledger.client.channel(channel).addCallback(lambda n: n["Balance"] == str(CLAIMED)),
                    "the claim to be validated", 30)
        assert (yield ledger.balance(payee_wallet)) - before == CLAIMED - 10
    finally:
        for child in children:
            child.close()
        yield payer.disconnect()
        yield ledger.close()


@pytest_twisted.inlineCallbacks
def test_payer_killed_after_the_claim_was_acknowledged_is_not_credited_twice(tmp_path):
    """kill -9 of the payer once the payee acknowledged its claim, before the payout is confirmed: the restart sends
    the recorded claim again, the payee acknowledges it crediting nothing more, and the payout is confirmed."""
    payer_wallet, payee_wallet = make_wallet(), make_wallet()
    ledger = _Ledger(payer_wallet, payee_wallet)
    port, = free_ports()
    payee = _listener(ledger.url, payee_wallet, port)
    credited: list = []
    payee.register_money_handler(credited.append)
    children = []
    cfg = {"role": "payer", "path": str(tmp_path / "payer.sqlite"), "port": port, "secret": payer_wallet.seed,
           "url": ledger.url, "kill_at": "after-ack", "pay": [AMOUNT, "k1"]}
    try:
        yield payee.connect()
        first = _child(cfg)
        children.append(first)
        yield _wait_for(first, "KILLED after the peer acknowledged the claim")
        first.proc.wait(10)
        assert credited == [AMOUNT]
        second = _child(dict(cfg, kill_at=""))
        children.append(second)
        yield _wait_for(second, "PAID")
        yield deferLater(reactor, 0.5, lambda: None)
        assert credited == [AMOUNT], second.output()
        assert (yield payee.get_admin_info())["settlement"]["credited"] == str(AMOUNT)
    finally:
        for child in children:
            child.close()
        yield payee.disconnect()
        yield ledger.close()


@pytest_twisted.inlineCallbacks
def test_payer_killed_after_signing_before_recording_pays_once_on_one_channel(tmp_path):
    """kill -9 of the payer after it created its channel and signed, before recording the claim: the restart signs
    again on the same channel (one channel in all), the payee is credited once, and claims exactly 1001 drops."""
    payer_wallet, payee_wallet = make_wallet(), make_wallet()
    ledger = _Ledger(payer_wallet, payee_wallet)
    port, = free_ports()
    payee = _listener(ledger.url, payee_wallet, port)
    credited: list = []
    payee.register_money_handler(credited.append)
    children = []
    cfg = {"role": "payer", "path": str(tmp_path / "payer.sqlite"), "port": port, "secret": payer_wallet.seed,
           "url": ledger.url, "kill_at": "after-sign", "pay": [AMOUNT, "k1"]}
    try:
        yield payee.connect()
        first = _child(cfg)
        children.append(first)
        yield _wait_for(first, "KILLED after signing, before recording the claim")
        first.proc.wait(10)
        assert credited == []
        second = _child(dict(cfg, kill_at=""))
        children.append(second)
        yield _wait_for(second, "PAID")
        assert credited == [AMOUNT], second.output()
        channels = yield ledger.client.account_channels(payer_wallet.classic_address)
        assert len(channels) == 1 and channels[0]["channel_id"] == payee.module.incoming["channelId"]

        before = yield ledger.balance(payee_wallet)
        tx = yield payee.module.claim_incoming(reason="test", worthwhile_only=False)
        assert tx is not None and (yield ledger.client.channel(channels[0]["channel_id"]))["Balance"] == str(CLAIMED)
        assert (yield ledger.balance(payee_wallet)) - before == CLAIMED - 10
    finally:
        for child in children:
            child.close()
        yield payee.disconnect()
        yield ledger.close()
