"""Two OS processes racing on one Redis through the settlement state: the maximum of a
MaxValueTracker is never lost (nor any increase counted twice), and concurrent prepares never
take a TransferLog past its maximum nor count one id twice.

Both processes open their store, say ``ready`` and block on ``BLPOP``; the test starts them at
the same moment by pushing two tokens, so their bursts overlap.
"""

from __future__ import annotations

import sys

import pytest

from integration.stores.redis_server import RedisServer
from integration.stores.test_store_crash import wait_for_output

pytestmark = pytest.mark.integration

#: argv: port, prefix, name, mode (max | prepare), seed. Opens, prints ``ready``, waits for a
#: token on ``<prefix>go``, then runs its calls 20 at a time (so that the two processes'
#: calls overlap for a while, not in two bursts one after the other) and prints what it saw.
RACER = """
import random, sys
from twisted.internet import defer, reactor
from ilptx.stores.redis import RedisStore
from ilptx.settlement import MaxValueTracker, TransferLimitError, TransferLog, make_settlement_state

@defer.inlineCallbacks
def main():
    port, prefix, name, mode, seed = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    store = RedisStore(port=port, prefix=prefix, instance=name)
    yield store.open()
    state = make_settlement_state(store)
    yield state.open()
    print("ready", flush=True)
    yield store.client.execute_command("BLPOP", prefix + "go", 60)
    rng = random.Random(seed)
    window = defer.DeferredSemaphore(20)
    if mode == "max":
        # this process's values: its own parity of 1..4000, rising, so that while the two
        # overlap each call contends with the other process's latest one
        values = [v for v in range(1, 4001) if v % 2 == seed % 2]
        best = MaxValueTracker(state, "best")
        returned = yield defer.gatherResults([window.run(best.set_if_max, v, f"{name}:{v}") for v in values])
        increase = sum(v - r.value for v, r in zip(values, returned))
        replaced = sum(1 for v, r in zip(values, returned) if r.value != v)
        print(f"increase {increase} replaced {replaced}", flush=True)
    else:
        ids = [f"t{n}" for n in range(3000)]
        rng.shuffle(ids)
        log = TransferLog(state, "peer")

        def outcome(d):
            return d.addCallbacks(lambda new: "new" if new else "replay",
                                  lambda f: f.trap(TransferLimitError) and "limit")

        results = yield defer.gatherResults([outcome(window.run(log.prepare, i, 7, True, "same")) for i in ids])
        print(" ".join(f"{k} {results.count(k)}" for k in ("new", "replay", "limit")), flush=True)
    yield store.close()
    reactor.stop()

reactor.callWhenRunning(main)
reactor.run()
"""


def _race(processes, server: RedisServer, prefix: str, mode: str, pattern: str) -> list:
    argv = [sys.executable, "-c", RACER, str(server.port), prefix]
    racers = [processes.run(argv + [name, mode, str(seed)]) for name, seed in (("one", 1), ("two", 2))]
    for racer in racers:
        wait_for_output(racer, r"ready")
    assert server.command("RPUSH", prefix + "go", "1", "1").startswith(b":2")
    return [wait_for_output(racer, pattern, timeout=60) for racer in racers]


def _reply_lines(reply: bytes) -> list[bytes]:
    return reply.split(b"\r\n")


def test_two_processes_racing_set_if_max_never_lose_the_maximum(processes, tmp_path):
    """Two processes call set_if_max 2000 times each at once (rising odd vs even values): the
    final maximum is the greatest value of either, and the increases both saw add up to it
    exactly (a lost or doubled update would change the sum)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        found = _race(processes, server, "race:", "max", r"increase (\d+) replaced (\d+)")
        increases = [int(m.group(1)) for m in found]
        assert sum(increases) == 4000, increases
        assert all(int(m.group(2)) > 0 for m in found), [m.group(0) for m in found]  # both won some
        raw = _reply_lines(server.command("HGET", "race:settle:max", "best"))[1]
        assert raw == b'{"v": "4000", "d": "two:4000"}'
    finally:
        server.stop()


def test_two_processes_racing_prepares_never_pass_the_maximum(processes, tmp_path):
    """Two processes prepare the same 3000 ids (7 each, shuffled differently) at once against a
    maximum of 7000: exactly 1000 are new in all, none twice, and IFP is exactly 7000."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        assert server.command("HSET", "race:settle:tls:peer", "max", "7000").startswith(b":1")
        found = _race(processes, server, "race:", "prepare", r"new (\d+) replay (\d+) limit (\d+)")
        new = [int(m.group(1)) for m in found]
        assert sum(new) == 1000, [m.group(0) for m in found]
        assert all(n > 0 for n in new), [m.group(0) for m in found]  # both really competed
        assert _reply_lines(server.command("HGET", "race:settle:tls:peer", "ifp"))[1] == b"7000"
        assert server.command("SCARD", "race:settle:tlp:peer").startswith(b":1000")
        assert server.command("HLEN", "race:settle:tlt:peer").startswith(b":1000")
    finally:
        server.stop()
