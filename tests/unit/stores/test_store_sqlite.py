"""The SQLite store's group commit, on a ``task.Clock`` with an executor the test drives
(the sqlite3 calls run inline on a real file), plus its file locking on the real reactor."""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from ilptx.core.balances import BalanceState
from ilptx.stores import StoreOpenError
from ilptx.stores.sqlite import SCHEMA_VERSION, SqliteStore, StoreClosedError, StoreWriteError

B = BalanceState


class ManualExecutor:
    """Runs each job inline when the test says so: ``jobs`` holds ``(function, args,
    Deferred)``; :meth:`finish` runs the oldest and fires its Deferred."""

    def __init__(self) -> None:
        self.jobs: list[tuple] = []
        self.started = self.stopped = False
        self.fail_next: Exception | None = None

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def run(self, f, *args) -> Deferred:
        d = Deferred()
        self.jobs.append((f, args, d))
        return d

    def finish(self) -> None:
        f, args, d = self.jobs.pop(0)
        if self.fail_next is not None and f.__name__ == "write":
            error, self.fail_next = self.fail_next, None
            d.errback(error)
            return
        maybeDeferred(f, *args).chainDeferred(d)

    def finish_all(self) -> None:
        while self.jobs:
            self.finish()


class Harness:
    """An opened SqliteStore on ``path`` with a Clock and a :class:`ManualExecutor`."""

    def __init__(self, path, **kwargs) -> None:
        self.clock = Clock()
        self.executor = ManualExecutor()
        self.store = SqliteStore(str(path), reactor=self.clock, executor=self.executor, **kwargs)
        opened = self.store.open()
        self.executor.finish()
        assert opened.called and opened.result is None

    def turn(self) -> None:
        """End the reactor turn (runs the scheduled flush)."""
        self.clock.advance(0)

    def writes(self) -> int:
        return sum(1 for f, _, _ in self.executor.jobs if f.__name__ == "write")

    def reopen_state(self, path):
        """:returns: (balances, outbox rows, kv rows) read from the file by plain sqlite3."""
        self.close()
        with sqlite3.connect(str(path)) as conn:
            return (conn.execute("SELECT * FROM balances ORDER BY account_id").fetchall(),
                    conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall(),
                    conn.execute("SELECT * FROM kv ORDER BY key").fetchall())

    def close(self) -> None:
        done: list = []
        self.store.close().addBoth(done.append)
        for _ in range(10):
            if done:
                break
            self.turn()
            self.executor.finish_all()
        assert done == [None]


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "s.sqlite")
    yield harness
    if harness.store._started:
        harness.close()


def test_incoming_reservations_and_releases_fire_at_once(h):
    """reserve_incoming, a refused reserve_outgoing and unfulfilled settle_* fire before any write."""
    assert h.store.reserve_incoming("a", 5, None).result is True
    assert h.store.reserve_incoming("a", 5, 0).result is False
    assert h.store.reserve_outgoing("a", 5, 0).result is False
    assert h.store.settle_incoming("a", 5, False).result == B()
    assert h.writes() == 0


def test_outgoing_reservation_fires_only_once_durable(h):
    """reserve_outgoing fires True only after the transaction holding it commits (forward after durable)."""
    done = []
    h.store.reserve_outgoing("a", 5, None).addCallback(done.append)
    assert done == [] and h.writes() == 0
    h.turn()
    assert done == [] and h.writes() == 1
    h.executor.finish()
    assert done == [True] and h.store.transactions == 1
    assert h.store.settle_outgoing("a", 5, False).result == B()


@pytest.mark.parametrize("call", [
    lambda s: s.settle_incoming("a", 1, True),
    lambda s: s.settle_outgoing("a", 1, True),
    lambda s: s.adjust("a", 1),
    lambda s: s.add_settlement("s", "a", 1),
    lambda s: s.put("k", "v"),
    lambda s: s.recover(),
])
def test_commits_fire_after_the_transaction(h, call):
    """A committing operation's Deferred fires only after its transaction has committed."""
    h.store.reserve_outgoing("a", 1, None)
    d = call(h.store)
    assert not d.called
    h.turn()
    assert h.writes() == 1 and not d.called
    h.executor.finish()
    assert d.called and h.store.transactions == 1


def test_complete_settlement_and_delete_fire_after_the_transaction(h):
    """complete_settlement and delete wait for their transaction too."""
    h.store.add_settlement("s", "a", 1)
    h.store.put("k", "v")
    h.turn()
    h.executor.finish()
    done, deleted = h.store.complete_settlement("s"), h.store.delete("k")
    assert not done.called and not deleted.called
    h.turn()
    h.executor.finish()
    assert done.result is True and deleted.called


def test_nothing_dirty_fires_at_once(h):
    """With every change already durable, a no-op commit (unknown id, absent key) fires at once."""
    assert h.store.complete_settlement("unknown").result is False
    assert h.store.delete("absent").called
    assert h.store.wait_durable().called


def test_one_transaction_per_reactor_turn(h):
    """1000 commits in one reactor turn are written by one transaction."""
    ds = [h.store.adjust(f"acct{n % 10}", 1) for n in range(1000)]
    h.turn()
    assert h.writes() == 1
    h.executor.finish()
    assert all(d.called for d in ds)
    assert h.store.transactions == 1
    rows, _, _ = h.reopen_state(h.store.path)
    assert len(rows) == 10 and all(row[1] == "100" for row in rows)


def test_one_transaction_in_flight(h):
    """Changes made while a transaction is in flight wait for the next one, which starts
    only after the first has committed."""
    first = h.store.adjust("a", 1)
    h.turn()
    second = h.store.adjust("a", 2)
    third = h.store.put("k", "v")
    h.turn()
    assert h.writes() == 1
    h.executor.finish()
    assert first.called and not second.called and not third.called
    assert h.writes() == 0
    h.turn()
    assert h.writes() == 1
    h.executor.finish()
    assert second.result == B(balance=3) and third.called
    assert h.store.transactions == 2


def test_a_reservation_is_written_without_being_waited_for(h, tmp_path):
    """Reservations reach the file in the next transaction; wait_durable waits for it."""
    h.store.reserve_outgoing("a", 7, None)
    durable = h.store.wait_durable()
    assert not durable.called
    h.turn()
    h.executor.finish()
    assert durable.called
    rows, _, _ = h.reopen_state(tmp_path / "s.sqlite")
    assert rows == [("a", "0", "0", "7", "0")]


def test_amounts_are_decimal_text(h, tmp_path):
    """Rows hold amounts as decimal text, so any int round-trips."""
    h.store.adjust("a", -(2**70))
    h.store.add_settlement("s", "a", 2**64 - 1)
    h.store.put("k", "v")
    h.turn()
    h.executor.finish()
    balances, outbox, kv = h.reopen_state(tmp_path / "s.sqlite")
    assert balances == [("a", str(-(2**70)), "0", "0", str(2**64 - 1))]
    assert outbox == [(1, "s", "a", str(2**64 - 1))]
    assert kv == [("k", "v")]


def test_write_failure_errbacks_and_retries(h, tmp_path):
    """A failed transaction errbacks its waiters with StoreWriteError; the rows are kept and
    written again after retry_delay."""
    d = h.store.adjust("a", 5)
    h.turn()
    h.executor.fail_next = sqlite3.OperationalError("disk I/O error")
    h.executor.finish()
    assert isinstance(d.result.value, StoreWriteError)
    assert "disk I/O error" in str(d.result.value)
    d.addErrback(lambda _: None)
    assert h.store.get_balance("a").result == B(balance=5)  # the mirror keeps the change
    h.turn()
    assert h.writes() == 0
    h.clock.advance(1.0)
    assert h.writes() == 1
    h.executor.finish()
    rows, _, _ = h.reopen_state(tmp_path / "s.sqlite")
    assert rows == [("a", "5", "0", "0", "0")]


def test_closed_store_refuses_changes(h):
    """After close(), changes errback with StoreClosedError; reads still answer."""
    h.store.adjust("a", 1)
    h.close()
    assert h.executor.stopped
    for d in (h.store.reserve_incoming("a", 1, None), h.store.adjust("a", 1), h.store.put("k", "v")):
        assert isinstance(d.result.value, StoreClosedError)
        d.addErrback(lambda _: None)


def test_close_writes_what_is_dirty(h, tmp_path):
    """close() writes every pending change (reservations too) before closing the file."""
    h.store.reserve_incoming("a", 3, None)
    h.store.put("k", "v")
    balances, _, kv = h.reopen_state(tmp_path / "s.sqlite")
    assert balances == [("a", "0", "3", "0", "0")] and kv == [("k", "v")]


def test_put_refuses_non_strings(h):
    """put() takes str values only."""
    d = h.store.put("k", 5)
    assert isinstance(d.result.value, TypeError)
    d.addErrback(lambda _: None)


def test_newer_schema_is_refused(tmp_path):
    """A file written by a newer ilptx (higher user_version) is not opened."""
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(str(path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    clock, executor = Clock(), ManualExecutor()
    store = SqliteStore(str(path), reactor=clock, executor=executor)
    d = store.open()
    executor.finish()
    assert isinstance(d.result.value, StoreOpenError) and str(d.result.value) == \
        f"storePath: {path} has schema version {SCHEMA_VERSION + 1}; this ilptx knows up to {SCHEMA_VERSION}"
    d.addErrback(lambda _: None)
    assert executor.stopped


def test_synchronous_must_be_durable():
    """synchronous=OFF is refused."""
    with pytest.raises(ValueError):
        SqliteStore("x.sqlite", reactor=Clock(), synchronous="OFF")


@pytest_twisted.inlineCallbacks
def test_second_store_on_the_same_file_is_refused(tmp_path):
    """While one store has the file open, opening it again fails with one line saying so;
    after close() it opens."""
    from twisted.internet import reactor

    path = str(tmp_path / "locked.sqlite")
    first = SqliteStore(path, reactor=reactor)
    yield first.open()
    yield first.adjust("a", 1)
    second = SqliteStore(path, reactor=reactor)
    with pytest.raises(StoreOpenError, match=r"^storePath: .* is in use by another connector process "
                                             r"\(sqlite: database is locked\)"):
        yield second.open()
    yield first.close()
    third = SqliteStore(path, reactor=reactor)
    yield third.open()
    assert (yield third.get_balance("a")) == B(balance=1)
    mode = yield third._executor.run(lambda: third._db.conn.execute("PRAGMA journal_mode").fetchone()[0])
    sync = yield third._executor.run(lambda: third._db.conn.execute("PRAGMA synchronous").fetchone()[0])
    assert (mode, sync) == ("wal", 2)  # 2 = FULL
    yield third.close()
