"""kill -9 of an ethereum settling plugin's process (SQLite store, ganache, real BTP WebSockets) between receiving a
claim and crediting it, and between signing a claim and recording it: after the restart nothing is credited twice,
nothing is lost, one channel is opened, and the on-chain claim moves exactly the credited wei."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest_twisted
from eth_helpers import free_ports, until
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ilptx.plugins.base import PluginServices
from ilptx.stores.memory import MemoryStore

from ilptx_ethereum.claims import address_of
from ilptx_ethereum.hooks import ethereum_plugin

HERE = Path(__file__).resolve().parent
ILPTX_TREE = HERE.parents[2]
GWEI = 10 ** 9


class Child:
    """tests/eth_crash_child.py (or ``script``) in a process of its own (output in a file), killed by PID at the end."""

    def __init__(self, cfg: dict, script: str = "eth_crash_child.py") -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="ilptx-eth-crash-", suffix=".log", delete=False)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(ILPTX_TREE)])}
        self.proc = subprocess.Popen([sys.executable, str(HERE / script), json.dumps(cfg)],
                                     cwd=ILPTX_TREE, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    @pytest_twisted.inlineCallbacks
    def wait_for(self, text: str, timeout: float = 30.0):
        for _ in range(int(timeout / 0.05)):
            if text in self.output():
                return
            yield deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"no {text!r} in the child's output:\n{self.output()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def _listener(ganache, key: str, port: int):
    return ethereum_plugin({"listener": {"host": "127.0.0.1", "port": port, "secret": "s"},
                            "ethereumPrivateKey": key, "ethereumProvider": ganache.url, "channelWatcherInterval": 0,
                            "contractAddress": ganache.contract_address, "outgoingChannelAmount": 2_000_000},
                           account_id="child", services=PluginServices(reactor=reactor, log=Logger(),
                                                                       store=MemoryStore()))


def _cfg(ganache, tmp_path, role, key, port, kill_at="", pay=None) -> dict:
    return {"role": role, "path": str(tmp_path / f"{role}.sqlite"), "port": port, "key": key, "url": ganache.url,
            "contract": ganache.contract_address, "kill_at": kill_at, "pay": pay}


def _credited(output: str) -> list:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("CREDITED ")]


@pytest_twisted.inlineCallbacks
def test_payee_killed_before_recording_a_credit_is_credited_once_after_restart(ganache, tmp_path):
    """kill -9 of the payee between receiving the claim and recording the credit: after its restart the payer's
    queued payout is paid again, credited once (1000 gwei), and the payee's on-chain claim gains exactly that."""
    payer_key, payee_key = ganache.keys[1], ganache.keys[2]
    (port,) = free_ports()
    payer = _listener(ganache, payer_key, port)
    children = []
    try:
        yield payer.connect()
        first = Child(_cfg(ganache, tmp_path, "payee", payee_key, port, kill_at="before-record"))
        children.append(first)
        yield first.wait_for("CONNECTED")
        yield until(lambda: payer.is_connected() and payer.module.peer_address is not None, "the payee")
        sent = payer.send_money(1000, "k1")
        yield first.wait_for("KILLED before recording the credit")
        first.proc.wait(10)
        try:
            yield sent
            raise AssertionError("the payout was confirmed although the payee died before crediting it")
        except AssertionError:
            raise
        except Exception:
            pass  # the link went down: the payout stays queued
        second = Child(_cfg(ganache, tmp_path, "payee", payee_key, port))
        children.append(second)
        yield second.wait_for("CREDITED")
        yield payer.send_money(1000, "k1")  # the connector's retry with the same key: paid once
        yield deferLater(reactor, 0.5, lambda: None)
        assert _credited(first.output()) == [] and _credited(second.output()) == [1000], second.output()
        assert "balance -1000" in second.output()

        payee_address = payer.module.peer_address
        before = ganache.balance(payee_address)
        yield payer.module.request_close()  # the payee claims on chain
        _, fee = ganache.last_tx_fee(payee_address)
        assert ganache.balance(payee_address) - before == 1000 * GWEI - fee
    finally:
        for child in children:
            child.close()
        yield payer.disconnect()


@pytest_twisted.inlineCallbacks
def test_payer_killed_after_signing_before_recording_pays_once_on_one_channel(ganache, tmp_path):
    """kill -9 of the payer after it opened its channel and signed, before recording the claim: the restart signs
    again on the same channel (one open in all), the payee is credited 1000 gwei once, and claims exactly that."""
    payer_key, payee_key = ganache.keys[3], ganache.keys[2]
    (port,) = free_ports()
    payee = _listener(ganache, payee_key, port)
    credited: list = []
    payee.register_money_handler(credited.append)
    children = []
    try:
        yield payee.connect()
        payer_address = address_of(payer_key)
        nonce_before = int(ganache.rpc("eth_getTransactionCount", [payer_address, "latest"]), 16)
        first = Child(_cfg(ganache, tmp_path, "payer", payer_key, port, kill_at="after-sign", pay=[1000, "k1"]))
        children.append(first)
        yield first.wait_for("KILLED after signing, before recording the claim")
        first.proc.wait(10)
        assert credited == []
        second = Child(_cfg(ganache, tmp_path, "payer", payer_key, port, pay=[1000, "k1"]))
        children.append(second)
        yield second.wait_for("PAID")
        assert credited == [1000], second.output()
        assert int(ganache.rpc("eth_getTransactionCount", [payer_address, "latest"]), 16) == nonce_before + 1
        info = (yield payee.get_admin_info())["ethereum"]["incomingChannel"]
        assert info["deposited"] == str(2_000_000 * GWEI) and info["bestClaim"] == str(1000 * GWEI)

        before = ganache.balance(payee.module.address)
        tx = yield payee.module.claim_incoming(reason="test", worthwhile_only=False)
        assert ganache.balance(payee.module.address) - before == 1000 * GWEI - tx.fee_wei
    finally:
        for child in children:
            child.close()
        yield payee.disconnect()
