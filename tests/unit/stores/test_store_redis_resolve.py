"""The Redis store's resolution of failed operations, on a ``task.Clock`` with a fake client that
records every command and lets the test answer or fail it (the scripts themselves run against a
real redis-server in ``tests/integration/stores``)."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel

from ilptx.stores.redis import _SHAS, RedisStore


class FakeRedis:
    """``execute_command`` returns a Deferred the test fires: ``calls`` holds ``(args, Deferred)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, Deferred]] = []

    def execute_command(self, *args) -> Deferred:
        d = Deferred()
        self.calls.append((args, d))
        return d

    def disconnect(self) -> Deferred:
        return succeed(None)

    def settles(self) -> list[tuple]:
        """:returns: ``(mode, direction, reservation id)`` of every settle script sent."""
        return [args[-3:] for args, _ in self.calls if args[1] == _SHAS["settle"]]


@pytest.fixture
def redis():
    clock, client, events = Clock(), FakeRedis(), []
    store = RedisStore(reactor=clock, retry_delay=1.0)
    store._redis = client
    store._log = Logger(observer=events.append)
    return store, client, clock, events


def reservation_id(client: FakeRedis) -> str:
    """:returns: the reservation id the last reserve script carried."""
    return client.calls[-1][0][-1]


def consume(d: Deferred) -> None:
    failures = []
    d.addErrback(failures.append)
    assert failures, "expected the Deferred to have failed"


def test_failed_reservation_is_released_until_redis_answers(redis):
    """reserve_outgoing whose command fails errbacks; its id is released after retry_delay, again and
    again until Redis answers, then never more."""
    store, client, clock, events = redis
    d = store.reserve_outgoing("bob", 85, None)
    rid = reservation_id(client)
    client.calls[-1][1].errback(ConnectionError("connection lost"))
    consume(d)
    assert client.settles() == []
    clock.advance(1.0)
    assert client.settles() == [("0", "o", rid)]
    client.calls[-1][1].errback(ConnectionError("still down"))
    clock.advance(1.0)
    assert client.settles() == [("0", "o", rid)] * 2
    client.calls[-1][1].callback("0 0 0 0")
    clock.advance(10.0)
    assert len(client.settles()) == 2 and store._resolving == {}


@pytest.mark.parametrize("direction, fulfilled, mode", [
    ("i", True, "u"),  # the sender gets a Reject: undo the commit (release, or reverse if it ran)
    ("i", False, "0"),
    ("o", True, "1"),  # the next hop was paid: commit
    ("o", False, "0"),
])
def test_failed_settle_is_resolved_with_its_reservation_id(redis, direction, fulfilled, mode):
    """A settle whose command fails errbacks, then is resolved with the reservation's own id and the mode
    that leaves the books right."""
    store, client, clock, events = redis
    reserve = store.reserve_incoming if direction == "i" else store.reserve_outgoing
    reserved = reserve("a", 5, None)
    rid = reservation_id(client)
    client.calls[-1][1].callback(1)
    assert reserved.result is True
    settle = store.settle_incoming if direction == "i" else store.settle_outgoing
    d = settle("a", 5, fulfilled)
    assert client.settles() == [("1" if fulfilled else "0", direction, rid)]
    client.calls[-1][1].errback(ConnectionError("connection lost"))
    consume(d)
    clock.advance(1.0)
    assert client.settles()[-1] == (mode, direction, rid)


def test_close_leaves_unresolved_reservations_to_recover(redis):
    """close() cancels pending resolutions and logs each one at error level."""
    store, client, clock, events = redis
    d = store.reserve_outgoing("bob", 3, None)
    client.calls[-1][1].errback(ConnectionError("connection lost"))
    consume(d)
    store.close()
    assert clock.getDelayedCalls() == []
    assert [e["log_level"] for e in events if "unresolved" in e["log_format"]] == [LogLevel.error]
