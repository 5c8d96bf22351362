"""The deduplicate cache stays out of the garbage collector's way and is swept in bounded chunks."""

from __future__ import annotations

import gc
import hashlib
import platform
from datetime import datetime, timezone

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from ilptx.codec.ilp import Fulfill, Prepare, Reject
from ilptx.core.middleware.deduplicate import SWEEP_PAUSE, DeduplicateMiddleware
from ilptx.errors import InsufficientLiquidityError, IlpError

FULFILLMENT = b"\x22" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
START = 1_700_000_000


def middleware(chunk=10, interval_ms=1000, lifetime_ms=1000):
    clock = Clock()
    clock.advance(START)
    dedup = DeduplicateMiddleware(clock, interval_ms, lifetime_ms, sweep_chunk=chunk)
    dedup.start()
    return clock, dedup


def prepare(clock, data: bytes, expires_in: float = 5.0, amount: int = 10) -> Prepare:
    expires = datetime.fromtimestamp(clock.seconds() + expires_in, timezone.utc)
    return Prepare(amount, expires, CONDITION, "test.node.bob.x", data)


def answer(dedup, packet, reply) -> list:
    """Send ``packet`` through ``dedup`` to a next hop answering ``reply()``; :returns: the outcome list."""
    out: list = []
    dedup.outgoing(None, packet, lambda account, p: reply()).addBoth(out.append)
    return out


def test_sweep_drops_at_most_a_chunk_at_a_time():
    """deduplicate: 95 expired entries go in 10 chunks of at most 10, SWEEP_PAUSE apart; live ones stay."""
    clock, dedup = middleware(chunk=10)
    for i in range(95):
        answer(dedup, prepare(clock, b"old%d" % i, expires_in=1), lambda: succeed(Fulfill(FULFILLMENT)))
    for i in range(30):
        answer(dedup, prepare(clock, b"live%d" % i, expires_in=60), lambda: succeed(Fulfill(FULFILLMENT)))
    assert len(dedup.cache) == 125
    clock.advance(1)  # expired, but not packetLifetime ago: nothing goes
    assert len(dedup.cache) == 125
    clock.advance(1.5)  # cleanup tick at +2 s: expiry + lifetime passed for the 95 old ones
    sizes = [len(dedup.cache)]
    while len(clock.getDelayedCalls()) > 1:  # the interval loop, plus the sweep's next chunk
        clock.advance(SWEEP_PAUSE)
        sizes.append(len(dedup.cache))
    assert sizes == [115, 105, 95, 85, 75, 65, 55, 45, 35, 30]
    assert len(dedup._drops) == 30  # the live entries' records were never popped


@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="CPython's reference counting and cycle collector; PyPy has neither")
def test_finished_entries_are_not_tracked_by_the_collector():
    """deduplicate: a finished Fulfill, Reject or ILP error is cached as a tuple gc does not track."""
    clock, dedup = middleware()
    answer(dedup, prepare(clock, b"f"), lambda: succeed(Fulfill(FULFILLMENT, b"ok")))
    answer(dedup, prepare(clock, b"r"), lambda: succeed(Reject("F02", "test.peer", "no route", b"d")))
    answer(dedup, prepare(clock, b"e"), lambda: fail(InsufficientLiquidityError("too much", b"x")))
    gc.collect()
    assert len(dedup.cache) == 3
    assert [gc.is_tracked(entry) for entry in dedup.cache.values()] == [False, False, False]


def test_in_flight_entry_is_shared_then_replaced_by_its_answer():
    """deduplicate: a duplicate of an in-flight Prepare waits for the same answer; then the entry is a tuple."""
    clock, dedup = middleware()
    hold: Deferred = Deferred()
    calls = []
    first = answer(dedup, prepare(clock, b"same"), lambda: (calls.append(1), hold)[1])
    second = answer(dedup, prepare(clock, b"same"), lambda: (calls.append(2), succeed(None))[1])
    assert calls == [1] and first == second == []
    hold.callback(Fulfill(FULFILLMENT, b"ok"))
    assert first == second == [Fulfill(FULFILLMENT, b"ok")]
    assert [type(entry) for entry in dedup.cache.values()] == [tuple]


def test_finished_duplicates_get_the_same_answer():
    """deduplicate: a duplicate of a finished Prepare gets the same Fulfill, Reject or ILP error, not forwarded."""
    clock, dedup = middleware()
    replies = {b"f": lambda: succeed(Fulfill(FULFILLMENT, b"ok")),
               b"r": lambda: succeed(Reject("F02", "test.peer", "no route", b"d")),
               b"e": lambda: fail(InsufficientLiquidityError("too much", b"x"))}
    first = {data: answer(dedup, prepare(clock, data), reply)[0] for data, reply in replies.items()}
    gc.collect()
    forwarded = []
    again = {data: answer(dedup, prepare(clock, data, expires_in=4, amount=9),
                          lambda: (forwarded.append(1), succeed(None))[1])[0] for data in replies}
    assert forwarded == []
    assert again[b"f"] == first[b"f"] == Fulfill(FULFILLMENT, b"ok")
    assert again[b"r"] == first[b"r"] == Reject("F02", "test.peer", "no route", b"d")
    error = again[b"e"].value
    assert isinstance(error, IlpError) and (error.code, error.message, error.data) == ("T04", "too much", b"x")
    for out in first[b"e"], again[b"e"]:
        out.trap(IlpError)


def test_larger_copy_replaces_the_entry_and_the_old_record_does_not_drop_it():
    """deduplicate: a larger Prepare re-caches its key; the smaller one's earlier drop time leaves it cached."""
    clock, dedup = middleware(lifetime_ms=1000)
    answer(dedup, prepare(clock, b"k", expires_in=1), lambda: succeed(Fulfill(FULFILLMENT, b"a")))
    answer(dedup, prepare(clock, b"k", expires_in=10), lambda: succeed(Fulfill(FULFILLMENT, b"b")))
    clock.advance(3)  # the first entry's drop time passed; the key now belongs to the second
    assert len(dedup.cache) == 1
    clock.advance(9)
    assert dedup.cache == {}


def test_stop_cancels_a_sweep_under_way():
    """deduplicate: stop() leaves no timer behind, even mid-sweep."""
    clock, dedup = middleware(chunk=2)
    for i in range(5):
        answer(dedup, prepare(clock, b"%d" % i, expires_in=0.5), lambda: succeed(Fulfill(FULFILLMENT)))
    clock.advance(2)
    assert len(dedup.cache) == 3 and len(clock.getDelayedCalls()) == 2
    dedup.stop()
    assert clock.getDelayedCalls() == []
