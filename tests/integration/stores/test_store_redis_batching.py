"""The Redis store's batch script on a real redis-server: concurrent per-packet operations, sent as a
few batch commands, leave exactly the books (and give exactly the answers) that the memory store
gives for the same operations in the same order."""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from ilptx.stores.memory import MemoryStore

from integration.stores.conftest import StoreMaker


@pytest.fixture
def redis_store(request, tmp_path):
    """An opened RedisStore with its own prefix on the session's redis-server."""
    maker = StoreMaker("redis", request, tmp_path)
    yield maker.open()
    maker.close_all()


@pytest_twisted.inlineCallbacks
def test_batched_operations_match_the_memory_store(redis_store):
    """300 rounds of reservations against tight limits and their settles, all made at once each
    round, go out mostly as batches and agree with MemoryStore: every answer, every balance."""
    store = redis_store
    reference = MemoryStore()
    sent = []
    evalsha = store._evalsha
    store._evalsha = lambda name, keys, args: sent.append(name) or evalsha(name, keys, args)
    rng = random.Random(12)
    operations = 0
    accounts = ["a", "b", "c"]
    big = 10**20  # beyond 2**64: the limb arithmetic inside a batch
    for _ in range(300):
        ops = []
        for _ in range(rng.randrange(1, 12)):
            account, amount = rng.choice(accounts), rng.choice([1, 7, 40, big])
            if rng.random() < 0.5:
                ops.append(("reserve_incoming", account, amount, rng.choice([None, 100, 3 * big])))
            else:
                ops.append(("reserve_outgoing", account, amount, rng.choice([None, -100, -3 * big])))
        operations += len(ops)
        got = yield gatherResults([getattr(store, op)(*args) for op, *args in ops])
        want = [getattr(reference, op)(*args).result for op, *args in ops]
        assert got == want, ops
        settles = [("settle_incoming" if op == "reserve_incoming" else "settle_outgoing", account, amount,
                    rng.random() < 0.6) for n, (op, account, amount, _) in enumerate(ops) if got[n]]
        rng.shuffle(settles)
        operations += len(settles)
        got = yield gatherResults([getattr(store, op)(*args) for op, *args in settles])
        want = [getattr(reference, op)(*args).result for op, *args in settles]
        assert got == want, settles
    assert (yield store.all_balances()) == reference.balances
    assert sent.count("batch") > 300 and len(sent) < operations / 2  # one command per operation without batching
    assert (yield store.recover()) == {}
