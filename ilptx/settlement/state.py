"""Settlement state kept in the connector's store: one backend per kind of store.

:func:`make_settlement_state` picks the backend for the store it is given (``store.name``); how
each makes one operation atomic:

* ``memory`` → :class:`MemorySettlementState`: plain Python on the reactor thread (one state per
  store object; gone when the process exits).
* ``sqlite`` → :class:`SqliteSettlementState`: one SQLite transaction per operation, on the
  store's worker thread (so ordered with its group commits), in tables of its own
  (:data:`SQLITE_SCHEMA`, ``settlement_*``).
* ``redis`` → :class:`RedisSettlementState`: one Lua script per operation (``EVALSHA``; ``EVAL``
  after ``NOSCRIPT``), on keys of its own under the store's prefix; atomic across every process
  sharing the Redis.

The memory and SQLite backends run the rules of :mod:`ilptx.settlement.model` once each
(``_do_*`` below) over a row accessor; the Redis scripts implement the same rules in Lua, and
hand the state they saw back to those rules whenever they refuse, so that every backend raises
the same exception with the same message. Amounts are decimal text in SQLite and Redis, so any
``int`` round-trips.

Redis keys (``P`` = the store's prefix + ``settle:``):

=========================  ====================================================================
``P tls:<log>``            hash ``if``, ``ifp``, ``of``, ``ofp`` (the four sums), ``max``, ``min``
``P tlt:<log>``            hash transfer id -> JSON ``{"i": "1"|"0", "a", "d", "s": "p"|"f"|"c", "f"}``
``P tlp:<log>``            set of the ids in state prepared
``P max``                  hash tracker key -> JSON ``{"v": "<value>", "d": data | null}``
``P left``                 hash accumulator key -> leftover (decimal)
=========================  ====================================================================

What this module does not do: prune old transfers (every id is kept, so a replay is always
recognised); relate these logs to the connector's balances (the framework built on it does).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import weakref
from dataclasses import replace
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail, gatherResults, maybeDeferred, succeed
from zope.interface import implementer

from ilptx.settlement.interfaces import ISettlementState
from ilptx.settlement.model import (
    CANCELLED, FULFILLED, PREPARED, MaxEntry, SettlementStateError, Transfer, TransferLogSums, apply_cancel,
    apply_fulfill, apply_prepare, apply_set_if_max, split_leftover,
)

__all__ = ["make_settlement_state", "MemorySettlementState", "SqliteSettlementState", "RedisSettlementState",
           "SQLITE_SCHEMA", "REDIS_SCRIPTS"]

_NO_SUMS = TransferLogSums()
_NO_MAX = MaxEntry(0, None)


# --- the operations, once, over a row accessor (memory and SQLite) ---------------------------------

def _do_prepare(rows, log: str, transfer: Transfer) -> bool:
    new = apply_prepare(log, rows.sums(log), rows.transfer(log, transfer.id), transfer)
    if new is None:
        return False
    rows.put_sums(log, new)
    rows.put_transfer(log, transfer)
    return True


def _do_finish(rows, apply: Callable, log: str, transfer_id: str, *args: Any) -> bool:
    result = apply(log, rows.sums(log), rows.transfer(log, transfer_id), transfer_id, *args)
    if result is None:
        return False
    rows.put_sums(log, result[0])
    rows.put_transfer(log, result[1])
    return True


def _do_set_limit(rows, log: str, which: str, value: Optional[int]) -> None:
    rows.put_sums(log, replace(rows.sums(log), **{which: value}))


def _do_set_if_max(rows, key: str, value: int, data: Optional[str]) -> MaxEntry:
    new, returned = apply_set_if_max(rows.max_entry(key), value, data)
    if new is not None:
        rows.put_max_entry(key, new)
    return returned


def _do_divide(rows, key: str, amount: int, digits: int) -> tuple[int, int]:
    converted, leftover = split_leftover(rows.leftover(key) + amount, digits)
    rows.put_leftover(key, leftover)
    return converted, leftover


class _RowBackend:
    """ISettlementState over ``self._transact(f, *args)``, which runs ``f(rows, *args)`` as one
    atomic step and returns a Deferred of its result."""

    def _transact(self, f: Callable, *args: Any) -> Deferred:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, log: str, transfer: Transfer) -> Deferred:
        return self._transact(_do_prepare, log, transfer)

    def fulfill(self, log: str, transfer_id: str, fulfillment: str) -> Deferred:
        return self._transact(_do_finish, apply_fulfill, log, transfer_id, fulfillment)

    def cancel(self, log: str, transfer_id: str) -> Deferred:
        return self._transact(_do_finish, apply_cancel, log, transfer_id)

    def get_transfer(self, log: str, transfer_id: str) -> Deferred:
        return self._transact(lambda rows: rows.transfer(log, transfer_id))

    def prepared_transfers(self, log: str) -> Deferred:
        return self._transact(lambda rows: rows.prepared(log))

    def get_sums(self, log: str) -> Deferred:
        return self._transact(lambda rows: rows.sums(log))

    def set_limit(self, log: str, which: str, value: Optional[int]) -> Deferred:
        return self._transact(_do_set_limit, log, which, value)

    def set_if_max(self, key: str, value: int, data: Optional[str]) -> Deferred:
        return self._transact(_do_set_if_max, key, value, data)

    def get_max(self, key: str) -> Deferred:
        return self._transact(lambda rows: rows.max_entry(key))

    def divide_with_leftover(self, key: str, amount: int, digits: int) -> Deferred:
        return self._transact(_do_divide, key, amount, digits)

    def get_leftover(self, key: str) -> Deferred:
        return self._transact(lambda rows: rows.leftover(key))


# --- memory --------------------------------------------------------------------------------------------

class _MemoryRows:
    def __init__(self) -> None:
        self._sums: dict[str, TransferLogSums] = {}
        self._transfers: dict[str, dict[str, Transfer]] = {}
        self._maxima: dict[str, MaxEntry] = {}
        self._leftovers: dict[str, int] = {}

    def sums(self, log: str) -> TransferLogSums:
        return self._sums.get(log, _NO_SUMS)

    def put_sums(self, log: str, sums: TransferLogSums) -> None:
        self._sums[log] = sums

    def transfer(self, log: str, transfer_id: str) -> Optional[Transfer]:
        return self._transfers.get(log, {}).get(transfer_id)

    def put_transfer(self, log: str, transfer: Transfer) -> None:
        self._transfers.setdefault(log, {})[transfer.id] = transfer

    def prepared(self, log: str) -> list[Transfer]:
        return sorted((t for t in self._transfers.get(log, {}).values() if t.state == PREPARED), key=_by_id)

    def max_entry(self, key: str) -> MaxEntry:
        return self._maxima.get(key, _NO_MAX)

    def put_max_entry(self, key: str, entry: MaxEntry) -> None:
        self._maxima[key] = entry

    def leftover(self, key: str) -> int:
        return self._leftovers.get(key, 0)

    def put_leftover(self, key: str, leftover: int) -> None:
        self._leftovers[key] = leftover


def _by_id(transfer: Transfer) -> str:
    return transfer.id


@implementer(ISettlementState)
class MemorySettlementState(_RowBackend):
    """Settlement state in this process, for ``store: memory``: every Deferred has fired when
    returned. Get it with :func:`make_settlement_state` (one per store object, so every
    component of a connector sees the same state). See :class:`ISettlementState`."""

    def __init__(self) -> None:
        self._rows = _MemoryRows()

    def open(self) -> Deferred:
        return succeed(None)

    def _transact(self, f: Callable, *args: Any) -> Deferred:
        return maybeDeferred(f, self._rows, *args)


# --- SQLite --------------------------------------------------------------------------------------------

#: The tables of :class:`SqliteSettlementState` (amounts as decimal text, as the store does).
SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settlement_logs (
        log TEXT PRIMARY KEY NOT NULL,
        incoming_fulfilled TEXT NOT NULL,
        incoming_fulfilled_and_prepared TEXT NOT NULL,
        outgoing_fulfilled TEXT NOT NULL,
        outgoing_fulfilled_and_prepared TEXT NOT NULL,
        maximum TEXT,
        minimum TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS settlement_transfers (
        log TEXT NOT NULL,
        id TEXT NOT NULL,
        incoming INTEGER NOT NULL,
        amount TEXT NOT NULL,
        data TEXT NOT NULL,
        state TEXT NOT NULL,
        fulfillment TEXT,
        PRIMARY KEY (log, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS settlement_transfers_state ON settlement_transfers (log, state)",
    """CREATE TABLE IF NOT EXISTS settlement_maxima (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        data TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS settlement_leftovers (
        key TEXT PRIMARY KEY NOT NULL,
        amount TEXT NOT NULL
    ) WITHOUT ROWID""",
)

_TRANSFER_COLUMNS = "id, incoming, amount, data, state, fulfillment"


def _optional_int(text: Optional[str]) -> Optional[int]:
    return None if text is None else int(text)


def _optional_text(value: Optional[int]) -> Optional[str]:
    return None if value is None else str(value)


def _sums(values) -> TransferLogSums:
    """The sums from six texts (IF, IFP, OF, OFP, maximum, minimum; ``None``/``''``: 0 or no limit)."""
    incoming, incoming_all, outgoing, outgoing_all, maximum, minimum = values
    return TransferLogSums(int(incoming or 0), int(incoming_all or 0), int(outgoing or 0), int(outgoing_all or 0),
                           _optional_int(maximum or None), _optional_int(minimum or None))


def _transfer_row(row: tuple) -> Transfer:
    transfer_id, incoming, amount, data, state, fulfillment = row
    return Transfer(transfer_id, bool(incoming), int(amount), data, state, fulfillment)


class _SqliteRows:
    """Rows of the ``settlement_*`` tables, read and written on one connection (worker thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _one(self, sql: str, args: tuple) -> Optional[tuple]:
        return self.conn.execute(sql, args).fetchone()

    def sums(self, log: str) -> TransferLogSums:
        row = self._one("SELECT incoming_fulfilled, incoming_fulfilled_and_prepared, outgoing_fulfilled, "
                        "outgoing_fulfilled_and_prepared, maximum, minimum FROM settlement_logs WHERE log = ?", (log,))
        return _NO_SUMS if row is None else _sums(row)

    def put_sums(self, log: str, s: TransferLogSums) -> None:
        self.conn.execute("INSERT OR REPLACE INTO settlement_logs VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (log, str(s.incoming_fulfilled), str(s.incoming_fulfilled_and_prepared),
                           str(s.outgoing_fulfilled), str(s.outgoing_fulfilled_and_prepared),
                           _optional_text(s.maximum), _optional_text(s.minimum)))

    def transfer(self, log: str, transfer_id: str) -> Optional[Transfer]:
        row = self._one(f"SELECT {_TRANSFER_COLUMNS} FROM settlement_transfers WHERE log = ? AND id = ?",
                        (log, transfer_id))
        return None if row is None else _transfer_row(row)

    def put_transfer(self, log: str, t: Transfer) -> None:
        self.conn.execute("INSERT OR REPLACE INTO settlement_transfers VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (log, t.id, int(t.incoming), str(t.amount), t.data, t.state, t.fulfillment))

    def prepared(self, log: str) -> list[Transfer]:
        rows = self.conn.execute(f"SELECT {_TRANSFER_COLUMNS} FROM settlement_transfers WHERE log = ? AND state = ? "
                                 "ORDER BY id", (log, PREPARED)).fetchall()
        return [_transfer_row(row) for row in rows]

    def max_entry(self, key: str) -> MaxEntry:
        row = self._one("SELECT value, data FROM settlement_maxima WHERE key = ?", (key,))
        return _NO_MAX if row is None else MaxEntry(int(row[0]), row[1])

    def put_max_entry(self, key: str, entry: MaxEntry) -> None:
        self.conn.execute("INSERT OR REPLACE INTO settlement_maxima VALUES (?, ?, ?)",
                          (key, str(entry.value), entry.data))

    def leftover(self, key: str) -> int:
        row = self._one("SELECT amount FROM settlement_leftovers WHERE key = ?", (key,))
        return 0 if row is None else int(row[0])

    def put_leftover(self, key: str, leftover: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO settlement_leftovers VALUES (?, ?)", (key, str(leftover)))


def _in_transaction(conn: sqlite3.Connection, f: Callable, args: tuple) -> Any:
    """Run ``f(rows, *args)`` in one transaction (rolled back whole if anything raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = f(_SqliteRows(conn), *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _create_tables(rows: _SqliteRows) -> None:
    for statement in SQLITE_SCHEMA:
        rows.conn.execute(statement)


@implementer(ISettlementState)
class SqliteSettlementState(_RowBackend):
    """Settlement state in the ``settlement_*`` tables of a :class:`ilptx.stores.sqlite.SqliteStore`'s
    file. Each operation is one transaction on the store's connection and worker thread
    (:meth:`~ilptx.stores.sqlite.SqliteStore.run_with_connection`); its Deferred fires once it
    has committed (durable as the store's ``synchronous`` makes it). Reads go to the file.

    :param store: an open ``SqliteStore``; operations errback with ``StoreClosedError`` when it
        is not open. See :class:`ISettlementState`.
    """

    def __init__(self, store) -> None:
        self._store = store

    def open(self) -> Deferred:
        """Create the tables if missing. :returns: ``Deferred[None]``."""
        return self._transact(_create_tables)

    def _transact(self, f: Callable, *args: Any) -> Deferred:
        return self._store.run_with_connection(_in_transaction, f, args)


# --- Redis ---------------------------------------------------------------------------------------------

#: Lua, by name (``LUA_BIGINT`` of :mod:`ilptx.stores.redis` is prepended at load). Every
#: script that can refuse returns ``{'ok'}`` or ``{'no', <what it saw>...}``.
REDIS_SCRIPTS: dict[str, str] = {
    # KEYS: sums, transfers, prepared ids. ARGV: id, incoming '1'/'0', amount, data, record JSON.
    # 'no' + if, ifp, of, ofp, max, min ('' = none) and the existing record ('' = none).
    "prepare": r"""
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'if', 'ifp', 'of', 'ofp', 'max', 'min')
local inf, ifp, of, ofp = v[1] or '0', v[2] or '0', v[3] or '0', v[4] or '0'
local function refuse() return {'no', inf, ifp, of, ofp, v[5] or '', v[6] or '', raw or ''} end
if raw then return refuse() end
if ARGV[2] == '1' then
  local total = add(ifp, ARGV[3])
  if v[5] and cmp(sub(total, of), v[5]) > 0 then return refuse() end
  redis.call('HSET', KEYS[1], 'ifp', total)
else
  local total = add(ofp, ARGV[3])
  if v[6] and cmp(sub(inf, total), v[6]) < 0 then return refuse() end
  redis.call('HSET', KEYS[1], 'ofp', total)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
return {'ok'}
""",
    # KEYS: sums, transfers, prepared ids. ARGV: id, 'f' (fulfill) or 'c' (cancel), fulfillment.
    # 'no' + the record ('' = none) unless it was prepared.
    "finish": r"""
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {'no', ''} end
local t = cjson.decode(raw)
if t.s ~= 'p' then return {'no', raw} end
local field
if ARGV[2] == 'f' then
  field = 'of'
  if t.i == '1' then field = 'if' end
  redis.call('HSET', KEYS[1], field, add(redis.call('HGET', KEYS[1], field) or '0', t.a))
  t.f = ARGV[3]
else
  field = 'ofp'
  if t.i == '1' then field = 'ifp' end
  redis.call('HSET', KEYS[1], field, sub(redis.call('HGET', KEYS[1], field) or '0', t.a))
end
t.s = ARGV[2]
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(t))
redis.call('SREM', KEYS[3], ARGV[1])
return {'ok'}
""",
    # KEYS: transfers, prepared ids. Returns {id, record, ...}.
    "prepared": r"""
local ids = redis.call('SMEMBERS', KEYS[2])
local out = {}
for n = 1, #ids do
  out[#out + 1] = ids[n]
  out[#out + 1] = redis.call('HGET', KEYS[1], ids[n])
end
return out
""",
    # KEYS: maxima. ARGV: key, value, entry JSON. Returns the entry before ('' = none).
    "set_if_max": r"""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cmp(ARGV[2], cjson.decode(raw).v) <= 0 then return raw end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return raw or ''
""",
    # KEYS: leftovers. ARGV: key, amount, digits. Returns {converted, leftover}: divmod(leftover
    # + amount, 10**digits) on decimal strings (digits > 0).
    "divide": r"""
local total = add(redis.call('HGET', KEYS[1], ARGV[1]) or '0', ARGV[2])
local k = tonumber(ARGV[3])
local q, r = '0', total
if #total > k then
  q = string.sub(total, 1, #total - k)
  r = (string.gsub(string.sub(total, #total - k + 1), '^0+', ''))
  if r == '' then r = '0' end
end
if r == '0' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], r) end
return {q, r}
""",
}

_STATE_CODES = {PREPARED: "p", FULFILLED: "f", CANCELLED: "c"}
_STATES = {code: state for state, code in _STATE_CODES.items()}


def _transfer_json(transfer: Transfer) -> str:
    return json.dumps({"i": "1" if transfer.incoming else "0", "a": str(transfer.amount), "d": transfer.data,
                       "s": _STATE_CODES[transfer.state]})


def _transfer_from_json(transfer_id: str, raw: Optional[str]) -> Optional[Transfer]:
    if not raw:
        return None
    t = json.loads(raw)
    return Transfer(transfer_id, t["i"] == "1", int(t["a"]), t["d"], _STATES[t["s"]], t.get("f"))


def _max_from_json(raw: Optional[str]) -> MaxEntry:
    if not raw:
        return _NO_MAX
    entry = json.loads(raw)
    return MaxEntry(int(entry["v"]), entry["d"])


class _Disagreement(RuntimeError):
    """A Redis script refused what the Python rules accept (a bug; never expected)."""


def _refused(result: Any, what: str) -> bool:
    """The outcome of a rule re-applied to a script's refusal: ``False`` (a no-op) or raises."""
    if result is not None:
        raise _Disagreement(f"redis settlement state: the script refused {what} but the rules accept it")
    return False


@implementer(ISettlementState)
class RedisSettlementState:
    """Settlement state in the Redis of a :class:`ilptx.stores.redis.RedisStore`, under its
    prefix + ``settle:`` (see the module docstring for the keys). Every check-and-change is one
    Lua script, so any number of processes sharing the Redis may use the same logs and trackers.

    :param store: an open ``RedisStore`` (its :attr:`~ilptx.stores.redis.RedisStore.client`).
        See :class:`ISettlementState`.
    """

    def __init__(self, store) -> None:
        from ilptx.stores.redis import LUA_BIGINT

        self._store = store
        self._bodies = {name: (LUA_BIGINT + source).encode() for name, source in REDIS_SCRIPTS.items()}
        self._shas = {name: hashlib.sha1(body).hexdigest() for name, body in self._bodies.items()}
        base = store.prefix + "settle:"
        self._key = {"sums": base + "tls:", "transfers": base + "tlt:", "prepared": base + "tlp:"}
        self._maxima = base + "max"
        self._leftovers = base + "left"

    def _command(self, *args: Any) -> Deferred:
        client = self._store.client
        if client is None:
            return fail(SettlementStateError(f"redis settlement state: the store ({self._store.prefix}) is not open"))
        return client.execute_command(*args)

    def open(self) -> Deferred:
        """Load the scripts. :returns: ``Deferred[None]``."""
        loads = [self._command("SCRIPT", "LOAD", body) for body in self._bodies.values()]
        return gatherResults(loads, consumeErrors=True).addCallback(lambda _: None)

    def _run(self, name: str, keys: tuple, args: tuple) -> Deferred:
        d = self._command("EVALSHA", self._shas[name], len(keys), *keys, *args)

        def noscript(failure):  # the server restarted or ran SCRIPT FLUSH: EVAL caches it again
            if "NOSCRIPT" in str(failure.value):
                return self._command("EVAL", self._bodies[name], len(keys), *keys, *args)
            return failure

        return d.addErrback(noscript)

    def _log_keys(self, log: str) -> tuple:
        return self._key["sums"] + log, self._key["transfers"] + log, self._key["prepared"] + log

    def prepare(self, log: str, transfer: Transfer) -> Deferred:
        def done(reply):
            if reply[0] == "ok":
                return True
            sums = _sums(reply[1:7])
            return _refused(apply_prepare(log, sums, _transfer_from_json(transfer.id, reply[7]), transfer),
                            f"prepare {transfer}")

        args = (transfer.id, "1" if transfer.incoming else "0", str(transfer.amount), transfer.data,
                _transfer_json(transfer))
        return self._run("prepare", self._log_keys(log), args).addCallback(done)

    def _finish(self, log: str, transfer_id: str, fulfillment: Optional[str]) -> Deferred:
        """Fulfill (``fulfillment`` given) or cancel (``None``) in one script."""
        def done(reply):
            if reply[0] == "ok":
                return True
            existing = _transfer_from_json(transfer_id, reply[1])
            if fulfillment is None:
                return _refused(apply_cancel(log, _NO_SUMS, existing, transfer_id), f"cancel {transfer_id}")
            return _refused(apply_fulfill(log, _NO_SUMS, existing, transfer_id, fulfillment), f"fulfill {transfer_id}")

        args = (transfer_id, "c", "") if fulfillment is None else (transfer_id, "f", fulfillment)
        return self._run("finish", self._log_keys(log), args).addCallback(done)

    def fulfill(self, log: str, transfer_id: str, fulfillment: str) -> Deferred:
        return self._finish(log, transfer_id, fulfillment)

    def cancel(self, log: str, transfer_id: str) -> Deferred:
        return self._finish(log, transfer_id, None)

    def get_transfer(self, log: str, transfer_id: str) -> Deferred:
        return self._command("HGET", self._key["transfers"] + log, transfer_id).addCallback(
            lambda raw: _transfer_from_json(transfer_id, raw))

    def prepared_transfers(self, log: str) -> Deferred:
        def transfers(flat):
            return sorted((_transfer_from_json(flat[n], flat[n + 1]) for n in range(0, len(flat), 2)), key=_by_id)

        return self._run("prepared", self._log_keys(log)[1:], ()).addCallback(transfers)

    def get_sums(self, log: str) -> Deferred:
        return self._command("HMGET", self._key["sums"] + log, "if", "ifp", "of", "ofp", "max", "min"
                             ).addCallback(_sums)

    def set_limit(self, log: str, which: str, value: Optional[int]) -> Deferred:
        field = {"maximum": "max", "minimum": "min"}[which]
        if value is None:
            d = self._command("HDEL", self._key["sums"] + log, field)
        else:
            d = self._command("HSET", self._key["sums"] + log, field, str(value))
        return d.addCallback(lambda _: None)

    def set_if_max(self, key: str, value: int, data: Optional[str]) -> Deferred:
        entry = json.dumps({"v": str(value), "d": data})
        return self._run("set_if_max", (self._maxima,), (key, str(value), entry)).addCallback(
            lambda raw: apply_set_if_max(_max_from_json(raw), value, data)[1])

    def get_max(self, key: str) -> Deferred:
        return self._command("HGET", self._maxima, key).addCallback(_max_from_json)

    def divide_with_leftover(self, key: str, amount: int, digits: int) -> Deferred:
        return self._run("divide", (self._leftovers,), (key, str(amount), str(digits))).addCallback(
            lambda reply: (int(reply[0]), int(reply[1])))

    def get_leftover(self, key: str) -> Deferred:
        return self._command("HGET", self._leftovers, key).addCallback(lambda raw: int(raw or 0))


# --- choosing one ----------------------------------------------------------------------------------------

_memory_states: "weakref.WeakKeyDictionary[Any, MemorySettlementState]" = weakref.WeakKeyDictionary()


def make_settlement_state(store) -> ISettlementState:
    """The settlement state kept in ``store``, by ``store.name``; the caller calls ``open()``
    once the store is open.

    :param store: an :class:`ilptx.interfaces.IStore` of this package: ``memory`` (the same
        :class:`MemorySettlementState` for the same store object), ``sqlite`` or ``redis``.
    :returns: an :class:`ISettlementState` provider.
    :raises TypeError: a store of another kind (no backend for it).
    """
    name = getattr(store, "name", None)
    if name == "memory":
        state = _memory_states.get(store)
        if state is None:
            state = _memory_states[store] = MemorySettlementState()
        return state
    if name == "sqlite":
        return SqliteSettlementState(store)
    if name == "redis":
        return RedisSettlementState(store)
    raise TypeError(f"no settlement state for store {name!r} ({type(store).__name__}); "
                    "available: memory, sqlite, redis")
