"""Two real ``twistd -n ilpconnector`` processes with the plugin installed by pip (``--target``, found through its
``ilptx`` entry point), peered with ``plugin: lightning``, each on its own Electrum node of the regtest network:
STREAM payments both ways (``ilptx pay`` to a ``stream-receiver`` account) cross the settle threshold several times;
every settlement is a paid invoice and each node's channel balance moves by exactly what the connectors say."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from ln_regtest import free_port

from ilptx.testing_procs import TWISTD, install_distribution, start_connector

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).resolve().parents[1]
ILPTX_TREE = Path(__file__).resolve().parents[3]  # twistd runs from the ilptx source tree (its dropin, ilptx)
ILPTX = [sys.executable, "-m", "ilptx"]
THRESHOLD = 2000  # sat


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """This distribution installed by pip into a directory of its own (no dependencies: they are in this venv)."""
    return install_distribution(PACKAGE, tmp_path_factory.mktemp("site"), entry_point="lightning = ilptx_lightning.hooks")


class Connector:
    """One ``twistd -n ilpconnector --config <json>`` child on a SQLite store, output in a log file, stopped by PID."""

    def __init__(self, name: str, node, btp: dict, route: str, site: Path, work: Path) -> None:
        self.name, self.site, self.dir = name, site, work / name
        self.dir.mkdir()
        self.admin, self.payer, self.spsp = free_port(), free_port(), free_port()
        self.config = {
            "ilpAddress": f"test.{name}", "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1",
            "adminApiPort": self.admin, "store": "sqlite", "storePath": str(self.dir / "store.db"),
            "accounts": {
                "peer": {"relation": "peer", "plugin": "lightning", "assetCode": "BTC", "assetScale": 8,
                         "balance": {"maximum": "1000000", "settleThreshold": str(-THRESHOLD), "settleTo": "0"},
                         "options": {**btp, "electrumUrl": node.url.replace("http://", "http://u:p@"),
                                     "invoicePoolSize": 1}},
                "payer": {"relation": "child", "plugin": "btp", "assetCode": "BTC", "assetScale": 8,
                          "options": {"listener": {"host": "127.0.0.1", "port": self.payer, "secret": "payer"}}},
                "shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "BTC", "assetScale": 8,
                         "options": {"spsp": {"host": "127.0.0.1", "port": self.spsp}}}},
            "routes": [{"targetPrefix": route, "peerId": "peer"}]}
        self.runs: list = []  # one Process per start; the output of all of them, in order
        self.start()

    @property
    def proc(self):
        return self.runs[-1].proc

    def start(self) -> None:
        self.runs.append(start_connector(self.config, site=self.site, directory=self.dir))
        self.wait_for_ports(self.admin, self.payer, self.spsp)

    def output(self) -> str:
        return "".join(run.full_output() for run in self.runs)

    def wait_for_ports(self, *ports: int, timeout: float = 60.0) -> None:
        self.runs[-1].wait_for_ports(*ports, timeout=timeout)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=10) as response:
            return json.load(response)

    def peer_info(self) -> dict:
        return self.get("/accounts/peer")["info"]

    def peer_balance(self) -> int:
        return int(self.get("/balance")["accounts"]["peer"]["balance"])

    def pay(self, other: "Connector", sats: int) -> None:
        """STREAM ``sats`` from our ``payer`` child to the other connector's ``shop`` (``ilptx pay`` over SPSP)."""
        done = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{other.spsp}/", str(sats), "--allow-http", "--uplink",
                                       f"btp+ws://:payer@127.0.0.1:{self.payer}", "--json"],
                              capture_output=True, text=True, timeout=120, cwd=ILPTX_TREE)
        assert done.returncode == 0, done.stdout + done.stderr + self.output()
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["ok"] is True and summary["delivered"] == str(sats), summary

    def kill(self, sig=signal.SIGTERM) -> None:
        self.runs[-1].stop(sig, timeout=30)

    def close(self) -> None:
        for run in self.runs:
            run.close()


def _outgoing(node, since: set) -> list:
    """``(payment_hash, msat)`` of the node's settled outgoing Lightning payments not in ``since``."""
    return [(h["payment_hash"], -int(h["amount_msat"])) for h in node.rpc("lightning_history")
            if h.get("type") == "payment" and int(h["amount_msat"]) < 0 and h["payment_hash"] not in since]


def _until(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)


@pytest.fixture
def pair(regtest, installed):
    """Connector a on alice's node (listens for the peer), b on bob's (dials it); both stopped by PID at the end."""
    work = Path(tempfile.mkdtemp(prefix="ilptx-lightning-twistd-"))
    port = free_port()
    started = []
    try:
        a = Connector("a", regtest.alice, {"listener": {"host": "127.0.0.1", "port": port, "secret": "ab"}}, "test.b",
                      installed, work)
        started.append(a)
        b = Connector("b", regtest.bob, {"server": f"btp+ws://b:ab@127.0.0.1:{port}"}, "test.a", installed, work)
        started.append(b)
        _until("peering", lambda: a.peer_info()["lightning"]["peerNodeId"] == regtest.bob.node_id
               and b.peer_info()["lightning"]["peerNodeId"] == regtest.alice.node_id)
        yield a, b
    finally:
        for connector in reversed(started):
            connector.close()
        shutil.rmtree(work, ignore_errors=True)


def test_two_twistd_connectors_settle_both_ways_over_lightning(regtest, pair):
    """STREAM a→b 3×2500 and b→a 2×3000 sat: the threshold is crossed each time, every settlement is one paid invoice,
    paid = credited on the other side, and each node's channel moves by exactly credited − paid."""
    a, b = pair
    alice_before, bob_before = regtest.alice.channel_local_msat(), regtest.bob.channel_local_msat()
    seen_a = {h for h, _ in _outgoing(regtest.alice, set())}
    seen_b = {h for h, _ in _outgoing(regtest.bob, set())}
    for _ in range(3):
        a.pay(b, 2500)
    for _ in range(2):
        b.pay(a, 3000)

    def settled():
        ia, ib = a.peer_info()["settlement"], b.peer_info()["settlement"]
        if ia["queuedPayouts"] or ib["queuedPayouts"]:
            return None
        if int(ia["paid"]) * 1000 != int(ib["credited"]) or int(ib["paid"]) * 1000 != int(ia["credited"]):
            return None
        return ia, ib

    ia, ib = _until("settlements credited", settled)
    paid_a, paid_b = int(ia["paid"]), int(ib["paid"])
    assert paid_a >= 3 * THRESHOLD and paid_b >= THRESHOLD, (ia, ib, a.output(), b.output())
    out_a, out_b = _outgoing(regtest.alice, seen_a), _outgoing(regtest.bob, seen_b)
    assert len(out_a) >= 3 and len(out_b) >= 1, (out_a, out_b)  # the threshold was crossed each time
    assert sum(m for _, m in out_a) == paid_a * 1000 and sum(m for _, m in out_b) == paid_b * 1000
    assert regtest.alice.channel_local_msat() - alice_before == (paid_b - paid_a) * 1000
    assert regtest.bob.channel_local_msat() - bob_before == (paid_a - paid_b) * 1000
    # the connectors' balances: what went over ILP, net of what was settled
    bal_a, bal_b = a.peer_balance(), b.peer_balance()
    assert bal_a == -bal_b and abs(bal_a) < THRESHOLD, (bal_a, bal_b)
    assert bal_a == -(3 * 2500 - 2 * 3000) + paid_a - paid_b, (bal_a, paid_a, paid_b)
    for c in (a, b):  # each took the other's Electrum-made amountless pool invoice (the JS wire), refused nothing
        assert c.peer_info()["lightning"]["peerInvoices"] == 1, c.peer_info()
        assert "Traceback" not in c.output() and "refused" not in c.output(), c.output()


def _invoice_being_paid(connector: Connector, before: str) -> str:
    """The payment hash of the first "paying invoice" log line of ``connector`` after the text ``before``."""
    def found():
        tail = connector.output()[len(before):]
        line = next((x for x in tail.splitlines() if "paying invoice" in x), None)
        return line.split("paying invoice ")[1].split()[0] if line else None

    return _until("the payer to record an invoice", found)


def _status(node, payment_hash: str):
    """Electrum's status code of our outgoing invoice ``payment_hash`` (3 paid, 4 in flight), or None."""
    try:
        return node.rpc("get_invoice", invoice_id=payment_hash)["status"]
    except RuntimeError:
        return None


def test_settlement_paid_while_the_payee_connector_is_down_is_credited_once(regtest, pair):
    """The invoice is paid while b's connector is killed (-9): b's restart credits it once, at its first poll."""
    a, b = pair
    credited_before = int(b.peer_info()["settlement"]["credited"])
    os.kill(regtest.alice.pid, signal.SIGSTOP)  # a's payment waits on its node: b can be stopped in between
    try:
        mark = a.output()
        a.pay(b, 2500)
        payment_hash = _invoice_being_paid(a, mark)
        b.kill(signal.SIGKILL)
    finally:
        os.kill(regtest.alice.pid, signal.SIGCONT)
    _until("alice to pay", lambda: _status(regtest.alice, payment_hash) == 3)
    _until("a to confirm the payout", lambda: not a.peer_info()["settlement"]["queuedPayouts"])
    assert int(a.peer_info()["settlement"]["paid"]) == 2500
    b.start()
    _until("b to credit it", lambda: int(b.peer_info()["settlement"]["credited"]) == credited_before + 2500 * 1000)
    time.sleep(2)  # two more polls: nothing more
    assert int(b.peer_info()["settlement"]["credited"]) == credited_before + 2500 * 1000
    assert b.output().count(f"credit payment:{payment_hash} of") == 1, b.output()
    assert a.peer_balance() == -b.peer_balance() == 0


def test_kill_9_while_paying_an_invoice_pays_it_once(regtest, pair):
    """a is killed (-9) while its invoice's payment is in flight; the restarted a finds it paid by its hash: one
    payment on alice's node, b credited once, paid = credited."""
    a, b = pair
    seen = {h for h, _ in _outgoing(regtest.alice, set())}
    alice_before = regtest.alice.channel_local_msat()
    os.kill(regtest.alice.pid, signal.SIGSTOP)  # hold a's payment until bob is stopped too
    stopped = [regtest.alice.pid]
    try:
        mark = a.output()
        a.pay(b, 2500)
        payment_hash = _invoice_being_paid(a, mark)
        os.kill(regtest.bob.pid, signal.SIGSTOP)  # bob holds the HTLC: the payment stays in flight
        stopped.append(regtest.bob.pid)
        os.kill(regtest.alice.pid, signal.SIGCONT)
        stopped.remove(regtest.alice.pid)
        _until("the payment to be in flight", lambda: _status(regtest.alice, payment_hash) == 4)
        a.kill(signal.SIGKILL)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    _until("the payment to settle", lambda: _status(regtest.alice, payment_hash) == 3)
    a.start()
    _until("a to confirm the payout", lambda: not a.peer_info()["settlement"]["queuedPayouts"])
    _until("b to credit it", lambda: int(b.peer_info()["settlement"]["credited"]) == 2500 * 1000)
    assert int(a.peer_info()["settlement"]["paid"]) == 2500
    assert _outgoing(regtest.alice, seen) == [(payment_hash, 2500 * 1000)]
    assert regtest.alice.channel_local_msat() - alice_before == -2500 * 1000
    assert "was paid before; not paid again" in a.output()
    assert a.peer_balance() == -b.peer_balance() == 0


def test_bad_option_stops_twistd_with_one_line_naming_the_key(installed, tmp_path):
    """electrumUrl without its rpcuser/rpcpassword: twistd exits 2 with one line naming the key, no traceback."""
    config = {"ilpAddress": "test.x", "accounts": {"peer": {
        "relation": "peer", "plugin": "ilp-plugin-lightning", "assetCode": "BTC", "assetScale": 8,
        "options": {"listener": {"host": "127.0.0.1", "port": free_port(), "secret": "s"},
                    "electrumUrl": "http://127.0.0.1:7777"}}}}
    (tmp_path / "connector.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", "--config",
                                    str(tmp_path / "connector.json")], cwd=ILPTX_TREE, env=env, capture_output=True,
                          text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "accounts.peer.options.electrumUrl: required: the Electrum daemon's JSON-RPC URL" in out, out
    assert "Traceback" not in out, out
