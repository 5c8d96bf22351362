"""The Redis store beyond the shared contract: decimal-string arithmetic in Lua, NOSCRIPT
fallback, instances sharing one Redis, the persistence check (real redis-server)."""

from __future__ import annotations

import itertools
import random

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults
from twisted.logger import globalLogPublisher

from ilptx.core.balances import BalanceState
from ilptx.stores.redis import LUA_BIGINT, RedisStore

B = BalanceState
_prefixes = itertools.count()

_HARNESS = LUA_BIGINT + r"""
local out = {}
for n = 1, #ARGV, 2 do
  local x, y = ARGV[n], ARGV[n + 1]
  out[#out + 1] = add(x, y)
  out[#out + 1] = sub(x, y)
  out[#out + 1] = tostring(cmp(x, y))
  out[#out + 1] = pos(x)
end
return out
"""


@pytest.fixture
def make(redis_server):
    """``make(**kwargs)`` -> Deferred[opened RedisStore] on the session server, own prefix by
    default; every store is closed at teardown."""
    made = []
    prefix = f"redis{next(_prefixes)}:"

    def make(**kwargs):
        kwargs.setdefault("prefix", prefix)
        store = RedisStore(port=redis_server.port, **kwargs)
        made.append(store)
        return store.open().addCallback(lambda _: store)

    yield make
    for store in made:
        pytest_twisted.blockon(store.close())


def _interesting() -> list[int]:
    rng = random.Random(53)
    edges = [0, 1, 9, 10, 10**7 - 1, 10**7, 10**7 + 1, 10**14 - 1, 10**15 - 1, 10**15, 10**16,
             2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**21, 10**14 * 10**7]
    values = [sign * v for v in edges for sign in (1, -1)]
    values += [rng.randrange(-(10**40), 10**40) for _ in range(30)]
    values += [rng.randrange(-(10**16), 10**16) for _ in range(30)]
    return values


@pytest_twisted.inlineCallbacks
def test_lua_decimal_arithmetic_matches_python(make):
    """add, sub, cmp and pos on decimal strings in Lua agree with Python ints for ~10,000
    pairs across the fast path (< 16 characters) and the limb path, signs and carries."""
    store = yield make()
    values = _interesting()
    pairs = [(x, y) for x in values for y in values]
    for start in range(0, len(pairs), 2000):
        chunk = pairs[start:start + 2000]
        args = [str(v) for pair in chunk for v in pair]
        out = yield store._redis.execute_command("EVAL", _HARNESS, 0, *args)
        for n, (x, y) in enumerate(chunk):
            got = out[4 * n:4 * n + 4]
            assert got == [str(x + y), str(x - y), str((x > y) - (x < y)), str(max(0, x))], (x, y)


@pytest_twisted.inlineCallbacks
def test_noscript_falls_back_to_eval(make, redis_server):
    """After SCRIPT FLUSH (as after a Redis restart), operations still run (EVAL reloads)."""
    store = yield make()
    yield store.adjust("a", 1)
    assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
    assert (yield store.reserve_incoming("a", 1, None)) is True
    assert (yield store.adjust("a", 1)) == B(balance=2, incoming_reserved=1)


@pytest_twisted.inlineCallbacks
def test_two_connections_never_pass_the_limit_together(make):
    """Two stores (two connections) reserving on one account at once: exactly as many pass as
    the minimum allows, and the reserved total never goes beyond it."""
    a = yield make(instance="one")
    b = yield make(instance="two")
    yield a.adjust("peer", 1000)
    calls = [store.reserve_outgoing("peer", 13, -2000) for _ in range(150) for store in (a, b)]
    results = yield gatherResults(calls)
    assert sum(results) == 3000 // 13
    state = yield b.get_balance("peer")
    assert state == B(balance=1000, outgoing_reserved=13 * (3000 // 13))
    assert 1000 - state.outgoing_reserved >= -2000


@pytest_twisted.inlineCallbacks
def test_recover_touches_only_its_own_instance(make):
    """recover() releases / commits the reservations of its own instance only: a live
    neighbour's reservations stay."""
    one = yield make(instance="one")
    two = yield make(instance="two")
    yield one.reserve_incoming("a", 10, None)
    yield one.reserve_outgoing("a", 20, None)
    yield two.reserve_incoming("a", 1, None)
    yield two.reserve_outgoing("a", 2, None)
    restarted = yield make(instance="one")
    assert (yield restarted.recover()) == {"a": B(balance=-20, incoming_reserved=1, outgoing_reserved=2)}
    assert (yield two.settle_outgoing("a", 2, True)) == B(balance=-22, incoming_reserved=1)
    assert (yield two.recover()) == {"a": B(balance=-22)}
    assert (yield one.recover()) == {}


@pytest_twisted.inlineCallbacks
def test_store_url_selects_the_database(make, redis_server):
    """make_store with a redis:// storePath reaches that server and database."""
    from twisted.internet import reactor

    from ilptx.stores import make_store

    store = make_store("redis", f"redis://127.0.0.1:{redis_server.port}/3", {"prefix": "url:"}, reactor)
    yield store.open()
    try:
        yield store.put("k", "v")
        assert (store.db, store.port) == (3, redis_server.port)
        assert (yield store.get("k")) == "v"
    finally:
        yield store.close()
    other = yield make(prefix="url:")  # db 0: nothing there
    assert (yield other.get("k")) is None


@pytest_twisted.inlineCallbacks
def test_weak_persistence_is_logged(make, redis_server):
    """open() warns when the server would not fsync every write (appendfsync everysec)."""
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        assert redis_server.command("CONFIG", "SET", "appendfsync", "everysec").startswith(b"+OK")
        yield make()
        warned = [e for e in events if e.get("log_namespace") == "ilptx.stores.redis"
                  and "appendfsync" in e.get("log_format", "")]
        assert warned and warned[0]["appendfsync"] == "everysec"
        events.clear()
        assert redis_server.command("CONFIG", "SET", "appendfsync", "always").startswith(b"+OK")
        yield make()
        assert not [e for e in events if e.get("log_namespace") == "ilptx.stores.redis"]
    finally:
        globalLogPublisher.removeObserver(events.append)
        redis_server.command("CONFIG", "SET", "appendfsync", "always")


@pytest_twisted.inlineCallbacks
def test_open_fails_when_redis_does_not_answer():
    """open() errbacks with ConnectionError (naming host and port) when nothing listens."""
    from integration.procs import free_port

    port = free_port()
    store = RedisStore(port=port, connect_timeout=0.3)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        yield store.open()
    yield store.close()


@pytest_twisted.inlineCallbacks
def test_open_fails_on_a_refused_password(redis_server):
    """open() errbacks with ConnectionError when the server refuses AUTH."""
    store = RedisStore(port=redis_server.port, password="wrong", connect_timeout=0.5)
    with pytest.raises(ConnectionError):
        yield store.open()
