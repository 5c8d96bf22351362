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
            self.clock.advance(1.0)  # also runs a retry after a failed write
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


def fail_one_write(h, error="database or disk is full") -> None:
    """End the reactor turn and make the transaction it starts fail."""
    h.turn()
    assert h.writes() == 1
    h.executor.fail_next = sqlite3.OperationalError(error)
    h.executor.finish()


def write_failure(d) -> StoreWriteError:
    """:returns: the StoreWriteError ``d`` failed with (consumed)."""
    assert d.called, "expected the Deferred to have fired"
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(StoreWriteError), failures
    return failures[0].value


def retry(h) -> None:
    """Let the retry after a failed write run and succeed."""
    h.turn()
    assert h.writes() == 0
    h.clock.advance(1.0)
    assert h.writes() == 1
    h.executor.finish()


def test_write_failure_errbacks_t00_and_retries(h, tmp_path):
    """A failed transaction errbacks its waiters with StoreWriteError (ILP T00, cause kept, not in the
    message); the rows are written again after retry_delay."""
    d = h.store.adjust("a", 5)
    h.store.reserve_incoming("b", 3, None)
    fail_one_write(h, "disk I/O error")
    error = write_failure(d)
    assert (error.code, error.message) == ("T00", "store write failed")
    assert "disk I/O error" in str(error) and error.cause.check(sqlite3.OperationalError)
    retry(h)
    rows, _, _ = h.reopen_state(tmp_path / "s.sqlite")
    assert rows == [("a", "0", "0", "0", "0"), ("b", "0", "3", "0", "0")]  # adjust undone, reservation kept


def test_failed_outgoing_reservation_is_released_and_never_booked(h, tmp_path):
    """reserve_outgoing whose write fails: T00, the reservation is released in memory and on disk,
    so a restart's recover() books no payment for a Prepare that was never forwarded."""
    h.store.reserve_outgoing("bob", 85, -1000).addCallback(lambda ok: pytest.fail("must not be forwarded"))
    fail_one_write(h)
    assert h.store.get_balance("bob").result == B()
    retry(h)
    h.close()
    again = Harness(tmp_path / "s.sqlite")
    recovered = again.store.recover()
    again.turn()
    again.executor.finish_all()
    assert recovered.result == {} and again.store.get_balance("bob").result == B()
    again.close()


def test_failed_incoming_commit_does_not_charge_the_sender(h):
    """settle_incoming(fulfilled=True) whose write fails: StoreWriteError and the balance stays
    as before the Prepare (its reservation released): the sender gets a Reject, not a charge."""
    h.store.reserve_incoming("alice", 40, 100)
    h.turn()
    h.executor.finish()
    d = h.store.settle_incoming("alice", 40, True)
    fail_one_write(h)
    write_failure(d)
    assert h.store.get_balance("alice").result == B()


def test_failed_outgoing_commit_is_kept_and_fires(h, tmp_path):
    """settle_outgoing(fulfilled=True) whose write fails keeps the payment (the next hop was paid;
    its reservation is durable) and fires with the new state; the retry writes it."""
    h.store.reserve_outgoing("bob", 30, None)
    h.turn()
    h.executor.finish()
    d = h.store.settle_outgoing("bob", 30, True)
    fail_one_write(h)
    assert d.result == B(balance=-30)
    retry(h)
    rows, _, _ = h.reopen_state(tmp_path / "s.sqlite")
    assert rows == [("bob", "-30", "0", "0", "0")]


def test_failed_complete_settlement_is_kept_and_reported(h):
    """complete_settlement whose write fails keeps the completion (the money was sent) and errbacks."""
    h.store.add_settlement("s", "bob", 10)
    h.turn()
    h.executor.finish()
    d = h.store.complete_settlement("s")
    fail_one_write(h)
    write_failure(d)
    assert h.store.get_balance("bob").result == B(balance=10) and h.store.pending_settlements().result == []


@pytest.mark.parametrize("change, check", [
    (lambda s: s.adjust("a", -7), lambda s: s.get_balance("a").result == B()),
    (lambda s: s.add_settlement("x", "a", 9),
     lambda s: s.get_balance("a").result == B() and s.pending_settlements().result == []),
    (lambda s: s.put("k", "new"), lambda s: s.get("k").result == "old"),
    (lambda s: s.delete("k"), lambda s: s.get("k").result == "old"),
], ids=["adjust", "add_settlement", "put", "delete"])
def test_failed_changes_are_undone(h, change, check):
    """adjust, add_settlement, put and delete whose write fails errback and leave the mirror as it was."""
    h.store.put("k", "old")
    h.turn()
    h.executor.finish()
    d = change(h.store)
    fail_one_write(h)
    write_failure(d)
    assert check(h.store)


def test_failed_recover_is_undone(tmp_path):
    """recover() whose write fails errbacks and leaves the reservations as they were."""
    first = Harness(tmp_path / "r.sqlite")
    first.store.reserve_incoming("a", 4, None)
    first.store.reserve_outgoing("b", 6, None)
    first.close()
    h = Harness(tmp_path / "r.sqlite")
    d = h.store.recover()
    fail_one_write(h)
    write_failure(d)
    assert h.store.all_balances().result == {"a": B(incoming_reserved=4), "b": B(outgoing_reserved=6)}
    h.close()


def test_changes_made_during_a_failing_write_are_not_undone(h):
    """Only the operations of the failed transaction are undone; those waiting for the next one stay."""
    first = h.store.reserve_outgoing("bob", 5, None)
    h.turn()
    second = h.store.reserve_outgoing("bob", 7, None)
    h.executor.fail_next = sqlite3.OperationalError("database or disk is full")
    h.executor.finish()
    write_failure(first)
    assert h.store.get_balance("bob").result == B(outgoing_reserved=7) and not second.called
    retry(h)
    assert second.result is True


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
