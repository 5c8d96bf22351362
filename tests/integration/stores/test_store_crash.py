"""Durable stores under crashes and sharing, with real processes.

* SQLite: a connector-like process commits in a loop and reports what has fired; it is
  killed with SIGKILL; a new store on the file holds at least everything reported.
* Redis: commits fire, redis-server is killed with SIGKILL and restarted on its AOF; a new
  store holds everything that fired.
* Redis shared by two OS processes reserving against one limit: exactly as many pass as the
  limit allows.
"""

from __future__ import annotations

import re
import signal
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from ilptx.core.balances import BalanceState
from ilptx.stores.redis import RedisStore
from ilptx.stores.sqlite import SqliteStore
from integration.stores.redis_server import RedisServer

pytestmark = pytest.mark.integration

B = BalanceState

#: argv: path. Commits ``adjust("a", 1)`` 100 at a time (one reactor turn, so one group
#: commit) and prints ``committed N`` once the N-th has fired.
SQLITE_WRITER = """
import sys
from twisted.internet import defer, reactor
from ilptx.stores.sqlite import SqliteStore

@defer.inlineCallbacks
def main():
    store = SqliteStore(sys.argv[1], reactor=reactor)
    yield store.open()
    yield store.reserve_outgoing("b", 5, None)
    yield store.wait_durable()
    n = 0
    while True:
        yield defer.gatherResults([store.adjust("a", 1) for _ in range(100)])
        n += 100
        print(f"committed {n}", flush=True)

reactor.callWhenRunning(main)
reactor.run()
"""

#: argv: port, prefix, instance, attempts. Fires every reservation at once, prints the passes.
REDIS_RESERVER = """
import sys
from twisted.internet import defer, reactor
from ilptx.stores.redis import RedisStore

@defer.inlineCallbacks
def main():
    port, prefix, instance, attempts = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = RedisStore(port=port, prefix=prefix, instance=instance)
    yield store.open()
    results = yield defer.gatherResults([store.reserve_outgoing("peer", 7, -5000) for _ in range(attempts)])
    print(f"passed {sum(results)}", flush=True)
    yield store.close()
    reactor.stop()

reactor.callWhenRunning(main)
reactor.run()
"""


def wait_for_output(process, pattern: str, timeout: float = 30.0) -> re.Match:
    """Poll ``process``'s output until ``pattern`` matches (bounded by ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, process.full_output())
        if match:
            return match
        if process.proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"no {pattern!r} in the output\n{process.output()}")


@pytest_twisted.inlineCallbacks
def test_sqlite_commits_survive_sigkill(processes, tmp_path):
    """Every commit whose Deferred fired before SIGKILL is in the file afterwards (and the
    reservation that was waited for too)."""
    path = str(tmp_path / "crash.sqlite")
    writer = processes.run([sys.executable, "-c", SQLITE_WRITER, path])
    wait_for_output(writer, r"committed [0-9]{4,}")
    writer.stop(signal.SIGKILL)
    reported = max(int(n) for n in re.findall(r"committed (\d+)", writer.full_output()))
    store = SqliteStore(path, reactor=reactor)
    yield store.open()
    try:
        balance = (yield store.get_balance("a")).balance
        assert reported <= balance <= reported + 100, (reported, balance)
        assert (yield store.get_balance("b")) == B(outgoing_reserved=5)
        assert (yield store.recover()) == {"b": B(balance=-5)}
    finally:
        yield store.close()


@pytest_twisted.inlineCallbacks
def test_redis_commits_survive_a_redis_crash(tmp_path):
    """With appendonly yes + appendfsync always, every commit that fired survives SIGKILL of
    redis-server and a restart from its AOF."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        store = RedisStore(port=server.port, prefix="crash:")
        yield store.open()
        yield gatherResults([store.adjust("a", 1) for _ in range(500)])
        yield store.add_settlement("s", "a", 2**64 - 1)
        yield store.put("k", "v")
        server.kill()
        yield store.close()
        server.start()
        again = RedisStore(port=server.port, prefix="crash:")
        yield again.open()
        try:
            assert (yield again.get_balance("a")) == B(balance=500, settling=2**64 - 1)
            assert (yield again.pending_settlements()) == [("s", "a", 2**64 - 1)]
            assert (yield again.get("k")) == "v"
        finally:
            yield again.close()
    finally:
        server.stop()


def test_two_processes_share_one_limit(processes, tmp_path):
    """Two connector processes reserving on one account through one Redis at once: the sum of
    their passes is exactly what the minimum allows."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        argv = [sys.executable, "-c", REDIS_RESERVER, str(server.port), "shared:"]
        one = processes.run(argv + ["one", "600"])
        two = processes.run(argv + ["two", "600"])
        passed = [int(wait_for_output(p, r"passed (\d+)").group(1)) for p in (one, two)]
        assert sum(passed) == 5000 // 7, passed
        assert all(n > 0 for n in passed), passed  # both really competed
        reply = server.command("HGET", "shared:b:peer", "o")
        assert reply.split(b"\r\n")[1] == str(7 * (5000 // 7)).encode()
    finally:
        server.stop()
