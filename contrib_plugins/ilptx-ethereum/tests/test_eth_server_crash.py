"""kill -9 of a role-server ethereum plugin's process (SQLite store, ganache, real BTP WebSockets, two ilptx clients)
between receiving a client's claim and recording the credit, and between committing a client's Fulfill and queueing
its payout: after the restart nothing is lost, nothing is credited or paid twice (a third start changes nothing),
the other client is untouched, and the on-chain claim moves exactly the paid wei."""

from __future__ import annotations

import signal
import subprocess

import pytest_twisted
from eth_helpers import free_ports, until
from test_eth_crash import Child
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ilptx.plugins.base import PluginServices
from ilptx.stores.memory import MemoryStore

from ilptx_ethereum.hooks import ethereum_plugin

GWEI = 10 ** 9
FULFILLMENT = b"\x77" * 32  # eth_server_crash_child.py's


class ServerChild(Child):
    """tests/eth_server_crash_child.py in a process of its own."""

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg, "eth_server_crash_child.py")

    def lines(self, prefix: str) -> list:
        return [line for line in self.output().splitlines() if line.startswith(prefix)]

    def stop(self) -> None:
        """SIGTERM, and wait for it to exit. :raises AssertionError: still running after 30 s (with its output)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the child did not stop on SIGTERM:\n{self.output()[-5000:]}") from None


def _client(ganache, name: str, key: str, port: int):
    plugin = ethereum_plugin({"server": f"btp+ws://{name}:{name}-token@127.0.0.1:{port}/", "reconnectIntervals": [100],
                              "responseTimeout": 5000, "channelWatcherInterval": 0, "ethereumPrivateKey": key,
                              "ethereumProvider": ganache.url, "contractAddress": ganache.contract_address,
                              "outgoingChannelAmount": 2_000_000},
                             account_id=name, services=PluginServices(reactor=reactor, log=Logger(),
                                                                      store=MemoryStore()))
    got: list = []
    plugin.register_money_handler(got.append)
    plugin.register_data_handler(lambda data: _fulfill())
    return plugin, got


def _fulfill() -> bytes:
    from ilptx.codec.ilp import Fulfill, encode_packet

    return encode_packet(Fulfill(FULFILLMENT, b""))


class Run:
    """A server child (restartable) on one SQLite file, clients alice and bob in this process dialling it."""

    def __init__(self, ganache, tmp_path) -> None:
        self.ganache = ganache
        (self.port,) = free_ports()
        self.cfg = {"path": str(tmp_path / "server.sqlite"), "port": self.port, "key": ganache.keys[6],
                    "url": ganache.url, "contract": ganache.contract_address, "kill_at": "", "pay_client": None}
        self.children: list = []
        self.alice, self.alice_got = _client(ganache, "alice", ganache.keys[7], self.port)
        self.bob, self.bob_got = _client(ganache, "bob", ganache.keys[8], self.port)

    def start(self, **cfg) -> ServerChild:
        child = ServerChild({**self.cfg, **cfg})
        self.children.append(child)
        return child

    @pytest_twisted.inlineCallbacks
    def clients_linked(self):
        for client in (self.alice, self.bob):
            if not client.is_connected():
                yield client.connect()
        yield until(lambda: self.alice.module.peer_address and self.bob.module.peer_address, "both info exchanges")

    @pytest_twisted.inlineCallbacks
    def close(self):
        for child in self.children:
            child.close()
        for client in (self.alice, self.bob):
            yield client.disconnect()


@pytest_twisted.inlineCallbacks
def test_server_killed_before_recording_a_clients_credit_credits_it_once(ganache, tmp_path):
    """kill -9 between alice's claim and its record: after the restart alice's queued payout is credited once
    (1000 gwei, her balance -1000, bob's 0), and a third start of the server credits nothing more."""
    run = Run(ganache, tmp_path)
    try:
        first = run.start(kill_at="before-record")
        yield first.wait_for("CONNECTED")
        yield run.clients_linked()
        sent = run.alice.send_money(1000, "k1")
        yield first.wait_for("KILLED before recording the credit")
        first.proc.wait(10)
        failed = []
        yield sent.addErrback(failed.append)
        assert failed, "alice's payout was confirmed although the server died before crediting it"
        second = run.start()
        yield second.wait_for("CREDITED")
        yield until(lambda: not run.alice.settlement._waiters, "alice's payout confirmed")
        yield run.alice.send_money(1000, "k1")  # alice's connector retrying with the same key: paid once
        yield deferLater(reactor, 0.5, lambda: None)
        assert first.lines("CREDITED") == [] and second.lines("CREDITED") == ["CREDITED 1000 alice -1000 bob 0"]
        second.stop()
        third = run.start()
        yield third.wait_for("CONNECTED alice,bob")
        yield deferLater(reactor, 1.0, lambda: None)  # alice reconnects; her flush finds nothing queued
        assert third.lines("CREDITED") == [], third.output()
    finally:
        yield run.close()


@pytest_twisted.inlineCallbacks
def test_server_killed_between_a_clients_fulfill_and_its_payout_pays_it_once(ganache, tmp_path):
    """kill -9 after bob's Fulfill of 500 gwei was committed, before the payout was queued: the restart queues and
    pays bob exactly 500 once (alice nothing), a third start pays nothing more, and bob's on-chain claim gains
    exactly 500 gwei net of its gas."""
    run = Run(ganache, tmp_path)
    try:
        first = run.start(kill_at="after-fulfill", pay_client=["bob", 500])
        yield first.wait_for("CONNECTED")
        yield run.clients_linked()
        yield first.wait_for("KILLED after the Fulfill, before queueing the payout")
        first.proc.wait(10)
        assert run.bob_got == []
        second = run.start()
        yield second.wait_for("CONNECTED alice,bob")
        yield until(lambda: run.bob_got, "bob to be paid")
        yield deferLater(reactor, 0.5, lambda: None)
        assert run.bob_got == [500] and run.alice_got == []
        second.stop()
        third = run.start()
        yield third.wait_for("CONNECTED alice,bob")
        yield deferLater(reactor, 1.0, lambda: None)
        assert run.bob_got == [500], third.output()

        bob_address = run.bob.module.address
        before = ganache.balance(bob_address)
        tx = yield run.bob.module.claim_incoming(reason="test", worthwhile_only=False)
        assert ganache.balance(bob_address) - before == 500 * GWEI - tx.fee_wei
    finally:
        yield run.close()
