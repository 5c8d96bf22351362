"""The pure rules of ilptx.settlement (transfers, limits, set_if_max, scale conversion with its
leftover), the memory backend and the backend factory, and the SQLite backend's one transaction
per operation (on a real file, with the sqlite3 calls run inline under a task.Clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from ilptx.settlement import (
    SCALE_DROPS, SCALE_GWEI, SCALE_MSAT, SCALE_SAT, SCALE_WEI, DuplicateTransferError, MaxEntry, ScaleConverter,
    Transfer, TransferLimitError, TransferLog, TransferLogSums, convert_scale, make_settlement_state,
)
from ilptx.settlement.model import apply_cancel, apply_fulfill, apply_prepare, apply_set_if_max
from ilptx.settlement.state import MemorySettlementState, RedisSettlementState, SqliteSettlementState
from ilptx.stores.memory import MemoryStore
from ilptx.stores.redis import RedisStore
from ilptx.stores.sqlite import SqliteStore

S = TransferLogSums
scales = st.integers(min_value=0, max_value=24)
amounts = st.integers(min_value=0, max_value=10**30)


def result_of(d):
    """:returns: the result of an already-fired Deferred (raises its failure)."""
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


# --- scale conversion ------------------------------------------------------------------------------------


def test_convert_scale_examples():
    """wei → gwei keeps the wei below a gwei; gwei → wei is exact; units (9) → drops; sat → msat."""
    amount_wei = 2_000_000_001
    assert convert_scale(amount_wei, SCALE_WEI, SCALE_GWEI) == (2, 1)
    assert convert_scale(999_999_999, SCALE_WEI, SCALE_GWEI, leftover=1) == (1, 0)
    assert convert_scale(3, SCALE_GWEI, SCALE_WEI) == (3 * 10**9, 0)
    assert convert_scale(1_234_567, 9, SCALE_DROPS) == (1_234, 567)
    assert convert_scale(5, SCALE_SAT, SCALE_MSAT) == (5_000, 0)
    assert convert_scale(0, SCALE_WEI, SCALE_GWEI) == (0, 0)


def test_convert_scale_refuses_negative_and_non_int():
    """A negative amount or leftover raises ValueError; a float or bool raises TypeError."""
    with pytest.raises(ValueError, match="amount must be >= 0"):
        convert_scale(-1, 18, 9)
    with pytest.raises(ValueError, match="leftover must be >= 0"):
        convert_scale(1, 18, 9, leftover=-1)
    for bad in (1.0, True, "1"):
        with pytest.raises(TypeError):
            convert_scale(bad, 18, 9)


@given(st.lists(amounts, max_size=40), scales, scales)
def test_convert_scale_creates_and_loses_nothing(sequence, from_scale, to_scale):
    """Over any sequence of conversions carrying the leftover, converted units × 10**(from − to)
    + the final leftover is exactly the sum converted, and the leftover stays below one unit."""
    leftover, converted = 0, 0
    for amount in sequence:
        out, leftover = convert_scale(amount, from_scale, to_scale, leftover)
        converted += out
        assert 0 <= leftover < max(1, 10 ** (from_scale - to_scale))
    if to_scale >= from_scale:
        assert converted == sum(sequence) * 10 ** (to_scale - from_scale) and leftover == 0
    else:
        assert converted * 10 ** (from_scale - to_scale) + leftover == sum(sequence)


@given(st.lists(amounts, max_size=30), scales, scales)
def test_scale_converter_in_the_store_creates_and_loses_nothing(sequence, from_scale, to_scale):
    """A ScaleConverter over the memory state gives exactly what convert_scale gives with the
    leftover carried, and keeps that leftover."""
    converter = ScaleConverter(MemorySettlementState(), "peer", from_scale, to_scale)
    leftover = 0
    for amount in sequence:
        expected = convert_scale(amount, from_scale, to_scale, leftover)
        assert result_of(converter.convert(amount)) == expected
        leftover = expected[1]
    assert result_of(converter.leftover()) == leftover


# --- transfer rules --------------------------------------------------------------------------------------


def test_prepare_limits_are_inclusive():
    """IFP + amount − OF == maximum passes, one more fails; IF − (OFP + amount) == minimum passes."""
    sums = S(incoming_fulfilled=5, incoming_fulfilled_and_prepared=8, outgoing_fulfilled=2,
             outgoing_fulfilled_and_prepared=4, maximum=10, minimum=-3)
    assert apply_prepare("l", sums, None, Transfer("a", True, 4)).incoming_fulfilled_and_prepared == 12
    with pytest.raises(TransferLimitError, match="incoming a of 5 .* to 11 > maximum 10"):
        apply_prepare("l", sums, None, Transfer("a", True, 5))
    assert apply_prepare("l", sums, None, Transfer("b", False, 4)).outgoing_fulfilled_and_prepared == 8
    with pytest.raises(TransferLimitError, match="outgoing b of 5 .* to -4 < minimum -3"):
        apply_prepare("l", sums, None, Transfer("b", False, 5))


def test_prepare_replay_and_conflict():
    """A known id with the same content is a replay (None, even if over the limit now); with
    other data it is a DuplicateTransferError."""
    existing = Transfer("a", True, 5, "x", "fulfilled", "f")
    assert apply_prepare("l", S(maximum=0), existing, Transfer("a", True, 5, "x")) is None
    with pytest.raises(DuplicateTransferError):
        apply_prepare("l", S(), existing, Transfer("a", True, 5, "y"))


def test_fulfill_and_cancel_move_the_right_sums():
    """fulfill adds to IF / OF; cancel takes off IFP / OFP; both mark the transfer."""
    sums = S(0, 10, 0, 10)
    out = Transfer("o", False, 4)
    fulfilled = Transfer("o", False, 4, "", "fulfilled", "ful")
    assert apply_fulfill("l", sums, out, "o", "ful") == (S(0, 10, 4, 10), fulfilled)
    assert apply_cancel("l", sums, out, "o") == (S(0, 10, 0, 6), Transfer("o", False, 4, "", "cancelled"))
    incoming = Transfer("i", True, 3)
    assert apply_fulfill("l", sums, incoming, "i", "")[0] == S(3, 10, 0, 10)
    assert apply_cancel("l", sums, incoming, "i")[0] == S(0, 7, 0, 10)


def test_set_if_max_returns_previous_or_entry():
    """Greater: store it, return the previous maximum; not greater: keep, return the entry."""
    assert apply_set_if_max(MaxEntry(0, None), 5, "a") == (MaxEntry(5, "a"), MaxEntry(0, None))
    assert apply_set_if_max(MaxEntry(5, "a"), 5, "b") == (None, MaxEntry(5, "b"))
    assert apply_set_if_max(MaxEntry(5, "a"), 4, None) == (None, MaxEntry(4, None))


@given(st.lists(st.integers(min_value=0, max_value=10**20), max_size=50))
def test_set_if_max_increases_add_up_to_the_maximum(values):
    """Over any sequence, the increases value − returned.value sum to the final maximum."""
    current, increase = MaxEntry(0, None), 0
    for v in values:
        new, returned = apply_set_if_max(current, v, None)
        increase += v - returned.value
        current = new or current
    assert increase == current.value == max(values, default=0)


# --- the memory backend and the factory ----------------------------------------------------------------------


def test_memory_operations_fire_at_once():
    """The memory state answers every operation with an already-fired Deferred (no reactor turn)."""
    log = TransferLog(MemorySettlementState(), "peer")
    assert result_of(log.prepare("a", 1, True)) is True
    assert result_of(log.fulfill("a")) is True
    assert result_of(log.get_sums()) == S(1, 1, 0, 0)


def test_factory_picks_the_backend_by_store():
    """make_settlement_state: one memory state per memory store object; sqlite and redis get
    their backends; another store is a TypeError naming it."""
    store = MemoryStore()
    assert make_settlement_state(store) is make_settlement_state(store)
    assert make_settlement_state(store) is not make_settlement_state(MemoryStore())
    assert isinstance(make_settlement_state(SqliteStore(":memory:", reactor=Clock())), SqliteSettlementState)
    assert isinstance(make_settlement_state(RedisStore(reactor=Clock())), RedisSettlementState)

    class OtherStore:
        name = "etcd"

    with pytest.raises(TypeError, match="no settlement state for store 'etcd'"):
        make_settlement_state(OtherStore())


# --- SQLite: one transaction per operation ------------------------------------------------------------------------


class InlineExecutor:
    """Runs each sqlite3 call at once on the calling thread (the store's executor protocol)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, f, *args):
        return maybeDeferred(f, *args)


@pytest.fixture
def sqlite_state(tmp_path):
    """An open SqliteStore on a temporary file (inline executor, Clock) and its settlement state."""
    store = SqliteStore(str(tmp_path / "s.sqlite"), reactor=Clock(), executor=InlineExecutor())
    result_of(store.open())
    state = make_settlement_state(store)
    result_of(state.open())
    yield store, state
    result_of(store.close())


def test_sqlite_failure_mid_operation_rolls_back_all_of_it(sqlite_state, monkeypatch):
    """If writing the transfer fails after the sums were written, the whole prepare rolls back:
    the sums and the transfer are as before, and the next prepare works."""
    from ilptx.settlement import state as state_module

    store, state = sqlite_state
    log = TransferLog(state, "peer")
    result_of(log.prepare("a", 5, True))

    def broken(self, log, transfer):
        raise OSError("disk full")

    original = state_module._SqliteRows.put_transfer
    monkeypatch.setattr(state_module._SqliteRows, "put_transfer", broken)
    with pytest.raises(OSError, match="disk full"):
        result_of(log.prepare("b", 7, True))
    monkeypatch.setattr(state_module._SqliteRows, "put_transfer", original)
    assert result_of(log.get_sums()) == S(incoming_fulfilled_and_prepared=5)
    assert [t.id for t in result_of(log.prepared())] == ["a"]
    assert result_of(log.prepare("b", 7, True)) is True


def test_sqlite_state_commits_each_operation(sqlite_state, tmp_path):
    """Each operation's transaction has committed when its Deferred fires (none is left open),
    and its rows are in the file."""
    import sqlite3

    store, state = sqlite_state
    log = TransferLog(state, "peer")
    result_of(log.prepare("a", 5, True, "cond"))
    assert result_of(store.run_with_connection(lambda conn: conn.in_transaction)) is False
    result_of(log.fulfill("a", "ful"))
    assert result_of(store.run_with_connection(lambda conn: conn.in_transaction)) is False
    result_of(store.close())
    conn = sqlite3.connect(str(tmp_path / "s.sqlite"))
    try:
        rows = conn.execute("SELECT incoming, amount, data, state, fulfillment FROM settlement_transfers").fetchall()
        assert rows == [(1, "5", "cond", "fulfilled", "ful")]
        assert conn.execute("SELECT incoming_fulfilled FROM settlement_logs").fetchall() == [("5",)]
    finally:
        conn.close()


def test_sqlite_state_of_a_closed_store_fails(tmp_path):
    """On a store that is not open, operations errback with StoreClosedError."""
    from ilptx.stores.sqlite import StoreClosedError

    state = make_settlement_state(SqliteStore(str(tmp_path / "c.sqlite"), reactor=Clock(), executor=InlineExecutor()))
    with pytest.raises(StoreClosedError):
        result_of(TransferLog(state, "peer").prepare("a", 1, True))
