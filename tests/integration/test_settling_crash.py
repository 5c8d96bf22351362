"""kill -9 of a settling plugin's process at each step of the engine (ilptx.settlement.engine), with real
processes, real WebSockets and SQLite stores: the other side runs in the test on the real reactor. After the
restart nothing is paid or credited twice, and what was queued is paid once.

The killed process is a child running the reference Ed25519 channel module (tests/unit/settlement) on a copy of
the test's FakeLedger channel; it SIGKILLs itself at the exact step (a patched store or module call), so the kill
lands between two durable writes, as a kill -9 from outside could."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet import reactor, task
from twisted.logger import formatEvent

from ilptx.settlement import TransferLog, make_settlement_state
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.stores.sqlite import SqliteStore
from ilptx.testing import FakeLedger, plugin_services

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "settlement"))
from ed25519_channel import module_factory  # noqa: E402  (the reference module of the unit tests)

pytestmark = pytest.mark.integration

SEEDS = {"payer": "11" * 32, "payee": "22" * 32}
ADDRESSES = {role: FakeLedger.address_of(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)))
             for role, seed in SEEDS.items()}
TIMEOUT = 20  # seconds; only ever reached when something is broken

#: argv: a JSON object {role, path, port, seed, channel, kill_at, pay}. Runs one settling plugin (payer: listens,
#: payee: dials) on the reference module; the money handler adjusts balance "balance" in the store and prints it.
CHILD = r"""
import json, sys
sys.path.insert(0, "tests/unit/settlement")
from ed25519_channel import module_factory
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import FakeChannel, FakeLedger
from ilptx.testing_procs import die, run_crash_child

cfg = json.loads(sys.argv[1])
ledger = FakeLedger()
ledger.channels[cfg["channel"]["id"]] = FakeChannel(**cfg["channel"])

def make_plugin(cfg, services):
    if cfg["role"] == "payee":
        btp = {"server": "btp+ws://payee:s@127.0.0.1:%d/" % cfg["port"], "reconnectIntervals": [100]}
    else:
        btp = {"listener": {"port": cfg["port"], "host": "127.0.0.1", "secret": "s"}}
    factory = settling_plugin_factory(module_factory(ledger))
    return factory({**btp, "seed": cfg["seed"], "channelWatcherInterval": 0, "responseTimeout": 2000},
                   account_id=cfg["role"], services=services)

def after_ack(plugin, cfg):
    if cfg["kill_at"] == "after-ack":
        send = plugin.module.send_claim
        plugin.module.send_claim = lambda claim: send(claim).addCallback(lambda _: die("after the ack"))

run_crash_child(make_plugin, cfg, after_ack)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest_twisted.inlineCallbacks
def until(predicate, what: str = "the condition"):
    """Wait (the reactor running: the in-test side keeps serving) until ``predicate()``."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        yield task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_output(process, text: str):
    """:returns: a Deferred firing once ``text`` is in the child's output."""
    return until(lambda: text in process.full_output(), f"{text!r} in the output\n{process.output()}")


class Crash:
    """The channel (payer → payee) on a FakeLedger, the in-test side, and a way to start the child side."""

    def __init__(self, processes, tmp_path: Path) -> None:
        self.processes, self.tmp_path = processes, tmp_path
        self.ledger = FakeLedger()
        self.ledger.fund(ADDRESSES["payer"], 10 ** 18)
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEEDS["payer"]))
        self.channel_id = self.ledger.open_channel(key, ADDRESSES["payee"], 10 ** 15)
        self.port = free_port()
        self.paths = {role: tmp_path / f"{role}.sqlite" for role in SEEDS}
        self.credited: list = []
        self.events: list = []
        self.plugin = self.store = None

    def child(self, role: str, kill_at: str = "", pay=None):
        channel = vars(self.ledger.channel(self.channel_id))
        cfg = {"role": role, "path": str(self.paths[role]), "port": self.port, "seed": SEEDS[role],
               "channel": channel, "kill_at": kill_at, "pay": pay}
        return self.processes.run([sys.executable, "-c", CHILD, json.dumps(cfg)])

    @pytest_twisted.inlineCallbacks
    def start_here(self, role: str):
        """Start ``role`` in this process (real reactor, its SQLite file)."""
        self.store = SqliteStore(str(self.paths[role]), reactor=reactor)
        yield self.store.open()
        if role == "payer":
            btp = {"listener": {"port": self.port, "host": "127.0.0.1", "secret": "s"}}
            yield self.store.put(f"ed25519-channel:{role}:channel", self.channel_id)
        else:
            btp = {"server": f"btp+ws://payee:s@127.0.0.1:{self.port}/", "reconnectIntervals": [100]}
        factory = settling_plugin_factory(module_factory(self.ledger))
        self.plugin = factory({**btp, "seed": SEEDS[role], "channelWatcherInterval": 0, "responseTimeout": 2000},
                              account_id=role, services=plugin_services(reactor, account_id=role, store=self.store))
        self.plugin.register_money_handler(self.credited.append)
        self.plugin.register_data_handler(lambda data: b"")
        self.plugin.settlement.log.observer = self.events.append
        yield self.plugin.connect()

    @pytest_twisted.inlineCallbacks
    def payer_killed_at(self, kill_at: str, message: str):
        """The payer as a child (its channel in its store) paying 300, the payee here; the payer dies at ``kill_at``."""
        store = SqliteStore(str(self.paths["payer"]), reactor=reactor)
        yield store.open()
        yield store.put("ed25519-channel:payer:channel", self.channel_id)
        yield store.close()
        payer = self.child("payer", kill_at=kill_at, pay=[300, "k"])
        yield wait_for_output(payer, "CONNECTED")
        yield self.start_here("payee")
        yield wait_for_output(payer, message)
        yield until(lambda: payer.proc.poll() is not None, "the payer's death")

    def logged(self, text: str) -> bool:
        return any(text in formatEvent(event) for event in self.events)

    @pytest_twisted.inlineCallbacks
    def stop_here(self):
        if self.plugin is not None:
            yield self.plugin.disconnect()
            yield self.store.close()

    @pytest_twisted.inlineCallbacks
    def child_store(self, role: str):
        """Open the (stopped) child's SQLite file: its balance, payouts and credits."""
        store = SqliteStore(str(self.paths[role]), reactor=reactor)
        yield store.open()
        try:
            state = make_settlement_state(store)
            yield state.open()
            payouts = yield TransferLog(state, f"ed25519-channel:{role}:payouts").get_sums()
            credits = TransferLog(state, f"ed25519-channel:{role}:credits")
            return {"balance": (yield store.get_balance("balance")).balance, "paid": payouts.outgoing_fulfilled,
                    "queued": payouts.outgoing_fulfilled_and_prepared - payouts.outgoing_fulfilled,
                    "credited": (yield credits.get_sums()).incoming_fulfilled_and_prepared,
                    "unconfirmed": [c.id for c in (yield credits.prepared())]}
        finally:
            yield store.close()


@pytest.fixture
def crash(processes, tmp_path):
    world = Crash(processes, tmp_path)
    yield world
    pytest_twisted.blockon(world.stop_here())


@pytest_twisted.inlineCallbacks
def test_payee_killed_between_receiving_a_claim_and_recording_it(crash):
    """kill -9 of the payee before it records the credit: after its restart the claim is credited exactly once."""
    yield crash.start_here("payer")
    payee = crash.child("payee", kill_at="before-record")
    yield until(lambda: crash.plugin.module.peer_address is not None)
    attempt = crash.plugin.send_money(300, "k")
    attempt.addErrback(lambda f: None)
    yield wait_for_output(payee, "KILLED before recording the credit")
    yield until(lambda: payee.proc.poll() is not None, "the payee's death")
    again = crash.child("payee")
    yield until(lambda: "CREDITED" in again.full_output())
    yield until(lambda: crash.logged("1 payout(s) of 300 confirmed"))
    again.stop(signal.SIGKILL)  # every write it reported has fired, so is durable
    assert "CREDITED" not in payee.full_output()
    assert again.full_output().count("CREDITED 300 balance -300") == 1
    state = yield crash.child_store("payee")
    assert state == {"balance": -300, "paid": 0, "queued": 0, "credited": 300 * 10 ** 3, "unconfirmed": []}


@pytest_twisted.inlineCallbacks
def test_payee_killed_after_recording_the_credit_does_not_credit_it_again(crash):
    """kill -9 of the payee inside the money handler (credit recorded): the restart logs it and never credits it."""
    yield crash.start_here("payer")
    payee = crash.child("payee", kill_at="in-handler")
    yield until(lambda: crash.plugin.module.peer_address is not None)
    crash.plugin.send_money(300, "k").addErrback(lambda f: None)
    yield wait_for_output(payee, "KILLED in the money handler")
    yield until(lambda: payee.proc.poll() is not None, "the payee's death")
    again = crash.child("payee")
    yield wait_for_output(again, "was recorded before a restart but not confirmed as applied")
    yield until(lambda: crash.logged("1 payout(s) of 300 confirmed"))
    yield wait_for_output(again, "is the same as the best claim 300000; nothing credited")
    again.stop(signal.SIGKILL)  # every write it reported has fired, so is durable
    assert "CREDITED" not in payee.full_output() + again.full_output()
    state = yield crash.child_store("payee")
    assert state == {"balance": 0, "paid": 0, "queued": 0, "credited": 300 * 10 ** 3,
                     "unconfirmed": ["claim:300000"]}


@pytest_twisted.inlineCallbacks
def test_payer_killed_between_signing_a_claim_and_recording_it(crash):
    """kill -9 of the payer after signing, before recording: nothing was sent; the restart pays it exactly once."""
    yield crash.payer_killed_at("after-sign", "KILLED after signing, before recording the claim")
    assert crash.credited == []
    again = crash.child("payer", pay=[300, "k"])
    yield until(lambda: crash.credited == [300])
    yield wait_for_output(again, "1 payout(s) of 300 confirmed")
    again.stop(signal.SIGKILL)  # every write it reported has fired, so is durable
    assert crash.credited == [300]
    state = yield crash.child_store("payer")
    assert (state["paid"], state["queued"]) == (300, 0)


@pytest_twisted.inlineCallbacks
def test_payer_killed_after_the_ack_before_confirming_pays_once(crash):
    """kill -9 of the payer after the payee acknowledged the claim: the restart re-sends it, credited only once."""
    yield crash.payer_killed_at("after-ack", "KILLED after the ack")
    assert crash.credited == [300]
    again = crash.child("payer", pay=[300, "k"])
    yield wait_for_output(again, "1 payout(s) of 300 confirmed")
    again.stop(signal.SIGKILL)  # every write it reported has fired, so is durable
    assert crash.credited == [300]
    state = yield crash.child_store("payer")
    assert (state["paid"], state["queued"]) == (300, 0)
