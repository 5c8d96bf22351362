"""``store: sqlite``: balances, the settlement outbox and plugin state in one SQLite file.

Design
======

* **An in-memory mirror is the truth for this process.** :meth:`SqliteStore.open` loads every
  row; from then on every operation reads and changes the mirror synchronously, on the
  reactor thread, with the pure helpers of :mod:`ilptx.stores.memory`. A limit check and the
  change it guards therefore happen in one step that nothing can interleave with. Reads
  (``get_balance``, ``all_balances``, ``pending_settlements``, ``get``, ``keys``) never touch
  the file.
* **Group commit.** A change marks its rows dirty. The first change schedules a flush
  (``reactor.callLater(0, ...)``), so every change made in the same reactor turn lands in the
  same transaction. A flush writes every dirty row in ONE transaction on a single dedicated
  worker thread; at most one transaction is in flight, and changes made meanwhile go into the
  next one, started as soon as the current one is durable. Under load, batches grow by
  themselves: the more commits arrive per fsync, the more each transaction carries.
* **Which Deferreds wait.** Operations that *commit* money or state (``settle_*`` with
  ``fulfilled=True``, ``adjust``, ``add_settlement``, ``complete_settlement``, ``recover``,
  ``put``, ``delete``) return a Deferred that fires only after the transaction holding the
  change has committed, and so does ``reserve_outgoing`` (the connector forwards a Prepare
  only once its outgoing reservation is durable). ``reserve_incoming`` and released
  reservations (``settle_*`` with ``fulfilled=False``) are written the same way but their
  Deferreds have already fired when returned: the per-packet path pays no wait for them. A crash in the moment between
  such a call and the next commit (one fsync, typically well under 10 ms) loses it; see
  :meth:`SqliteStore.wait_durable` to wait anyway.
* **Durability.** The file is in WAL mode with ``synchronous=FULL`` by default: the WAL is
  fsynced at every commit, so a fired Deferred survives a process crash *and* an OS crash or
  power loss. (With WAL, ``NORMAL`` only syncs at checkpoints: a commit survives a process
  crash but may roll back on power loss. Group commit makes ``FULL`` cheap — one fsync per
  batch, not per operation — so it is the default; ``storeConfig.synchronous: NORMAL`` trades
  it for latency.)
* **One process per file.** The connection holds ``locking_mode=EXCLUSIVE`` from
  :meth:`~SqliteStore.open` to :meth:`~SqliteStore.close`: a second process (or a second
  store object) opening the same file fails at ``open()`` instead of silently diverging from
  the mirror. Share state between processes with ``store: redis``.
* **Big amounts.** Amounts are stored as decimal text (SQLite integers are 64-bit signed), so
  any Python ``int`` round-trips, e.g. ``2**64 - 1`` or ``-(2**70)``.

When a write fails
==================

A transaction that fails (disk full, I/O error) is rolled back whole, so the file keeps its
last durable state. Each operation that was waiting for it is then settled so that no money is
created or lost, neither in memory nor, later, on disk:

* **Decisions we can still take back are undone in the mirror** and their Deferreds errback
  with :class:`StoreWriteError` (ILP ``T00``, so the Prepare gets a T00 Reject):
  ``reserve_outgoing`` (the Prepare is not forwarded and its reservation is released, so it
  can neither leak nor be booked by the next ``recover()``), ``settle_incoming(fulfilled=True)``
  (the sender is not charged; it gets a Reject instead of the Fulfill), ``adjust``,
  ``add_settlement`` (the settlement is not started), ``put``, ``delete`` and ``recover``.
* **Facts are kept**: ``settle_outgoing(fulfilled=True)`` (the next hop has been paid) stays in
  the mirror and its Deferred fires with the new state anyway: its reservation is already
  durable (``reserve_outgoing`` waited for it), and ``recover()`` would book exactly this
  commit after a crash, so the books are right either way. ``complete_settlement`` (the money
  was sent) stays too, and errbacks so that the settlement manager reports it.
* Reservations and releases that nobody waits for (``reserve_incoming``, ``settle_*`` with
  ``fulfilled=False``) stay in the mirror.

The rows stay dirty and the store retries after ``retry_delay`` seconds (changes made
meanwhile join that transaction), writing the mirror's values, undone ones included. One case
only a successful write can resolve: an outgoing reservation released in memory (a Reject)
whose release never reaches the file before the process stops is booked by the next
``recover()`` as paid (its conservative rule); the store logs every failed write.

What this store does not do: share the file with another process; enforce limits on its own
(callers pass ``maximum``/``minimum``); expire reservations (see ``recover``).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.core.balances import BalanceState
from ilptx.errors import InternalError
from ilptx.interfaces import IStore
from ilptx.stores import StoreOpenError
from ilptx.stores.memory import apply_reserve_incoming, apply_reserve_outgoing, apply_settle

__all__ = ["SqliteStore", "StoreClosedError", "StoreWriteError", "ThreadExecutor", "SYNCHRONOUS_MODES",
           "SCHEMA_VERSION"]

#: ``PRAGMA user_version`` of the files this module writes.
SCHEMA_VERSION = 1

#: Values accepted for ``storeConfig.synchronous`` (``OFF`` is refused: it is not durable).
SYNCHRONOUS_MODES = ("FULL", "EXTRA", "NORMAL")

_ZERO = BalanceState()

#: ``undo`` of an operation whose change stays, and whose Deferred fires, when its write fails.
_KEEP = object()

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS balances (
        account_id TEXT PRIMARY KEY NOT NULL,
        balance TEXT NOT NULL,
        incoming_reserved TEXT NOT NULL,
        outgoing_reserved TEXT NOT NULL,
        settling TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY,
        settlement_id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        amount TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
)


class StoreClosedError(RuntimeError):
    """The store is not open (``open()`` not finished, or ``close()`` called)."""


class StoreWriteError(InternalError):
    """A group-commit transaction failed (see "When a write fails" in the module docstring).

    An :class:`~ilptx.errors.InternalError`: a Prepare it stops is rejected with ``T00``
    ("store write failed", a retry may work); the cause is logged, not sent to peers.

    :ivar cause: the :class:`twisted.python.failure.Failure` of the write.
    """

    def __init__(self, cause: Failure) -> None:
        super().__init__("store write failed")
        self.cause = cause

    def __str__(self) -> str:
        return f"sqlite store: write failed: {self.cause.getErrorMessage()}"


class ThreadExecutor:
    """Runs callables one at a time on a single dedicated thread (a ``ThreadPool(1, 1)``).

    The executor protocol :class:`SqliteStore` expects: ``start()``, ``run(f, *args) ->
    Deferred`` (fired on the reactor thread with ``f``'s result) and ``stop()``.

    :param reactor: used for ``callFromThread`` (results come back on the reactor thread).
    """

    def __init__(self, reactor) -> None:
        from twisted.python.threadpool import ThreadPool

        self._reactor = reactor
        self._pool = ThreadPool(1, 1, name="ilptx-sqlite")

    def start(self) -> None:
        """Start the thread."""
        self._pool.start()

    def run(self, f: Callable, *args: Any) -> Deferred:
        """:returns: ``Deferred`` with ``f(*args)``'s result, computed on the worker thread."""
        from twisted.internet.threads import deferToThreadPool

        return deferToThreadPool(self._reactor, self._pool, f, *args)

    def stop(self) -> None:
        """Stop the thread (after the job it runs, if any)."""
        self._pool.stop()


#: statvfs(3)'s read-only flag (PyPy 3.9's ``os`` does not name it; 1 on Linux and the BSDs)
_ST_RDONLY = getattr(os, "ST_RDONLY", 1)


def _open_problem(path: str, exc: sqlite3.Error) -> str:
    """What keeps ``path`` from opening, in words, followed by SQLite's own ``(sqlite: ...)``."""
    cause = f"(sqlite: {exc})"
    directory = os.path.dirname(os.path.abspath(path))
    text = str(exc)
    if os.path.isdir(path):
        return f"{path} is a directory {cause}"
    if not os.path.isdir(directory):
        return f"{path}: the directory {directory} does not exist {cause}"
    if "locked" in text:
        return (f"{path} is in use by another connector process {cause}; each SQLite file belongs to one "
                f"process (share state between processes with store: redis)")
    if "not a database" in text:
        return f"{path} is not an SQLite database {cause}"
    if os.statvfs(directory).f_flag & _ST_RDONLY:
        return f"{path} is on a read-only filesystem {cause}"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{path} is a read-only file {cause}"
    if not os.access(directory, os.W_OK):
        return f"{path}: the directory {directory} is not writable {cause}"
    return f"{path}: cannot open {cause}"


class _Database:
    """The sqlite3 connection. Every method runs on the executor's thread, never the reactor's."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.conn: Optional[sqlite3.Connection] = None

    def open_and_load(self) -> tuple:
        """Open (creating tables), take the exclusive lock, and read every row.

        :returns: ``(balances, outbox, kv)``: lists of rows ordered for loading.
        :raises StoreOpenError: it cannot be opened (see :func:`_open_problem`), e.g. another
            connection holds it.
        """
        try:
            return self._open_and_load()
        except sqlite3.Error as exc:
            raise StoreOpenError("storePath", _open_problem(self.path, exc)) from None

    def _open_and_load(self) -> tuple:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.1)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch {self.path} to WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, held until close
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreOpenError("storePath", f"{self.path} has schema version {version}; "
                                                  f"this ilptx knows up to {SCHEMA_VERSION}")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
            balances = conn.execute("SELECT account_id, balance, incoming_reserved, outgoing_reserved, "
                                    "settling FROM balances").fetchall()
            outbox = conn.execute("SELECT seq, settlement_id, account_id, amount FROM outbox "
                                  "ORDER BY seq").fetchall()
            kv = conn.execute("SELECT key, value FROM kv").fetchall()
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        return balances, outbox, kv

    def write(self, batch: tuple) -> None:
        """Write one batch in one transaction (rolled back whole on error)."""
        balances, outbox_put, outbox_del, kv_put, kv_del = batch
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if balances:
                conn.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?, ?)", balances)
            if outbox_del:
                conn.executemany("DELETE FROM outbox WHERE settlement_id = ?", outbox_del)
            if outbox_put:
                conn.executemany("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?)", outbox_put)
            if kv_del:
                conn.executemany("DELETE FROM kv WHERE key = ?", kv_del)
            if kv_put:
                conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", kv_put)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection (checkpoints the WAL into the main file)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@implementer(IStore)
class SqliteStore:
    """A durable single-process store in one SQLite file. See the module docstring for the
    design and :class:`ilptx.interfaces.IStore` for each method.

    :param path: the database file (created if missing); ``":memory:"`` works for tests.
    :param reactor: provides ``callLater`` (the flush schedule) and, for the default
        executor, ``callFromThread``. A ``twisted.internet.task.Clock`` works with a
        synchronous ``executor``.
    :param synchronous: ``"FULL"`` (default), ``"EXTRA"`` or ``"NORMAL"``: SQLite's
        ``PRAGMA synchronous`` (see the module docstring).
    :param executor: where the sqlite3 calls run; default a :class:`ThreadExecutor`.
    :param retry_delay: seconds before retrying a failed write.
    """

    name = "sqlite"

    def __init__(self, path: str, *, reactor=None, synchronous: str = "FULL", executor=None,
                 retry_delay: float = 1.0) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}")
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self._reactor = reactor
        self._executor = executor if executor is not None else ThreadExecutor(reactor)
        self._db = _Database(path, synchronous.upper())
        self._retry_delay = retry_delay
        self._log = Logger(namespace="ilptx.stores.sqlite")
        self._open = False
        self._started = False
        # the mirror
        self._balances: dict[str, BalanceState] = {}
        self._outbox: dict[str, tuple[int, str, int]] = {}  # id -> (seq, account_id, amount), oldest first
        self._data: dict[str, str] = {}
        self._next_seq = 1
        # what the next transaction writes
        self._dirty_balances: set[str] = set()
        self._dirty_outbox: set[str] = set()
        self._dirty_kv: set[str] = set()
        #: (Deferred, result, undo) per operation waiting for the next transaction; ``undo``
        #: is ``None`` (keep the change, errback), a callable (undo it, errback) or _KEEP.
        self._waiters: list[tuple[Deferred, Any, Any]] = []
        # the flush machine: at most one scheduled call and one transaction in flight
        self._scheduled = None
        self._inflight: Optional[Deferred] = None
        #: number of transactions committed since open() (for tests and metrics).
        self.transactions = 0

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> Deferred:
        """Start the worker thread, open the file (WAL, exclusive lock) and load the mirror.

        :returns: ``Deferred[None]``; errbacks with :class:`~ilptx.stores.StoreOpenError`
            (``storePath: <what is wrong> (sqlite: <its message>)``) when the file cannot be
            opened: a missing directory, a read-only file or filesystem, not a database, or
            another process (or store object) holds it.
        """
        if not self._started:
            self._executor.start()
            self._started = True
        d = self._executor.run(self._db.open_and_load)

        def failed(failure):
            self._started = False
            self._executor.stop()
            return failure

        d.addCallbacks(self._loaded, failed)
        return d

    def _loaded(self, rows: tuple) -> None:
        balances, outbox, kv = rows
        self._balances = {account_id: BalanceState(int(b), int(i), int(o), int(s))
                          for account_id, b, i, o, s in balances}
        self._outbox = {sid: (seq, account_id, int(amount)) for seq, sid, account_id, amount in outbox}
        self._data = dict(kv)
        self._next_seq = (outbox[-1][0] + 1) if outbox else 1
        self._open = True

    def close(self) -> Deferred:
        """Write everything still dirty, wait for it, close the file and stop the thread.

        :returns: ``Deferred[None]``; errbacks if the last write fails (the file is closed
            anyway and unwritten changes are lost).
        """
        if not self._started:
            return succeed(None)
        d = self.wait_durable() if self._open else succeed(None)
        self._open = False

        def shut(result):
            if self._scheduled is not None:  # a retry after a failed write
                self._scheduled.cancel()
                self._scheduled = None
            closing = self._executor.run(self._db.close)

            def stop(close_result):
                self._started = False
                self._executor.stop()
                return close_result

            closing.addBoth(stop)
            return closing.addCallback(lambda _: result)

        return d.addBoth(shut)

    def wait_durable(self) -> Deferred:
        """:returns: ``Deferred[None]`` that fires once every change made so far (including
        reservations) is committed to the file."""
        return self._commit(None)

    # --- the flush machine ---------------------------------------------------------------

    def _schedule(self) -> None:
        """Flush at the end of this reactor turn, unless a flush is scheduled or in flight."""
        if self._scheduled is None and self._inflight is None:
            self._scheduled = self._reactor.callLater(0, self._flush)

    def _commit(self, result: Any, undo: Any = None) -> Deferred:
        """:returns: a Deferred firing with ``result`` once every change so far is durable.

        :param undo: what a failed transaction does to this change: ``None`` keeps it and
            errbacks; a callable (it reverts the change in the mirror) is called, then errbacks;
            ``_KEEP`` keeps it and fires with ``result`` anyway.
        """
        if self._scheduled is None and self._inflight is None and not (
                self._dirty_balances or self._dirty_outbox or self._dirty_kv):
            return succeed(result)
        d = Deferred()
        self._waiters.append((d, result, undo))
        self._schedule()
        return d

    def _flush(self) -> None:
        self._scheduled = None
        waiters, self._waiters = self._waiters, []
        if not (self._dirty_balances or self._dirty_outbox or self._dirty_kv):
            for d, result, _ in waiters:
                d.callback(result)
            return
        dirty = (self._dirty_balances, self._dirty_outbox, self._dirty_kv)
        self._dirty_balances, self._dirty_outbox, self._dirty_kv = set(), set(), set()
        balances = self._balances
        balance_rows = []
        for account_id in dirty[0]:
            s = balances[account_id]
            balance_rows.append((account_id, str(s.balance), str(s.incoming_reserved),
                                 str(s.outgoing_reserved), str(s.settling)))
        outbox_put, outbox_del = [], []
        for sid in dirty[1]:
            entry = self._outbox.get(sid)
            if entry is None:
                outbox_del.append((sid,))
            else:
                outbox_put.append((entry[0], sid, entry[1], str(entry[2])))
        kv_put, kv_del = [], []
        for key in dirty[2]:
            value = self._data.get(key)
            if value is None:
                kv_del.append((key,))
            else:
                kv_put.append((key, value))
        batch = (balance_rows, outbox_put, outbox_del, kv_put, kv_del)
        self._inflight = d = self._executor.run(self._db.write, batch)
        d.addCallbacks(self._flushed, self._flush_failed, callbackArgs=(waiters,), errbackArgs=(waiters, dirty))

    def _flushed(self, _: None, waiters: list) -> None:
        self._inflight = None
        self.transactions += 1
        for d, result, _ in waiters:
            d.callback(result)
        if self._waiters or self._dirty_balances or self._dirty_outbox or self._dirty_kv:
            self._schedule()

    def _flush_failed(self, failure: Failure, waiters: list, dirty: tuple) -> None:
        self._inflight = None
        self._log.failure("sqlite store: writing {rows} rows to {path} failed; retrying in {delay} s",
                          failure, rows=sum(map(len, dirty)), path=self.path, delay=self._retry_delay)
        # Nothing of this transaction is on disk. Undo what can be taken back (newest first),
        # then write the rows again from the mirror, which holds their latest values.
        for _, _, undo in reversed(waiters):
            if callable(undo):
                undo()
        self._dirty_balances |= dirty[0]
        self._dirty_outbox |= dirty[1]
        self._dirty_kv |= dirty[2]
        error = StoreWriteError(failure)
        for d, result, undo in waiters:
            if undo is _KEEP:
                d.callback(result)
            else:
                d.errback(error)
        if self._open and self._scheduled is None:
            self._scheduled = self._reactor.callLater(self._retry_delay, self._flush)

    # --- undoing what a failed transaction held ------------------------------------------------

    def _change(self, account_id: str, **deltas: int) -> None:
        """Add ``deltas`` to an account's fields in the mirror (reserved amounts clamped at 0)."""
        state = self._balances.get(account_id, _ZERO)
        self._balances[account_id] = replace(state, **{
            name: getattr(state, name) + delta if name == "balance" else max(0, getattr(state, name) + delta)
            for name, delta in deltas.items()})
        self._dirty_balances.add(account_id)

    def _restore(self, key: str, ours: Optional[str], old: Optional[str]) -> None:
        """Put back ``old`` under ``key`` unless a later change replaced ``ours`` meanwhile."""
        if self._data.get(key) is ours:
            if old is None:
                self._data.pop(key, None)
            else:
                self._data[key] = old
            self._dirty_kv.add(key)

    # --- balances ------------------------------------------------------------------------

    def _closed(self) -> Deferred:
        return fail(StoreClosedError(f"sqlite store {self.path} is not open"))

    def reserve_incoming(self, account_id: str, amount: int, maximum: Optional[int]) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.reserve_incoming`; fires at once (not durable yet)."""
        if not self._open:
            return self._closed()
        new = apply_reserve_incoming(self._balances.get(account_id, _ZERO), amount, maximum)
        if new is None:
            return succeed(False)
        self._balances[account_id] = new
        self._dirty_balances.add(account_id)
        if self._scheduled is None and self._inflight is None:
            self._scheduled = self._reactor.callLater(0, self._flush)
        return succeed(True)

    def reserve_outgoing(self, account_id: str, amount: int, minimum: Optional[int]) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.reserve_outgoing`; fires ``True`` once the
        reservation is durable: the connector forwards the Prepare only then, so a crash can
        never forget a Prepare the next hop may fulfill. (The check itself is immediate.)"""
        if not self._open:
            return self._closed()
        new = apply_reserve_outgoing(self._balances.get(account_id, _ZERO), amount, minimum)
        if new is None:
            return succeed(False)
        self._balances[account_id] = new
        self._dirty_balances.add(account_id)
        return self._commit(True, lambda: self._change(account_id, outgoing_reserved=-amount))

    def _settle(self, account_id: str, amount: int, fulfilled: bool, incoming: bool) -> Deferred:
        if not self._open:
            return self._closed()
        new = self._balances[account_id] = apply_settle(self._balances.get(account_id, _ZERO), amount,
                                                       fulfilled, incoming)
        self._dirty_balances.add(account_id)
        if not fulfilled:
            self._schedule()
            return succeed(new)
        if not incoming:  # the next hop was paid: a fact (see "When a write fails")
            return self._commit(new, _KEEP)
        # the sender is charged only if this is durable: otherwise its Fulfill becomes a Reject
        return self._commit(new, lambda: self._change(account_id, balance=-amount))

    def settle_incoming(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.settle_incoming`; waits for the commit only
        when ``fulfilled``."""
        return self._settle(account_id, amount, fulfilled, True)

    def settle_outgoing(self, account_id: str, amount: int, fulfilled: bool) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.settle_outgoing`; waits for the commit only
        when ``fulfilled``."""
        return self._settle(account_id, amount, fulfilled, False)

    def adjust(self, account_id: str, amount_diff: int) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.adjust`; fires once durable."""
        if not self._open:
            return self._closed()
        state = self._balances.get(account_id, _ZERO)
        new = self._balances[account_id] = replace(state, balance=state.balance + amount_diff)
        self._dirty_balances.add(account_id)
        return self._commit(new, lambda: self._change(account_id, balance=-amount_diff))

    def add_settlement(self, settlement_id: str, account_id: str, amount: int) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.add_settlement`; fires once durable (also for a
        known id: it fires once the first call's change is durable)."""
        if not self._open:
            return self._closed()
        if settlement_id in self._outbox:
            return self._commit(None)
        self._outbox[settlement_id] = (self._next_seq, account_id, amount)
        self._next_seq += 1
        state = self._balances.get(account_id, _ZERO)
        self._balances[account_id] = replace(state, settling=state.settling + amount)
        self._dirty_balances.add(account_id)
        self._dirty_outbox.add(settlement_id)

        def undo() -> None:  # the settlement never started: nothing was sent for it
            if self._outbox.pop(settlement_id, None) is not None:
                self._change(account_id, settling=-amount)

        return self._commit(None, undo)

    def complete_settlement(self, settlement_id: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.complete_settlement`; fires once durable."""
        if not self._open:
            return self._closed()
        entry = self._outbox.pop(settlement_id, None)
        if entry is None:
            return self._commit(False)
        _, account_id, amount = entry
        state = self._balances.get(account_id, _ZERO)
        self._balances[account_id] = replace(state, balance=state.balance + amount,
                                             settling=max(0, state.settling - amount))
        self._dirty_balances.add(account_id)
        self._dirty_outbox.add(settlement_id)
        return self._commit(True)

    def pending_settlements(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.pending_settlements` (from memory)."""
        return succeed([(sid, account_id, amount) for sid, (_, account_id, amount) in self._outbox.items()])

    def get_balance(self, account_id: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.get_balance` (from memory)."""
        return succeed(self._balances.get(account_id, _ZERO))

    def all_balances(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.all_balances` (from memory)."""
        return succeed(dict(self._balances))

    def recover(self) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.recover`; fires once durable."""
        if not self._open:
            return self._closed()
        changed = {}
        for account_id, state in self._balances.items():
            if state.incoming_reserved or state.outgoing_reserved:
                changed[account_id] = replace(state, incoming_reserved=0, outgoing_reserved=0,
                                              balance=state.balance - state.outgoing_reserved)
        undone = {account_id: self._balances[account_id] for account_id in changed}
        self._balances.update(changed)
        self._dirty_balances.update(changed)

        def undo() -> None:
            for account_id, old in undone.items():
                self._change(account_id, balance=old.outgoing_reserved, incoming_reserved=old.incoming_reserved,
                             outgoing_reserved=old.outgoing_reserved)

        return self._commit(changed, undo)

    # --- plugin state / runtime accounts ---------------------------------------------------

    def get(self, key: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.get` (from memory)."""
        return succeed(self._data.get(key))

    def put(self, key: str, value: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.put`; fires once durable."""
        if not self._open:
            return self._closed()
        if not isinstance(value, str):
            return fail(TypeError(f"store values are str, not {type(value).__name__}"))
        old = self._data.get(key)
        self._data[key] = value
        self._dirty_kv.add(key)
        return self._commit(None, lambda: self._restore(key, value, old))

    def delete(self, key: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.delete`; fires once durable."""
        if not self._open:
            return self._closed()
        old = self._data.pop(key, None)
        if old is None:
            return self._commit(None)
        self._dirty_kv.add(key)
        return self._commit(None, lambda: self._restore(key, None, old))

    def keys(self, prefix: str) -> Deferred:
        """See :meth:`ilptx.interfaces.IStore.keys` (from memory, sorted)."""
        return succeed(sorted(k for k in self._data if k.startswith(prefix)))

    # --- for ilptx.settlement ----------------------------------------------------------------

    def run_with_connection(self, f: Callable, *args: Any) -> Deferred:
        """Run ``f(connection, *args)`` on the store's worker thread, between its own group
        commits (one thread: never during one), for state kept in tables of its own
        (:class:`ilptx.settlement.state.SqliteSettlementState`; the mirror never sees them).
        ``f`` must leave no transaction open.

        :returns: ``Deferred`` with ``f``'s result (or its exception), fired on the reactor
            thread; errbacks with :class:`StoreClosedError` when the store is not open.
        """
        if not self._open:
            return self._closed()
        return self._executor.run(lambda: f(self._db.conn, *args))
