"""The Redis store's batching of per-packet operations (issue 12, item 5), on a fake client that
records every command and lets the test answer or fail it (the batch script itself runs against a
real redis-server in ``tests/integration/stores/test_store_redis_batching.py``)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.logger import Logger

from ilptx.core.balances import BalanceState
from ilptx.stores.redis import _SHAS, RedisStore
from unit.stores.test_store_redis_resolve import FakeRedis, consume


@pytest.fixture
def redis():
    clock, client = Clock(), FakeRedis()
    store = RedisStore(reactor=clock, retry_delay=1.0, prefix="p:", instance="me")
    store._redis = client
    store._log = Logger(observer=lambda event: None)
    return store, client, clock


def script(args: tuple) -> str:
    """:returns: the name of the script an ``EVALSHA`` command runs."""
    assert args[0] == "EVALSHA"
    return {sha: name for name, sha in _SHAS.items()}[args[1]]


def batch_ops(args: tuple) -> list[tuple]:
    """:returns: ``(code, balance key, account, argv...)`` of each operation in a ``batch`` command."""
    assert script(args) == "batch"
    nkeys = args[2]
    keys, (prefix, words) = args[3:3 + nkeys], args[3 + nkeys:]
    assert keys[:2] == ("p:r:me", "p:accounts") and prefix == "p:b:"
    words = ["" if word == "_" else word for word in words.split(" ")]
    assert len(words) == 5 * (nkeys - 2)
    return [(words[5 * n], key, key[len(prefix):], *words[5 * n + 1:5 * n + 5]) for n, key in enumerate(keys[2:])]


def test_operations_made_while_one_is_in_flight_go_out_as_one_batch(redis):
    """The first operation goes out alone; the next ones wait and go out, in order, as one batch
    command once its reply is in; each gets its own reply."""
    store, client, _ = redis
    first = store.reserve_incoming("alice", 5, 100)
    assert len(client.calls) == 1 and script(client.calls[0][0]) == "reserve_incoming"
    second = store.reserve_outgoing("bob", 5, None)
    third = store.reserve_incoming("alice", 7, None)
    assert len(client.calls) == 1
    client.calls[0][1].callback(1)
    assert first.result is True
    assert len(client.calls) == 2
    ops = batch_ops(client.calls[1][0])
    assert [(op[0], op[1], op[2], op[3], op[4]) for op in ops] == [
        ("O", "p:b:bob", "bob", "5", ""), ("I", "p:b:alice", "alice", "7", "")]
    assert ops[0][5] != ops[1][5] and ops[0][6] == ""  # own reservation ids; ARGV padded to five
    client.calls[1][1].callback("0,1")
    assert (second.result, third.result) == (False, True)


def test_what_a_reply_starts_goes_out_with_what_was_queued(redis):
    """Operations started by a reply's callbacks (the next middleware's reservation) join the queue
    and leave with it as one command, not one each."""
    store, client, _ = redis
    first = store.reserve_incoming("alice", 1, None)
    queued = store.reserve_incoming("alice", 2, None)
    first.addCallback(lambda _: store.reserve_outgoing("bob", 1, None))
    client.calls[0][1].callback(1)
    assert len(client.calls) == 2
    assert [op[:4] for op in batch_ops(client.calls[1][0])] == [
        ("I", "p:b:alice", "alice", "2"), ("O", "p:b:bob", "bob", "1")]
    client.calls[1][1].callback("1,1")
    assert queued.result is True
    assert store._in_flight == 0 and store._queue == []


def test_settles_in_a_batch_carry_their_reservations_and_get_their_states(redis):
    """settle_* in a batch: mode, direction and the reservation's own id; each Deferred fires with the
    BalanceState of its own reply."""
    store, client, _ = redis
    store.reserve_outgoing("bob", 3, None)
    rid = client.calls[0][0][-1]
    client.calls[0][1].callback(1)
    hold = store.reserve_incoming("alice", 1, None)  # in flight
    out = store.settle_outgoing("bob", 3, True)
    inc = store.settle_incoming("alice", 9, False)  # no reservation: id ''
    client.calls[1][1].callback(1)
    assert hold.result is True
    ops = batch_ops(client.calls[2][0])
    assert ops == [("S", "p:b:bob", "bob", "3", "1", "o", rid), ("S", "p:b:alice", "alice", "9", "0", "i", "")]
    client.calls[2][1].callback("-3 0 0 0,0 0 0 0")
    assert (out.result, inc.result) == (BalanceState(balance=-3), BalanceState())


def test_another_command_first_sends_what_is_queued(redis):
    """A command that is not batched (get_balance, put, another script) goes out after the queued
    operations, so Redis sees every command in the order it was made."""
    store, client, _ = redis
    store.reserve_incoming("alice", 1, None)
    store.reserve_incoming("alice", 2, None)
    store.reserve_incoming("alice", 3, None)
    store.get_balance("alice")
    assert [script(args) if args[0] == "EVALSHA" else args[0] for args, _ in client.calls] == [
        "reserve_incoming", "batch", "HMGET"]
    assert [op[3] for op in batch_ops(client.calls[1][0])] == ["2", "3"]


def test_a_failed_batch_fails_each_operation_and_resolves_each_reservation(redis):
    """A batch command that fails errbacks every operation in it; each reservation is then released
    with its own id, and the store sends again afterwards."""
    store, client, clock = redis
    store.reserve_incoming("alice", 1, None)
    a = store.reserve_outgoing("bob", 4, None)
    b = store.reserve_outgoing("carol", 6, None)
    client.calls[0][1].callback(1)
    rids = [op[5] for op in batch_ops(client.calls[1][0])]
    client.calls[1][1].errback(ConnectionError("connection lost"))
    consume(a)
    consume(b)
    assert store._in_flight == 0
    clock.advance(1.0)
    # both resolutions start in one turn: the first goes alone, the second (alone in the queue) after it
    assert script(client.calls[2][0]) == "settle" and client.calls[2][0][-3:] == ("0", "o", rids[0])
    client.calls[2][1].callback("0 0 0 0")
    assert script(client.calls[3][0]) == "settle" and client.calls[3][0][-3:] == ("0", "o", rids[1])
    client.calls[3][1].callback("0 0 0 0")
    assert store._resolving == {} and store._in_flight == 0
