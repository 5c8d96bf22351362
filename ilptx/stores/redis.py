"""``store: redis``: state in a Redis server, shared safely by several connector processes.

Every check-and-change is one Lua script run by Redis (``EVALSHA``, loaded at
:meth:`RedisStore.open`; after a ``NOSCRIPT`` — a server restart or ``SCRIPT FLUSH`` — the
store falls back to ``EVAL``, which also caches the script again). Redis runs a script
atomically, so two connector processes reserving against one account's limit cannot both pass
a check that only one should.

Batching (issue 12, item 5)
===========================

The per-packet operations (``reserve_incoming``, ``reserve_outgoing``, ``settle_*``) keep at
most one command in flight: an operation made while none is waiting goes out at once as its
own script; those made while one is waiting are queued and sent, when its reply has come in
and its callbacks have run, as **one** ``EVALSHA`` of the ``batch`` script, which runs each in
order, exactly as its own script would, and returns one reply per operation. So at one packet
in flight nothing changes, and at many each packet costs a fraction of a round trip (the
load generator's 100 in flight: a few dozen operations per command) instead of four. Any
other command first sends what is queued, so commands reach Redis in the order they were
made. A failed batch fails each of its operations, and each is resolved on its own (see "When
a command fails"); one that had already run before a failure is covered by the same rule.

Amounts
=======

Redis integers are 64-bit signed and Lua numbers are doubles (exact to 2**53), but ILP amounts
are uint64 and balances can go further either way. So amounts are kept as **decimal strings**
in Redis hashes, and the scripts add, subtract and compare them as decimal strings: values of
at most 15 characters (``|n| < 10**15``) take a fast path through Lua numbers (their sums stay
below 2**53, so exact); longer ones go through a small arbitrary-precision routine on
base-10**7 limbs. There is no size limit.

Keys (``prefix`` defaults to ``ilptx:``)
=======================================

==================================  =====================================================
``<prefix>b:<account>``             hash ``b`` balance, ``i`` incoming reserved, ``o``
                                    outgoing reserved, ``s`` settling (decimal strings)
``<prefix>accounts``                set of account ids with a balance hash
``<prefix>r:<instance>``            hash ``i:<account>`` / ``o:<account>``: the reservations
                                    this connector instance holds (for :meth:`recover`);
                                    ``p:<reservation id>``: each one not yet settled
``<prefix>outbox``                  hash settlement id -> ``<amount>:<account>``
``<prefix>outbox:order``            sorted set settlement id, scored by ``<prefix>outbox:seq``
``<prefix>kv``                      hash key -> value (plugin state, runtime accounts)
==================================  =====================================================

Several processes sharing one Redis must each have their own ``instance`` (``storeConfig``),
kept across restarts: :meth:`~RedisStore.recover` releases and commits only the reservations
its own instance made, never those of a live neighbour. Scripts touch keys they compute
(balance hashes named in the outbox or instance hash), so this store is for a single Redis
server (with replicas), not Redis Cluster.

Durability
==========

A committing operation's Deferred fires when Redis has executed its script and replied.
Whether that is on disk is the server's persistence setting: with ``appendonly yes`` and
``appendfsync always`` Redis fsyncs its AOF before it replies (batching every client's writes
of one event-loop turn into one fsync), which gives the guarantee
:class:`ilptx.interfaces.IStore` asks for. :meth:`RedisStore.open` reads the setting
(``CONFIG GET``, when allowed) and logs a warning when it is weaker (the default
``appendfsync everysec`` can lose about a second of commits on a crash of the Redis host).

When a command fails
====================

Redis refuses a write it cannot make (``MISCONF``, ``OOM``, an AOF write error) before the
script's first write, so an error reply means nothing changed; a connection lost between
sending a script and its reply leaves it unknown whether it ran. Either way the operation's
Deferred errbacks (the Prepare gets a Reject), and no reservation may be left behind for
:meth:`~RedisStore.recover` to book as paid. So every reservation carries a unique id (random
per store object, plus a counter), recorded
(field ``p:<id>``) by the script that reserves it and deleted by the one that settles it, which
does nothing when the id is already gone; a settle is then safe to repeat. After a failure the
store *resolves* the reservation in the background, retrying every ``retry_delay`` seconds
until Redis answers: a failed reservation is released (a no-op if it never happened), a failed
release is released, a failed incoming commit is undone (released, or reversed if it did run:
the sender got a Reject), and a failed outgoing commit is committed (the next hop was paid).
What is still unresolved at :meth:`~RedisStore.close` is logged and left to the next start's
``recover()``.

The client is ``txredisapi`` (it reconnects on its own; while disconnected, operations wait for
the connection). It schedules its timers on the global reactor.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Optional

import txredisapi
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ilptx.core.balances import BalanceState
from ilptx.interfaces import IStore

__all__ = ["RedisStore", "LUA_BIGINT", "SCRIPTS"]

_ZERO = BalanceState()

#: Decimal-string integer arithmetic for the scripts: ``add(x, y)``, ``sub(x, y)``,
#: ``cmp(x, y)`` (-1/0/1) and ``pos(x)`` (``max(0, x)``). Inputs and outputs are canonical
#: decimal strings (no leading zeros, no ``+``, ``'0'`` never signed).
LUA_BIGINT = r"""
local BASE = 10000000
local function num2str(n)
  if n == 0 then return '0' end
  return string.format('%.0f', n)
end
local function parse(s)
  local neg = false
  if string.byte(s, 1) == 45 then neg = true; s = string.sub(s, 2) end
  local m, i = {}, #s
  while i >= 1 do
    local j = i - 6
    if j < 1 then j = 1 end
    m[#m + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  while #m > 1 and m[#m] == 0 do m[#m] = nil end
  if #m == 1 and m[1] == 0 then neg = false end
  return neg, m
end
local function cmpmag(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  for k = #a, 1, -1 do
    if a[k] ~= b[k] then
      if a[k] < b[k] then return -1 end
      return 1
    end
  end
  return 0
end
local function addmag(a, b)
  local r, c = {}, 0
  local n = #a
  if #b > n then n = #b end
  for k = 1, n do
    local t = (a[k] or 0) + (b[k] or 0) + c
    if t >= BASE then r[k] = t - BASE; c = 1 else r[k] = t; c = 0 end
  end
  if c > 0 then r[n + 1] = c end
  return r
end
local function submag(a, b)
  local r, c = {}, 0
  for k = 1, #a do
    local t = a[k] - (b[k] or 0) - c
    if t < 0 then r[k] = t + BASE; c = 1 else r[k] = t; c = 0 end
  end
  while #r > 1 and r[#r] == 0 do r[#r] = nil end
  return r
end
local function fmt(neg, m)
  local t = {tostring(m[#m])}
  for k = #m - 1, 1, -1 do t[#t + 1] = string.format('%07d', m[k]) end
  local s = table.concat(t)
  if s == '0' then return s end
  if neg then return '-' .. s end
  return s
end
local function add(x, y)
  if #x < 16 and #y < 16 then return num2str(tonumber(x) + tonumber(y)) end
  local xn, xm = parse(x)
  local yn, ym = parse(y)
  if xn == yn then return fmt(xn, addmag(xm, ym)) end
  local c = cmpmag(xm, ym)
  if c == 0 then return '0' end
  if c > 0 then return fmt(xn, submag(xm, ym)) end
  return fmt(yn, submag(ym, xm))
end
local function negate(x)
  if x == '0' then return x end
  if string.byte(x, 1) == 45 then return string.sub(x, 2) end
  return '-' .. x
end
local function sub(x, y) return add(x, negate(y)) end
local function cmp(x, y)
  if #x < 16 and #y < 16 then
    local a, b = tonumber(x), tonumber(y)
    if a < b then return -1 end
    if a > b then return 1 end
    return 0
  end
  local xn, xm = parse(x)
  local yn, ym = parse(y)
  if xn ~= yn then
    if xn then return -1 end
    return 1
  end
  local c = cmpmag(xm, ym)
  if xn then return 0 - c end
  return c
end
local function pos(x)
  if string.byte(x, 1) == 45 then return '0' end
  return x
end
"""

# Shared tail: add ``amount`` to this instance's record of a reservation (field ``f``), or
# take it off (clamped at 0, field removed at 0).
_LUA_TRACK = r"""
local function track(key, f, amount, up)
  local v = redis.call('HGET', key, f) or '0'
  if up then
    redis.call('HSET', key, f, add(v, amount))
  else
    v = pos(sub(v, amount))
    if v == '0' then redis.call('HDEL', key, f) else redis.call('HSET', key, f, v) end
  end
end
"""

#: The scripts, by name: Lua source (without :data:`LUA_BIGINT`, prepended at load).
SCRIPTS: dict[str, str] = {
    # KEYS: balance hash, instance hash, accounts set.
    # ARGV: account, amount, maximum ('' = none), reservation id ('' = none)
    "reserve_incoming": r"""
local v = redis.call('HMGET', KEYS[1], 'b', 'i')
local b, i = v[1] or '0', v[2] or '0'
if ARGV[3] ~= '' and cmp(add(add(b, i), ARGV[2]), ARGV[3]) > 0 then return 0 end
redis.call('HSET', KEYS[1], 'i', add(i, ARGV[2]))
if not v[1] then redis.call('SADD', KEYS[3], ARGV[1]) end
track(KEYS[2], 'i:' .. ARGV[1], ARGV[2], true)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'p:' .. ARGV[4], '1') end
return 1
""",
    # KEYS: balance hash, instance hash, accounts set.
    # ARGV: account, amount, minimum ('' = none), reservation id ('' = none)
    "reserve_outgoing": r"""
local v = redis.call('HMGET', KEYS[1], 'b', 'o')
local b, o = v[1] or '0', v[2] or '0'
if ARGV[3] ~= '' and cmp(sub(sub(b, o), ARGV[2]), ARGV[3]) < 0 then return 0 end
redis.call('HSET', KEYS[1], 'o', add(o, ARGV[2]))
if not v[1] then redis.call('SADD', KEYS[3], ARGV[1]) end
track(KEYS[2], 'o:' .. ARGV[1], ARGV[2], true)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'p:' .. ARGV[4], '1') end
return 1
""",
    # KEYS: balance hash, instance hash, accounts set.
    # ARGV: account, amount, mode, direction ('i'/'o'), reservation id ('' = none).
    # mode '1' commits, '0' releases, 'u' undoes a commit (releases; or, if the commit already
    # ran, reverses it). With an id the reservation is settled once: when the id is gone (an
    # earlier attempt ran) nothing changes but an 'u' reversal. Returns 'b i o s' (one bulk
    # string: a quarter of the reply parsing of a four-element array).
    "settle": r"""
local v = redis.call('HMGET', KEYS[1], 'b', 'i', 'o', 's')
local b, i, o, s = v[1] or '0', v[2] or '0', v[3] or '0', v[4] or '0'
local amount, mode = ARGV[2], ARGV[3]
if ARGV[5] ~= '' and redis.call('HDEL', KEYS[2], 'p:' .. ARGV[5]) == 0 then
  if mode == 'u' then
    if ARGV[4] == 'i' then b = sub(b, amount) else b = add(b, amount) end
    redis.call('HSET', KEYS[1], 'b', b)
  end
  return b .. ' ' .. i .. ' ' .. o .. ' ' .. s
end
if ARGV[4] == 'i' then
  i = pos(sub(i, amount))
  if mode == '1' then b = add(b, amount) end
  redis.call('HSET', KEYS[1], 'b', b, 'i', i)
else
  o = pos(sub(o, amount))
  if mode == '1' then b = sub(b, amount) end
  redis.call('HSET', KEYS[1], 'b', b, 'o', o)
end
if not v[1] then redis.call('SADD', KEYS[3], ARGV[1]) end
track(KEYS[2], ARGV[4] .. ':' .. ARGV[1], amount, false)
return b .. ' ' .. i .. ' ' .. o .. ' ' .. s
""",
    # KEYS: balance hash, accounts set. ARGV: account, diff. Returns 'b i o s'.
    "adjust": r"""
local v = redis.call('HMGET', KEYS[1], 'b', 'i', 'o', 's')
local b = add(v[1] or '0', ARGV[2])
redis.call('HSET', KEYS[1], 'b', b)
if not v[1] then redis.call('SADD', KEYS[2], ARGV[1]) end
return b .. ' ' .. (v[2] or '0') .. ' ' .. (v[3] or '0') .. ' ' .. (v[4] or '0')
""",
    # KEYS: outbox hash, outbox order zset, outbox seq, balance hash, accounts set.
    # ARGV: settlement id, account, amount. Returns 1 if added, 0 if known.
    "add_settlement": r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
local v = redis.call('HMGET', KEYS[4], 'b', 's')
if not v[1] then redis.call('HSET', KEYS[4], 'b', '0'); redis.call('SADD', KEYS[5], ARGV[2]) end
redis.call('HSET', KEYS[4], 's', add(v[2] or '0', ARGV[3]))
return 1
""",
    # KEYS: outbox hash, outbox order zset. ARGV: settlement id, balance key prefix.
    # Returns 1 if it was pending, 0 if unknown.
    "complete_settlement": r"""
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e then return 0 end
local c = string.find(e, ':', 1, true)
local amount, account = string.sub(e, 1, c - 1), string.sub(e, c + 1)
local key = ARGV[2] .. account
local v = redis.call('HMGET', key, 'b', 's')
redis.call('HSET', key, 'b', add(v[1] or '0', amount), 's', pos(sub(v[2] or '0', amount)))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
""",
    # KEYS: outbox hash, outbox order zset. Returns {id, amount, account, ...} oldest first.
    "pending_settlements": r"""
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for n = 1, #ids do
  local e = redis.call('HGET', KEYS[1], ids[n])
  if e then
    local c = string.find(e, ':', 1, true)
    out[#out + 1] = ids[n]
    out[#out + 1] = string.sub(e, 1, c - 1)
    out[#out + 1] = string.sub(e, c + 1)
  end
end
return out
""",
    # KEYS: accounts set. ARGV: balance key prefix. Returns {account, b, i, o, s, ...}.
    "all_balances": r"""
local accounts = redis.call('SMEMBERS', KEYS[1])
local out = {}
for n = 1, #accounts do
  local v = redis.call('HMGET', ARGV[1] .. accounts[n], 'b', 'i', 'o', 's')
  out[#out + 1] = accounts[n]
  for k = 1, 4 do out[#out + 1] = v[k] or '0' end
end
return out
""",
    # KEYS: instance hash. ARGV: balance key prefix. Releases this instance's incoming
    # reservations, commits its outgoing ones. Returns {account, b, i, o, s, ...} changed.
    "recover": r"""
local held = redis.call('HGETALL', KEYS[1])
local order, seen = {}, {}
for n = 1, #held, 2 do
  local f, amount = held[n], held[n + 1]
  local kind, account = string.sub(f, 1, 1), string.sub(f, 3)
  local key = ARGV[1] .. account
  if kind == 'i' then
    local i = redis.call('HGET', key, 'i') or '0'
    redis.call('HSET', key, 'i', pos(sub(i, amount)))
  elseif kind == 'o' then
    local v = redis.call('HMGET', key, 'b', 'o')
    redis.call('HSET', key, 'b', sub(v[1] or '0', amount), 'o', pos(sub(v[2] or '0', amount)))
  end
  if kind ~= 'p' and not seen[account] then seen[account] = true; order[#order + 1] = account end
end
redis.call('DEL', KEYS[1])
local out = {}
for n = 1, #order do
  local v = redis.call('HMGET', ARGV[1] .. order[n], 'b', 'i', 'o', 's')
  out[#out + 1] = order[n]
  for k = 1, 4 do out[#out + 1] = v[k] or '0' end
end
return out
""",
}

#: One-letter codes of the operations the ``batch`` script runs (all three take KEYS: balance
#: hash, instance hash, accounts set; ARGV: the account, then up to four values).
_BATCHED = {"I": "reserve_incoming", "O": "reserve_outgoing", "S": "settle"}

# KEYS: instance hash, accounts set, then each operation's balance hash. ARGV[1]: the balance
# key prefix (the account is the rest of its key); ARGV[2]: per operation five words, its code
# and its own ARGV after the account, padded to four ('_' for ''), all separated by spaces
# (amounts, limits, modes and reservation ids have none: one string to send and parse instead
# of hundreds of arguments). Returns each one's reply, in order, joined by ',' in one string
# (a reply of many bulk strings costs the client a reactor turn each).
_LUA_BATCH = "local ops = {}\n" + "".join(
    f"ops['{code}'] = function(KEYS, ARGV)\n{SCRIPTS[name]}end\n" for code, name in _BATCHED.items()) + r"""
local w = {}
for word in string.gmatch(ARGV[2], '%S+') do
  if word == '_' then w[#w + 1] = '' else w[#w + 1] = word end
end
local skip, out = #ARGV[1] + 1, {}
for n = 0, #w / 5 - 1 do
  local a, key = n * 5, KEYS[n + 3]
  out[n + 1] = tostring(ops[w[a + 1]]({key, KEYS[1], KEYS[2]},
                                      {string.sub(key, skip), w[a + 2], w[a + 3], w[a + 4], w[a + 5]}))
end
return table.concat(out, ',')
"""

_BODIES = {name: (LUA_BIGINT + _LUA_TRACK + source).encode()
           for name, source in {**SCRIPTS, "batch": _LUA_BATCH}.items()}
_SHAS = {name: hashlib.sha1(body).hexdigest() for name, body in _BODIES.items()}


def _state(values) -> BalanceState:
    return BalanceState(int(values[0]), int(values[1]), int(values[2]), int(values[3]))


def _joined_state(reply: str) -> BalanceState:
    b, i, o, s = reply.split(" ")
    return BalanceState(int(b), int(i), int(o), int(s))


def _states(flat) -> dict[str, BalanceState]:
    return {flat[n]: _state(flat[n + 1:n + 5]) for n in range(0, len(flat), 5)}


def _limit(limit: Optional[int]) -> str:
    return "" if limit is None else str(limit)


@implementer(IStore)
class RedisStore:
    """A store in Redis, safe to share between connector processes. See the module docstring
    for keys, amounts and durability, and :class:`ilptx.interfaces.IStore` for each method.

    :param host: Redis host.
    :param port: Redis TCP port.
    :param db: database number (``SELECT``).
    :param password: ``AUTH`` password, or ``None``.
    :param prefix: prepended to every key, so several connectors (or tests) can share a db.
    :param instance: this connector's name among those sharing the store (for ``recover``).
    :param connect_timeout: seconds :meth:`open` waits for the first answer.
    :param reactor: for the connect timeout and the retries that resolve a failed operation
        (default: the global reactor); ``txredisapi`` itself always uses the global reactor.
    :param retry_delay: seconds between attempts to resolve a reservation after a failure.
    """

    name = "redis"

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, db: int = 0,
                 password: Optional[str] = None, prefix: str = "ilptx:", instance: str = "default",
                 connect_timeout: float = 10.0, *, reactor=None, retry_delay: float = 1.0) -> None:
        self.host, self.port, self.db, self.password = host, port, db, password
        self.prefix = prefix
        self.instance = instance
        self.connect_timeout = connect_timeout
        self._reactor = reactor
        self._redis = None
        self._log = Logger(namespace="ilptx.stores.redis")
        self._balance_prefix = prefix + "b:"
        self._accounts = prefix + "accounts"
        self._held = prefix + "r:" + instance
        self._outbox = prefix + "outbox"
        self._outbox_order = prefix + "outbox:order"
        self._outbox_seq = prefix + "outbox:seq"
        self._kv = prefix + "kv"
        self.retry_delay = retry_delay
        #: (direction, account, amount) -> ids of this store's reservations not yet settled
        self._reservations: dict[tuple[str, str, int], list[str]] = {}
        self._rid_prefix = os.urandom(6).hex() + "-"
        self._rids = itertools.count()
        #: per-packet operations waiting for the command in flight: (code, balance key, args, Deferred)
        self._queue: list[tuple[str, str, tuple, Deferred]] = []
        self._in_flight = 0
        #: timers of failed operations being resolved -> what they resolve (for close())
        self._resolving: dict = {}

    # --- lifecycle ---------------------------------------------------------------------

    @inlineCallbacks
    def open(self):
        """Connect, load the scripts and check the server's persistence settings.

        :returns: ``Deferred[None]``; errbacks with :class:`ConnectionError` when Redis does
            not answer (unreachable, or refusing our ``AUTH``/``SELECT``) within
            ``connect_timeout`` seconds.
        """
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        self._redis = txredisapi.lazyConnection(
            self.host, self.port, dbid=self.db, password=self.password, reconnect=True,
            charset="utf-8", convertNumbers=False)
        try:
            yield self._redis.execute_command("PING").addTimeout(self.connect_timeout, reactor)
        except Exception as e:
            redis, self._redis = self._redis, None
            yield redis.disconnect()
            raise ConnectionError(f"redis store: no answer from {self.host}:{self.port} db {self.db} "
                                  f"within {self.connect_timeout:g} s (is it running, and are the "
                                  f"password and db right?)") from e
        for name, body in _BODIES.items():
            sha = yield self._redis.execute_command("SCRIPT", "LOAD", body)
            if sha != _SHAS[name]:  # pragma: no cover - Redis hashes the bytes we send
                raise RuntimeError(f"redis store: script {name} loaded as {sha}, expected {_SHAS[name]}")
        yield self._check_persistence()

    @inlineCallbacks
    def _check_persistence(self):
        try:
            appendonly = yield self._redis.execute_command("CONFIG", "GET", "appendonly")
            appendfsync = yield self._redis.execute_command("CONFIG", "GET", "appendfsync")
        except Exception as e:  # CONFIG is often disabled on managed Redis
            self._log.info("redis store: cannot read the persistence settings of {host}:{port} ({error}); "
                           "committed changes are as durable as that server makes them",
                           host=self.host, port=self.port, error=e)
            return
        settings = dict(zip(appendonly[::2], appendonly[1::2]))
        settings.update(zip(appendfsync[::2], appendfsync[1::2]))
        if settings.get("appendonly") != "yes" or settings.get("appendfsync") != "always":
            self._log.warn("redis store: {host}:{port} runs with appendonly={appendonly} "
                           "appendfsync={appendfsync}; a crash of the Redis host can lose changes "
                           "the connector has committed (set appendonly yes, appendfsync always)",
                           host=self.host, port=self.port, appendonly=settings.get("appendonly"),
                           appendfsync=settings.get("appendfsync"))

    def close(self) -> Deferred:
        """Close the connection; reservations still being resolved are logged and left to the
        next start's :meth:`recover`. :returns: ``Deferred[None]``."""
        self._flush()
        for timer, what in list(self._resolving.items()):
            timer.cancel()
            self._log.error("redis store: closing with the reservation {what} unresolved; the next "
                            "start's recover() settles it", what=what)
        self._resolving.clear()
        redis, self._redis = self._redis, None
        if redis is None:
            return succeed(None)
        return redis.disconnect()

    # --- scripts -------------------------------------------------------------------------

    def _run(self, name: str, keys, args) -> Deferred:
        """Script ``name``, after whatever per-packet operations are queued."""
        self._flush()
        return self._evalsha(name, keys, args)

    def _command(self, *args) -> Deferred:
        """A plain command, after whatever per-packet operations are queued."""
        self._flush()
        return self._redis.execute_command(*args)

    def _evalsha(self, name: str, keys, args) -> Deferred:
        d = self._redis.execute_command("EVALSHA", _SHAS[name], len(keys), *keys, *args)
        d.addErrback(self._noscript, name, keys, args)
        return d

    def _batched(self, code: str, account_id: str, args: tuple) -> Deferred:
        """A per-packet operation (:data:`_BATCHED` ``code``, its ARGV after the account): sent
        now if no command is in flight, else queued for the next batch.

        :returns: ``Deferred`` of its script's reply (``int`` for a reservation, ``str`` for a settle).
        """
        d = Deferred()
        if self._in_flight:
            self._queue.append((code, account_id, args, d))
        else:
            self._send([(code, account_id, args, d)])
        return d

    def _flush(self) -> None:
        if self._queue:
            ops, self._queue = self._queue, []
            self._send(ops)

    def _send(self, ops: list) -> None:
        self._in_flight += 1
        balance = self._balance_prefix
        if len(ops) == 1:
            code, account_id, args, _ = ops[0]
            sent = self._evalsha(_BATCHED[code], (balance + account_id, self._held, self._accounts),
                                 (account_id, *args))
        else:
            keys, words = [self._held, self._accounts], []
            for code, account_id, args, _ in ops:
                keys.append(balance + account_id)
                words.append(code)
                words.extend(arg or "_" for arg in args)
                if len(args) == 3:
                    words.append("_")
            sent = self._evalsha("batch", keys, (balance, " ".join(words)))
        sent.addCallbacks(self._answered, self._failed, (ops,), None, (ops,))

    def _answered(self, reply, ops: list) -> None:
        # The callbacks run while this command still counts as in flight, so what they
        # start (the next middleware's reservation, ...) is queued and goes out as one batch.
        if len(ops) == 1:
            ops[0][3].callback(reply)
        else:
            replies = reply.split(",")
            if len(replies) != len(ops):  # pragma: no cover - the script answers each one
                error = RuntimeError(f"redis store: a batch of {len(ops)} answered {reply!r}")
                for op in ops:
                    op[3].errback(error)
            else:
                for n, op in enumerate(ops):
                    op[3].callback(replies[n] if op[0] == "S" else int(replies[n]))
        self._in_flight -= 1
        if not self._in_flight:
            self._flush()

    def _failed(self, failure, ops: list) -> None:
        for op in ops:
            op[3].errback(failure)
        self._in_flight -= 1
        if not self._in_flight:
            self._flush()

    def _noscript(self, failure, name: str, keys, args):
        if failure.check(txredisapi.ResponseError) and str(failure.value).startswith("NOSCRIPT"):
            return self._redis.execute_command("EVAL", _BODIES[name], len(keys), *keys, *args)
        return failure

    # --- balances ------------------------------------------------------------------------

    def reserve_incoming(self, account_id: str, amount: int, maximum: Optional[int]) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.reserve_incoming` (one script; after a failure
        the reservation is resolved: see "When a command fails")."""
        return self._reserve("i", account_id, amount, maximum)

    def reserve_outgoing(self, account_id: str, amount: int, minimum: Optional[int]) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.reserve_outgoing` (one script; after a failure
        the reservation is released, so it is never booked as paid)."""
        return self._reserve("o", account_id, amount, minimum)

    def settle_incoming(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.settle_incoming` (one script; after a failure
        the reservation is released and the sender not charged)."""
        return self._settle("i", account_id, amount, fulfilled)

    def settle_outgoing(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.settle_outgoing` (one script; after a failure a
        commit is retried until it is made, a release likewise)."""
        return self._settle("o", account_id, amount, fulfilled)

    def _reserve(self, direction: str, account_id: str, amount: int, limit: Optional[int]) -> Deferred:
        rid = self._rid_prefix + str(next(self._rids))

        def reserved(ok) -> bool:
            if ok:
                self._reservations.setdefault((direction, account_id, amount), []).append(rid)
            return bool(ok)

        def failed(failure):
            self._resolve(direction, account_id, amount, "0", rid, failure)
            return failure

        return self._batched("I" if direction == "i" else "O", account_id,
                             (str(amount), _limit(limit), rid)).addCallbacks(reserved, failed)

    def _settle(self, direction: str, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        key = (direction, account_id, amount)
        rids = self._reservations.get(key)
        rid = rids.pop() if rids else ""  # reservations of one amount are interchangeable
        if rids == []:
            del self._reservations[key]

        def failed(failure):
            if rid:  # the next hop was paid: commit; otherwise leave the balance as it was
                mode = ("1" if direction == "o" else "u") if fulfilled else "0"
                self._resolve(direction, account_id, amount, mode, rid, failure)
            return failure

        return self._settle_script(direction, account_id, amount, "1" if fulfilled else "0", rid).addCallbacks(
            _joined_state, failed)

    def _settle_script(self, direction: str, account_id: str, amount: int, mode: str, rid: str) -> Deferred:
        return self._batched("S", account_id, (str(amount), mode, direction, rid))

    def _resolve(self, direction: str, account_id: str, amount: int, mode: str, rid: str, failure) -> None:
        """Settle reservation ``rid`` with ``mode`` once Redis answers, retrying every
        ``retry_delay`` seconds (the script is idempotent for one id)."""
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        what = f"{'incoming' if direction == 'i' else 'outgoing'} {amount} of {account_id} ({rid})"
        self._log.warn("redis store: {what} failed ({error}); resolving it ({mode}) in {delay} s",
                       what=what, error=failure.getErrorMessage(), mode=mode, delay=self.retry_delay)

        def attempt() -> None:
            self._resolving.pop(timer[0], None)
            if self._redis is None:
                return
            self._settle_script(direction, account_id, amount, mode, rid).addCallbacks(resolved, again)

        def resolved(_) -> None:
            self._log.info("redis store: {what} resolved ({mode})", what=what, mode=mode)

        def again(failure) -> None:
            self._log.warn("redis store: resolving {what} failed ({error}); retrying in {delay} s",
                           what=what, error=failure.getErrorMessage(), delay=self.retry_delay)
            schedule()

        def schedule() -> None:
            timer[0] = reactor.callLater(self.retry_delay, attempt)
            self._resolving[timer[0]] = what

        timer = [None]
        schedule()

    def adjust(self, account_id: str, amount_diff: int) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.adjust`."""
        return self._run("adjust", (self._balance_prefix + account_id, self._accounts),
                         (account_id, str(amount_diff))).addCallback(_joined_state)

    def add_settlement(self, settlement_id: str, account_id: str, amount: int) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.add_settlement`."""
        return self._run("add_settlement", (self._outbox, self._outbox_order, self._outbox_seq,
                                            self._balance_prefix + account_id, self._accounts),
                         (settlement_id, account_id, str(amount))).addCallback(lambda _: None)

    def complete_settlement(self, settlement_id: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.complete_settlement`."""
        return self._run("complete_settlement", (self._outbox, self._outbox_order),
                         (settlement_id, self._balance_prefix)).addCallback(bool)

    def pending_settlements(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.pending_settlements`."""
        def rows(flat):
            return [(flat[n], flat[n + 2], int(flat[n + 1])) for n in range(0, len(flat), 3)]

        return self._run("pending_settlements", (self._outbox, self._outbox_order), ()).addCallback(rows)

    def get_balance(self, account_id: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.get_balance` (one ``HMGET``)."""
        def state(values):
            return BalanceState(*(int(v) if v is not None else 0 for v in values))

        return self._command("HMGET", self._balance_prefix + account_id,
                                           "b", "i", "o", "s").addCallback(state)

    def all_balances(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.all_balances` (an atomic snapshot)."""
        return self._run("all_balances", (self._accounts,), (self._balance_prefix,)).addCallback(_states)

    def recover(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.recover`. Only the reservations recorded for this
        store's ``instance`` are released (incoming) or committed (outgoing)."""
        return self._run("recover", (self._held,), (self._balance_prefix,)).addCallback(_states)

    # --- plugin state / runtime accounts ---------------------------------------------------

    def get(self, key: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.get`."""
        return self._command("HGET", self._kv, key)

    def put(self, key: str, value: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.put`."""
        if not isinstance(value, str):
            return fail(TypeError(f"store values are str, not {type(value).__name__}"))
        return self._command("HSET", self._kv, key, value).addCallback(lambda _: None)

    def delete(self, key: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.delete`."""
        return self._command("HDEL", self._kv, key).addCallback(lambda _: None)

    def keys(self, prefix: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.keys` (``HKEYS`` filtered here, sorted)."""
        return self._command("HKEYS", self._kv).addCallback(
            lambda keys: sorted(k for k in keys if k.startswith(prefix)))

    # --- for ilptx.settlement ----------------------------------------------------------------

    @property
    def client(self):
        """The ``txredisapi`` connection while the store is open (``None`` before :meth:`open`
        and after :meth:`close`), for state kept under :attr:`prefix` in keys of its own
        (:class:`ilptx.settlement.state.RedisSettlementState`); never for the store's keys."""
        return self._redis
