"""Crash test: a real ``twistd -n ilpconnector`` under load is killed with SIGKILL and restarted
on the same store; balances must match what the clients saw, nothing lost, nothing doubled.

alice (sender) → connector → bob (receiver, fulfills everything). Every Prepare has a
distinct amount, so the test can tell exactly which packets a balance contains:

* alice's balance (what alice owes us) must include every Prepare whose Fulfill alice
  received (the connector answers only after the commit is durable), plus possibly some of
  the Prepares that were in flight when the connector died (committed, Fulfill not
  delivered) -- and nothing else: ``balance − acknowledged`` must be a sum of a subset of
  the in-flight amounts.
* bob's balance (minus what we owe bob) must include every Prepare bob fulfilled (the
  outgoing reservation is durable before forwarding, and a restart commits reservations
  whose outcome it cannot know), plus possibly Prepares that were reserved but never
  reached bob -- again a subset of the in-flight ones, nothing else.
* after the restart no reservation is left.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, succeed

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler
from integration.procs import free_ports, wait_for_port

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x5a" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
IN_FLIGHT = 40
KILL_AFTER_FULFILLED = 300


def subset_sums(amounts: list[int]) -> set[int]:
    """Every sum of a subset of ``amounts`` (small lists: a set-based DP)."""
    sums = {0}
    for amount in amounts:
        sums |= {s + amount for s in sums}
    return sums


def sleep(seconds: float) -> Deferred:
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


def connector_config(store: dict, ports: dict) -> dict:
    accounts = {
        "alice": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                  "balance": {"maximum": "1000000000000"},
                  "options": {"listener": {"host": "127.0.0.1", "port": ports["alice"], "secret": "a"}}},
        "bob": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                "balance": {"minimum": "-1000000000000", "maximum": "0"},
                "options": {"listener": {"host": "127.0.0.1", "port": ports["bob"], "secret": "b"}}},
    }
    return {"ilpAddress": "test.crash", "spread": 0, "accounts": accounts, **store}


def read_sqlite_balances(path) -> dict:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT account_id, balance, incoming_reserved, outgoing_reserved FROM balances").fetchall()
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


@pytest_twisted.inlineCallbacks
def run_crash(processes, tmp_path, store: dict, read_balances, kill_mode: str):
    ports = dict(zip(("alice", "bob"), free_ports(2), strict=True))
    config_path = tmp_path / "connector.json"
    config_path.write_text(json.dumps(connector_config(store, ports)))
    connector = processes.connector(["--config", str(config_path)])
    for port in ports.values():
        wait_for_port(port, connector)

    bob = BtpPlugin({"server": f"btp+ws://:b@127.0.0.1:{ports['bob']}"}, account_id="bob", reactor=reactor)
    handler = fulfilling_handler([FULFILLMENT], address="test.crash.bob")
    bob.register_data_handler(handler)
    alice = BtpPlugin({"server": f"btp+ws://:a@127.0.0.1:{ports['alice']}"}, account_id="alice", reactor=reactor)
    yield bob.connect()
    yield alice.connect()

    acknowledged: list[int] = []
    rejected: list[int] = []
    unanswered: list[int] = []
    state = {"next": 0, "killed": False}

    def kill():
        state["killed"] = True
        connector.proc.send_signal(signal.SIGKILL)

    def send_one():
        i = state["next"]
        state["next"] += 1
        amount = 1000 + 7 * i
        expires = datetime.now(timezone.utc) + timedelta(seconds=20)
        packet = Prepare(amount, expires, CONDITION, "test.crash.bob.x", i.to_bytes(4, "big"))
        d = alice.send_data(encode_packet(packet))

        def answered(raw):
            result = decode_response(raw)
            (acknowledged if isinstance(result, Fulfill) else rejected).append(amount)
            if len(acknowledged) == KILL_AFTER_FULFILLED:
                if kill_mode == "on-ack":
                    # right as a Fulfill arrives: catches a connector that answers before its
                    # commit is durable (the commit would still be in flight)
                    kill()
                else:
                    # a random moment a little later, mid-flight: catches forwarding before
                    # the outgoing reservation is durable
                    reactor.callLater(random.uniform(0.0, 0.03), kill)
            if not state["killed"]:
                send_one()

        def lost(_failure):
            unanswered.append(amount)

        d.addCallbacks(answered, lost)
        return d

    yield DeferredList([send_one() for _ in range(IN_FLIGHT)])
    # every chain ends once the connector is gone: wait for the in-flight ones to fail
    while len(acknowledged) + len(rejected) + len(unanswered) < state["next"]:
        yield sleep(0.05)
    yield alice.disconnect()
    yield bob.disconnect()
    connector.proc.wait(10)
    assert connector.proc.returncode == -signal.SIGKILL
    assert rejected == [], f"unexpected rejects: {rejected[:5]}"

    # restart on the same store: recovery runs at start-up; then stop cleanly
    again = processes.connector(["--config", str(config_path)])
    for port in ports.values():
        wait_for_port(port, again)
    again.stop()
    assert "Traceback" not in again.full_output(), again.output()

    balances = yield read_balances()
    alice_balance, alice_in, alice_out = balances["alice"]
    bob_balance, bob_in, bob_out = balances["bob"]
    bob_seen = [p.amount for p in handler.received]
    assert (alice_in, alice_out, bob_in, bob_out) == (0, 0, 0, 0), "reservations survived the restart"
    assert len(set(acknowledged + unanswered)) == state["next"], "amounts must be distinct"
    # alice: everything acknowledged, plus only in-flight packets, each at most once
    assert alice_balance - sum(acknowledged) in subset_sums(unanswered), (
        f"alice {alice_balance} vs acknowledged {sum(acknowledged)}; in flight {unanswered}")
    # bob: everything bob fulfilled, plus only in-flight packets bob never saw, each at most once
    unseen = [a for a in unanswered if a not in set(bob_seen)]
    assert set(acknowledged) <= set(bob_seen)
    assert -bob_balance - sum(bob_seen) in subset_sums(unseen), (
        f"bob {bob_balance} vs fulfilled {sum(bob_seen)}; unseen in flight {unseen}")
    return {"acknowledged": len(acknowledged), "in_flight": len(unanswered), "alice": alice_balance,
            "bob": bob_balance}


@pytest.mark.parametrize("kill_mode", ["on-ack", "random"])
@pytest_twisted.inlineCallbacks
def test_crash_sqlite(processes, tmp_path, kill_mode):
    """SIGKILL under load, restart on the same SQLite file: balances match the clients exactly."""
    path = tmp_path / "ilptx.sqlite"

    def read():
        return succeed(read_sqlite_balances(path))

    outcome = yield run_crash(processes, tmp_path, {"store": "sqlite", "storePath": str(path)}, read, kill_mode)
    print("crash outcome:", outcome)
    assert outcome["acknowledged"] >= KILL_AFTER_FULFILLED


@pytest.mark.parametrize("kill_mode", ["on-ack", "random"])
@pytest_twisted.inlineCallbacks
def test_crash_redis(processes, tmp_path, kill_mode):
    """SIGKILL under load, restart on the same Redis: balances match the clients exactly."""
    from ilptx.stores.redis import RedisStore
    from integration.stores.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        store = {"store": "redis", "storeConfig": {"port": server.port, "prefix": "crash:"}}

        @inlineCallbacks
        def read():
            reader = RedisStore(port=server.port, prefix="crash:", reactor=reactor)
            yield reader.open()
            try:
                balances = yield reader.all_balances()
            finally:
                yield reader.close()
            return {k: (v.balance, v.incoming_reserved, v.outgoing_reserved) for k, v in balances.items()}

        outcome = yield run_crash(processes, tmp_path, store, read, kill_mode)
        assert outcome["acknowledged"] >= KILL_AFTER_FULFILLED
    finally:
        server.stop()
