"""The Redis store when Redis refuses writes: nothing is left reserved for ``recover()`` to book.

A real redis-server is made to refuse every write by turning it into a read-only replica of
nobody (``REPLICAOF 127.0.0.1 1``: ``-READONLY`` before the first write, the dataset kept),
the same kind of answer as ``-MISCONF`` from a Redis whose disk is full.
"""

from __future__ import annotations

import itertools

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from ilptx.core.balances import BalanceState
from ilptx.stores.redis import RedisStore

B = BalanceState
_prefixes = itertools.count()


def sleep(seconds: float) -> Deferred:
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@pytest.fixture
def store(redis_server):
    """An opened RedisStore (own prefix, retries every 0.1 s) on the session's redis-server,
    which accepts writes again at teardown."""
    s = RedisStore(port=redis_server.port, prefix=f"fail{next(_prefixes)}:", retry_delay=0.1)
    pytest_twisted.blockon(s.open())
    yield s
    refuse_writes(redis_server, False)
    pytest_twisted.blockon(s.close())


def refuse_writes(redis_server, refuse: bool) -> None:
    """Make Redis answer every write with ``-READONLY``, or accept writes again."""
    reply = redis_server.command("REPLICAOF", *(("127.0.0.1", "1") if refuse else ("NO", "ONE")))
    assert reply.startswith(b"+OK"), reply


@pytest.mark.parametrize("reserve, refused, after", [
    # a Prepare the next hop rejected: released once Redis writes again, never booked as paid
    (lambda s: s.reserve_outgoing("bob", 85, None), lambda s: s.settle_outgoing("bob", 85, False), B()),
    # a reservation Redis refused holds nothing, then or after the retry
    (None, lambda s: s.reserve_outgoing("bob", 40, None), B()),
    # the sender gets a Reject: released, not charged
    (lambda s: s.reserve_incoming("bob", 30, None), lambda s: s.settle_incoming("bob", 30, True), B()),
    # the next hop was paid: committed once Redis writes again
    (lambda s: s.reserve_outgoing("bob", 20, None), lambda s: s.settle_outgoing("bob", 20, True), B(balance=-20)),
], ids=["release", "reservation", "incoming-commit", "outgoing-commit"])
@pytest_twisted.inlineCallbacks
def test_an_operation_redis_refused_is_resolved_once_it_writes_again(store, redis_server, reserve, refused, after):
    """An operation Redis refuses errbacks; once Redis writes again its reservation is resolved and
    recover() (a restart) finds nothing left to book."""
    if reserve is not None:
        assert (yield reserve(store)) is True
    refuse_writes(redis_server, True)
    with pytest.raises(Exception, match="READONLY"):
        yield refused(store)
    refuse_writes(redis_server, False)
    yield sleep(0.5)
    assert (yield store.get_balance("bob")) == after
    assert (yield store.recover()) == {}


@pytest_twisted.inlineCallbacks
def test_settling_one_reservation_twice_applies_once(store):
    """A settle repeated with the same reservation id (a retry after a lost reply) changes nothing more;
    undoing a commit that did run reverses it."""
    assert (yield store.reserve_outgoing("bob", 7, None)) is True
    ((_, rid),) = [(k, v[0]) for k, v in store._reservations.items()]
    assert (yield store.settle_outgoing("bob", 7, True)) == B(balance=-7)
    yield store._settle_script("o", "bob", 7, "1", rid)
    assert (yield store.get_balance("bob")) == B(balance=-7)
    assert (yield store.reserve_incoming("alice", 9, None)) is True
    ((_, rid),) = [(k, v[0]) for k, v in store._reservations.items()]
    assert (yield store.settle_incoming("alice", 9, True)) == B(balance=9)
    yield store._settle_script("i", "alice", 9, "u", rid)
    assert (yield store.get_balance("alice")) == B()
    assert (yield store.recover()) == {}


@pytest_twisted.inlineCallbacks
def test_a_batch_redis_refused_is_resolved_op_by_op(store, redis_server):
    """Settles refused while batched together (one command for several) each errback; once Redis
    writes again each reservation is resolved by its own rule (paid next hop committed, the rest
    released) and recover() finds nothing left."""
    for account in ("bob", "carol", "dave"):
        assert (yield store.reserve_outgoing(account, 10, None)) is True
    assert (yield store.reserve_incoming("alice", 30, None)) is True
    sent = []
    evalsha = store._evalsha
    store._evalsha = lambda name, keys, args: sent.append(name) or evalsha(name, keys, args)
    refuse_writes(redis_server, True)
    settles = [store.settle_outgoing("bob", 10, True), store.settle_outgoing("carol", 10, False),
               store.settle_outgoing("dave", 10, True), store.settle_incoming("alice", 30, True)]
    for d in settles:
        with pytest.raises(Exception, match="READONLY"):
            yield d
    assert sent == ["batch"]  # made while a reply was being handled: the four went out as one
    refuse_writes(redis_server, False)
    yield sleep(0.5)
    balances = yield store.all_balances()
    assert balances == {"bob": B(balance=-10), "carol": B(), "dave": B(balance=-10), "alice": B()}
    assert (yield store.recover()) == {}
