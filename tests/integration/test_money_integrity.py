"""Money is neither created nor lost by a real ``twistd -n ilpconnector``: an unverified BTP
Transfer moves no balance, duplicate Prepares are charged once, and a disk that fills up
leaves no phantom payment behind.

Clients are real :class:`~ilptx.plugins.btp.BtpPlugin` instances dialling the connector over
loopback WebSockets; balances are read through the admin API (memory) or the SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList

from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin, BtpRemoteError
from ilptx.testing import fulfilling_handler
from integration.procs import REPO, TWISTD, Process, free_ports, wait_for_port

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x42" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
NO_SETTLEMENT = {"message": "No sendMoney functionality is included in this module"}


def btp_child(port: int, secret: str, balance: dict) -> dict:
    return {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9, "balance": balance,
            "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": secret}}}


def start(processes, tmp_path, accounts: dict, admin_port: int, listen_ports, **top):
    config = {"ilpAddress": "test.money", "spread": 0, "accounts": accounts, "adminApi": True,
              "adminApiHost": "127.0.0.1", "adminApiPort": admin_port, **top}
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(config))
    connector = processes.connector(["--config", str(path)])
    for port in (admin_port, *listen_ports):
        wait_for_port(port, connector)
    return connector


def prepare(amount: int, data: bytes = b"", destination: str = "test.money.bob.x") -> Prepare:
    return Prepare(amount, datetime.now(timezone.utc) + timedelta(seconds=20), CONDITION, destination, data)


@pytest_twisted.inlineCallbacks
def send(client: BtpPlugin, packet: Prepare):
    raw = yield client.send_data(encode_packet(packet))
    return decode_response(raw)


@pytest_twisted.inlineCallbacks
def balances(admin_port: int):
    """:returns: account id -> the admin API's ``/balance`` entry (what the running connector holds)."""
    response = yield treq.get(f"http://127.0.0.1:{admin_port}/balance")
    body = yield treq.json_content(response)
    return body["accounts"]


@pytest_twisted.inlineCallbacks
def alice_and_bob(alice_port: int, bob_port: int):
    """Connect the two BTP clients: alice sends, bob fulfills everything (``handler.received``).

    :returns: ``(alice, bob, handler)``.
    """
    bob = BtpPlugin({"server": f"btp+ws://:b@127.0.0.1:{bob_port}"}, account_id="bob", reactor=reactor)
    handler = fulfilling_handler([FULFILLMENT], address="test.money.bob")
    bob.register_data_handler(handler)
    alice = BtpPlugin({"server": f"btp+ws://:a@127.0.0.1:{alice_port}"}, account_id="alice", reactor=reactor)
    yield bob.connect()
    yield alice.connect()
    return alice, bob, handler


@pytest_twisted.inlineCallbacks
def test_unverified_btp_transfer_is_refused_and_moves_no_balance(processes, tmp_path):
    """A child's Transfer(2**64-1) gets F00; its balance stays 0 and it still cannot spend past its maximum."""
    admin, alice_port, bob_port, mini_port = free_ports(4)
    accounts = {
        "alice": btp_child(alice_port, "a", {"minimum": "-50", "maximum": "1000"}),
        "bob": btp_child(bob_port, "b", {"minimum": "-1000000", "maximum": "0"}),
        "mini": {"relation": "child", "plugin": "mini-accounts", "assetCode": "USD", "assetScale": 9,
                 "balance": {"maximum": "1000000"},
                 "options": {"listener": {"host": "127.0.0.1", "port": mini_port},
                             "clientBalance": {"maximum": "10"}}},
    }
    connector = start(processes, tmp_path, accounts, admin, (alice_port, bob_port, mini_port))
    alice, bob, handler = yield alice_and_bob(alice_port, bob_port)
    carol = BtpPlugin({"server": f"btp+ws://carol:c@127.0.0.1:{mini_port}"}, account_id="carol", reactor=reactor)
    clients = (bob, alice, carol)
    try:
        yield carol.connect()
        for client in (alice, carol):
            with pytest.raises(BtpRemoteError) as refused:
                yield client.send_money(2**64 - 1)
            error = refused.value.btp_error
            assert (error.code, error.name, json.loads(error.data)) == ("F00", "NotAcceptedError", NO_SETTLEMENT)
            assert client.is_connected()
        before = yield balances(admin)
        assert before["alice"]["balance"] == "0" and before["mini"]["balance"] == "0", before
        # alice can spend up to her maximum and not one unit more
        assert isinstance((yield send(alice, prepare(1000, b"1"))), Fulfill)
        over = yield send(alice, prepare(1, b"2"))
        assert isinstance(over, Reject) and (over.code, over.message) == ("T04", "exceeded maximum balance.")
        # carol (a mini-accounts client) cannot spend past her clientBalance maximum of 10
        over = yield send(carol, prepare(11, b"3"))
        assert isinstance(over, Reject) and over.code == "T04"
        assert [p.amount for p in handler.received] == [1000]
        after = yield balances(admin)
        assert (after["alice"]["balance"], after["bob"]["balance"], after["mini"]["balance"]) == ("1000", "-1000", "0")
    finally:
        for client in clients:
            yield client.disconnect()
    assert "Traceback" not in connector.full_output(), connector.output()


@pytest_twisted.inlineCallbacks
def test_six_copies_of_a_prepare_move_the_outgoing_balance_once(processes, tmp_path):
    """Six identical Prepares at once: bob sees one, bob's balance moves once; each copy gets the Fulfill."""
    admin, alice_port, bob_port = free_ports(3)
    accounts = {"alice": btp_child(alice_port, "a", {"maximum": "1000000"}),
                "bob": btp_child(bob_port, "b", {"minimum": "-1000000", "maximum": "0"})}
    start(processes, tmp_path, accounts, admin, (alice_port, bob_port))
    alice, bob, handler = yield alice_and_bob(alice_port, bob_port)
    try:
        packet = prepare(250, b"the same one")
        results = yield DeferredList([send(alice, packet) for _ in range(6)], fireOnOneErrback=True)
        assert [r for _, r in results] == [Fulfill(FULFILLMENT, b"")] * 6
        assert len(handler.received) == 1
        state = yield balances(admin)
        assert (state["bob"]["balance"], state["bob"]["outgoingReserved"]) == ("-250", "0"), state
    finally:
        yield alice.disconnect()
        yield bob.disconnect()


# -- a disk that fills up (sqlite) ------------------------------------------------------------

class PipedProcess(Process):
    """A child process whose output reaches its log through a pipe, so a file-size limit set on
    the child (RLIMIT_FSIZE) applies to the files it writes itself, not to its log."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._log = tempfile.NamedTemporaryFile(prefix="ilptx-test-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self._log.write(chunk)
            self._log.flush()

    def limit_file_size(self, size) -> None:
        """Set the child's RLIMIT_FSIZE soft limit (bytes, or ``resource.RLIM_INFINITY``): a write
        past it fails with EFBIG (Python ignores SIGXFSZ), as on a full disk."""
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))


def sleep(seconds: float):
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


def read_sqlite_balances(path) -> dict:
    """:returns: account id -> (balance, incoming reserved, outgoing reserved), read from the file."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT account_id, balance, incoming_reserved, outgoing_reserved FROM balances").fetchall()
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


@pytest_twisted.inlineCallbacks
def test_full_disk_books_no_phantom_payment(processes, tmp_path):
    """sqlite store on a disk that fills up under load: failed writes answer T00 and hold nothing back;
    once space returns and after a restart, bob's balance is exactly what bob fulfilled, alice's what she was told."""
    admin, alice_port, bob_port = free_ports(3)
    db = tmp_path / "ilptx.sqlite"
    config = {"ilpAddress": "test.money", "spread": 0, "store": "sqlite", "storePath": str(db),
              "adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin,
              "accounts": {"alice": btp_child(alice_port, "a", {"maximum": "1000000000000"}),
                           "bob": btp_child(bob_port, "b", {"minimum": "-1000000000000", "maximum": "0"})}}
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(config))
    connector = PipedProcess(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", "--config", str(path)])
    processes.append(connector)
    for port in (admin, alice_port, bob_port):
        wait_for_port(port, connector)
    alice, bob, handler = yield alice_and_bob(alice_port, bob_port)
    fulfilled, internal_errors, sent = [], [], [0]

    @pytest_twisted.inlineCallbacks
    def chain(stop):
        while not stop():
            amount = 1000 + sent[0]
            sent[0] += 1
            result = yield send(alice, prepare(amount, amount.to_bytes(4, "big")))
            if isinstance(result, Fulfill):
                fulfilled.append(amount)
            else:
                assert result.code == "T00", result
                internal_errors.append(amount)

    try:
        yield chain(lambda: sent[0] >= 5)
        assert len(fulfilled) == 5
        # the disk fills up: the WAL (where every commit goes) may grow by two more pages
        wal = Path(f"{db}-wal")
        connector.limit_file_size(wal.stat().st_size + 2 * 4120)
        yield DeferredList([chain(lambda: len(internal_errors) >= 24 or sent[0] >= 400) for _ in range(8)],
                           fireOnOneErrback=True, consumeErrors=True)
        assert len(internal_errors) >= 24, connector.output()
        # space returns: the store's retry (after 1 s) writes what the mirror holds
        connector.limit_file_size(resource.RLIM_INFINITY)
        yield sleep(1.5)
        target = sent[0] + 3
        yield chain(lambda: sent[0] >= target)
        assert fulfilled[-3:] == [1000 + n for n in range(target - 3, target)], connector.output()
        state = yield balances(admin)
    finally:
        yield alice.disconnect()
        yield bob.disconnect()
    bob_saw = [p.amount for p in handler.received]
    print(f"disk full: {len(fulfilled)} fulfilled, {len(internal_errors)} T00, "
          f"{len(set(bob_saw) - set(fulfilled))} of them paid to bob")
    assert set(fulfilled) <= set(bob_saw)
    # in memory: nothing held back, alice charged for her Fulfills only, bob credited for what he fulfilled
    assert (state["alice"]["incomingReserved"], state["bob"]["outgoingReserved"]) == ("0", "0"), state
    assert (int(state["alice"]["balance"]), int(state["bob"]["balance"])) == (sum(fulfilled), -sum(bob_saw))
    connector.stop()
    # on disk, after a restart on the same file (recover() runs): the same books, no phantom payment
    again = processes.connector(["--config", str(path)])
    for port in (admin, alice_port, bob_port):
        wait_for_port(port, again)
    again.stop()
    assert read_sqlite_balances(db) == {"alice": (sum(fulfilled), 0, 0), "bob": (-sum(bob_saw), 0, 0)}
