"""The IStore contract, pinned for every store: memory, sqlite (a temporary file) and redis (a
real redis-server started by the session fixture; a missing binary fails, never skips).

The SQLite and Redis stores run on the real reactor (pytest-twisted): real threads, real files,
real sockets.
"""

from __future__ import annotations

import random

import pytest_twisted
from twisted.internet.defer import gatherResults
from zope.interface.verify import verifyObject

from ilptx.core.balances import BalanceState
from ilptx.interfaces import IStore
from ilptx.stores.memory import MemoryStore

U64 = 2**64 - 1
B = BalanceState


def test_provides_istore(store):
    """Every store provides IStore."""
    assert verifyObject(IStore, store)


# --- reservations and limits ------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_reserve_incoming_up_to_maximum(store):
    """reserve_incoming passes while balance + incoming_reserved + amount <= maximum."""
    yield store.adjust("a", 10)
    assert (yield store.reserve_incoming("a", 60, 100)) is True
    assert (yield store.reserve_incoming("a", 30, 100)) is True  # 10 + 60 + 30 == 100
    assert (yield store.get_balance("a")) == B(balance=10, incoming_reserved=90)


@pytest_twisted.inlineCallbacks
def test_reserve_incoming_over_maximum_changes_nothing(store):
    """Over the maximum: False, and the state is exactly as before."""
    yield store.adjust("a", 10)
    yield store.reserve_incoming("a", 60, 100)
    assert (yield store.reserve_incoming("a", 31, 100)) is False
    assert (yield store.get_balance("a")) == B(balance=10, incoming_reserved=60)
    assert (yield store.reserve_incoming("b", 1, 0)) is False
    assert (yield store.get_balance("b")) == B()


@pytest_twisted.inlineCallbacks
def test_reserve_incoming_without_maximum(store):
    """maximum=None: no limit."""
    assert (yield store.reserve_incoming("a", 10**30, None)) is True
    assert (yield store.get_balance("a")).incoming_reserved == 10**30


@pytest_twisted.inlineCallbacks
def test_reserve_outgoing_down_to_minimum(store):
    """reserve_outgoing passes while balance - outgoing_reserved - amount >= minimum."""
    yield store.adjust("a", 5)
    assert (yield store.reserve_outgoing("a", 10, -20)) is True
    assert (yield store.reserve_outgoing("a", 15, -20)) is True  # 5 - 10 - 15 == -20
    assert (yield store.get_balance("a")) == B(balance=5, outgoing_reserved=25)


@pytest_twisted.inlineCallbacks
def test_reserve_outgoing_under_minimum_changes_nothing(store):
    """Under the minimum: False, and the state is exactly as before."""
    yield store.reserve_outgoing("a", 10, -20)
    assert (yield store.reserve_outgoing("a", 11, -20)) is False
    assert (yield store.get_balance("a")) == B(outgoing_reserved=10)
    assert (yield store.reserve_outgoing("b", 1, 0)) is False
    assert (yield store.get_balance("b")) == B()


@pytest_twisted.inlineCallbacks
def test_reserve_outgoing_without_minimum(store):
    """minimum=None: no limit."""
    assert (yield store.reserve_outgoing("a", 10**30, None)) is True
    assert (yield store.get_balance("a")).outgoing_reserved == 10**30


@pytest_twisted.inlineCallbacks
def test_limits_ignore_the_other_direction(store):
    """The incoming check ignores outgoing reservations and vice versa."""
    assert (yield store.reserve_outgoing("a", 50, -50)) is True
    assert (yield store.reserve_incoming("a", 100, 100)) is True
    assert (yield store.reserve_outgoing("a", 1, -50)) is False
    assert (yield store.get_balance("a")) == B(incoming_reserved=100, outgoing_reserved=50)


@pytest_twisted.inlineCallbacks
def test_concurrent_reservations_respect_the_limit(store):
    """Reservations issued together (not awaited one by one) never pass the limit together."""
    results = yield gatherResults([store.reserve_outgoing("a", 7, -100) for _ in range(40)])
    assert sum(results) == 100 // 7
    assert (yield store.get_balance("a")).outgoing_reserved == 7 * (100 // 7)
    results = yield gatherResults([store.reserve_incoming("a", 3, 10) for _ in range(10)])
    assert sum(results) == 3


# --- settling reservations --------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_settle_incoming_fulfilled_moves_into_balance(store):
    """A fulfilled incoming reservation becomes balance; returns the state after."""
    yield store.reserve_incoming("a", 30, None)
    state = yield store.settle_incoming("a", 30, True)
    assert state == B(balance=30)
    assert (yield store.get_balance("a")) == state


@pytest_twisted.inlineCallbacks
def test_settle_incoming_unfulfilled_releases(store):
    """A rejected incoming reservation is released; balance unchanged."""
    yield store.adjust("a", 5)
    yield store.reserve_incoming("a", 30, None)
    state = yield store.settle_incoming("a", 30, False)
    assert state == B(balance=5)
    assert (yield store.get_balance("a")) == state


@pytest_twisted.inlineCallbacks
def test_settle_outgoing_fulfilled_takes_off_balance(store):
    """A fulfilled outgoing reservation is taken off the balance."""
    yield store.reserve_outgoing("a", 30, None)
    state = yield store.settle_outgoing("a", 30, True)
    assert state == B(balance=-30)
    assert (yield store.get_balance("a")) == state


@pytest_twisted.inlineCallbacks
def test_settle_outgoing_unfulfilled_releases(store):
    """A rejected outgoing reservation is released; balance unchanged."""
    yield store.reserve_outgoing("a", 30, None)
    state = yield store.settle_outgoing("a", 30, False)
    assert state == B()


@pytest_twisted.inlineCallbacks
def test_settle_leaves_other_reservations(store):
    """Settling one reservation leaves the rest reserved."""
    yield store.reserve_incoming("a", 10, None)
    yield store.reserve_incoming("a", 20, None)
    yield store.reserve_outgoing("a", 5, None)
    assert (yield store.settle_incoming("a", 10, True)) == B(balance=10, incoming_reserved=20, outgoing_reserved=5)
    assert (yield store.settle_outgoing("a", 5, True)) == B(balance=5, incoming_reserved=20)


@pytest_twisted.inlineCallbacks
def test_settle_clamps_reserved_at_zero(store):
    """Settling more than is reserved leaves the reservation at 0, never negative."""
    yield store.reserve_incoming("a", 10, None)
    assert (yield store.settle_incoming("a", 25, True)) == B(balance=25)
    assert (yield store.settle_outgoing("a", 5, False)) == B(balance=25)


@pytest_twisted.inlineCallbacks
def test_released_reservation_frees_the_limit(store):
    """After a release the limit has room again."""
    yield store.reserve_incoming("a", 100, 100)
    assert (yield store.reserve_incoming("a", 1, 100)) is False
    yield store.settle_incoming("a", 100, False)
    assert (yield store.reserve_incoming("a", 100, 100)) is True


# --- adjust, settlements ----------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_adjust(store):
    """adjust adds a signed difference to the balance and returns the state."""
    assert (yield store.adjust("a", 100)) == B(balance=100)
    yield store.reserve_incoming("a", 1, None)
    assert (yield store.adjust("a", -250)) == B(balance=-150, incoming_reserved=1)


@pytest_twisted.inlineCallbacks
def test_add_settlement_adds_to_settling(store):
    """add_settlement puts the settlement in the outbox and adds it to settling."""
    yield store.adjust("a", -100)
    assert (yield store.add_settlement("s1", "a", 60)) is None
    assert (yield store.get_balance("a")) == B(balance=-100, settling=60)
    assert (yield store.pending_settlements()) == [("s1", "a", 60)]


@pytest_twisted.inlineCallbacks
def test_add_settlement_twice_counts_once(store):
    """The same settlement id added twice is in the outbox (and in settling) once."""
    yield store.add_settlement("s1", "a", 60)
    yield store.add_settlement("s1", "a", 60)
    yield store.add_settlement("s1", "b", 99)  # a known id wins, whatever the rest says
    assert (yield store.get_balance("a")) == B(settling=60)
    assert (yield store.get_balance("b")) == B()
    assert (yield store.pending_settlements()) == [("s1", "a", 60)]


@pytest_twisted.inlineCallbacks
def test_pending_settlements_oldest_first(store):
    """pending_settlements lists the outbox in the order settlements were added."""
    for sid, account, amount in [("zz", "a", 1), ("aa", "b", 2), ("mm", "a", 3), ("bb", "c", 4)]:
        yield store.add_settlement(sid, account, amount)
    yield store.complete_settlement("aa")
    yield store.add_settlement("aa", "b", 5)  # completed and added again: now the newest
    assert (yield store.pending_settlements()) == [("zz", "a", 1), ("mm", "a", 3), ("bb", "c", 4), ("aa", "b", 5)]


@pytest_twisted.inlineCallbacks
def test_complete_settlement(store):
    """complete_settlement moves the amount from settling into balance and empties the outbox."""
    yield store.adjust("a", -100)
    yield store.add_settlement("s1", "a", 60)
    assert (yield store.complete_settlement("s1")) is True
    assert (yield store.get_balance("a")) == B(balance=-40)
    assert (yield store.pending_settlements()) == []


@pytest_twisted.inlineCallbacks
def test_complete_settlement_twice_counts_once(store):
    """A second complete_settlement of the same id returns False and changes nothing."""
    yield store.add_settlement("s1", "a", 60)
    assert (yield store.complete_settlement("s1")) is True
    assert (yield store.complete_settlement("s1")) is False
    assert (yield store.complete_settlement("never")) is False
    assert (yield store.get_balance("a")) == B(balance=60)


# --- reads -------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_unknown_account_is_zero(store):
    """An account never touched has an all-zero state and is not in all_balances."""
    assert (yield store.get_balance("nobody")) == B()
    assert "nobody" not in (yield store.all_balances())


@pytest_twisted.inlineCallbacks
def test_all_balances(store):
    """all_balances holds every account touched, with its state."""
    yield store.adjust("a", 1)
    yield store.reserve_incoming("b", 2, None)
    yield store.reserve_outgoing("c", 3, None)
    yield store.add_settlement("s", "d", 4)
    assert (yield store.all_balances()) == {
        "a": B(balance=1), "b": B(incoming_reserved=2), "c": B(outgoing_reserved=3), "d": B(settling=4)}


@pytest_twisted.inlineCallbacks
def test_account_ids_are_opaque(store):
    """Account ids with separators, spaces and non-ASCII are kept apart and intact."""
    ids = ["a:b", "a", "b:a", "ünï côdé", "x/y.z", "accounts", "b:"]
    for n, account in enumerate(ids):
        yield store.adjust(account, n + 1)
    balances = yield store.all_balances()
    assert {k: v.balance for k, v in balances.items()} == {a: n + 1 for n, a in enumerate(ids)}
    yield store.add_settlement("id:with:colons", "a:b", 7)
    assert (yield store.pending_settlements()) == [("id:with:colons", "a:b", 7)]
    assert (yield store.complete_settlement("id:with:colons")) is True
    assert (yield store.get_balance("a:b")).balance == 8


# --- recover -----------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_recover_releases_incoming_and_commits_outgoing(store):
    """recover: incoming reservations released, outgoing ones committed; returns what changed."""
    yield store.adjust("a", 100)
    yield store.reserve_incoming("a", 30, None)
    yield store.reserve_outgoing("a", 20, None)
    yield store.reserve_outgoing("b", 5, None)
    yield store.reserve_incoming("c", 7, None)
    yield store.adjust("d", 1)
    yield store.add_settlement("s", "d", 9)
    changed = yield store.recover()
    assert changed == {"a": B(balance=80), "b": B(balance=-5), "c": B()}
    assert (yield store.all_balances()) == {"a": B(balance=80), "b": B(balance=-5), "c": B(), "d": B(balance=1, settling=9)}
    assert (yield store.pending_settlements()) == [("s", "d", 9)]
    assert (yield store.recover()) == {}


@pytest_twisted.inlineCallbacks
def test_recover_after_partial_settles(store):
    """Only what is still reserved is released or committed."""
    yield store.reserve_outgoing("a", 20, None)
    yield store.reserve_outgoing("a", 30, None)
    yield store.settle_outgoing("a", 20, True)
    yield store.reserve_incoming("a", 10, None)
    yield store.reserve_incoming("a", 5, None)
    yield store.settle_incoming("a", 10, True)
    assert (yield store.recover()) == {"a": B(balance=-40)}


# --- key/value ---------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_kv_put_get_delete(store):
    """put stores a string, get returns it (None when absent), delete removes it (absent: no-op)."""
    assert (yield store.get("k")) is None
    assert (yield store.put("k", "v1")) is None
    assert (yield store.get("k")) == "v1"
    yield store.put("k", "v2")
    assert (yield store.get("k")) == "v2"
    assert (yield store.delete("k")) is None
    assert (yield store.get("k")) is None
    yield store.delete("k")


@pytest_twisted.inlineCallbacks
def test_kv_values_are_kept_verbatim(store):
    """Values that look like numbers, empty strings, JSON and non-ASCII come back unchanged."""
    values = {"n": "123", "f": "1.5", "neg": "-7", "e": "", "j": '{"a": [1, 2]}', "u": "ünï\ncode", "big": str(U64)}
    for key, value in values.items():
        yield store.put(key, value)
    for key, value in values.items():
        got = yield store.get(key)
        assert got == value and type(got) is str


@pytest_twisted.inlineCallbacks
def test_kv_keys_by_prefix(store):
    """keys(prefix) lists the keys starting with prefix, sorted; '' lists all."""
    for key in ["acct:b", "acct:a", "plugin:x", "acc", "acct:"]:
        yield store.put(key, "1")
    assert (yield store.keys("acct:")) == ["acct:", "acct:a", "acct:b"]
    assert (yield store.keys("")) == ["acc", "acct:", "acct:a", "acct:b", "plugin:x"]
    assert (yield store.keys("nope")) == []
    yield store.delete("acct:a")
    assert (yield store.keys("acct:")) == ["acct:", "acct:b"]


# --- big amounts --------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_uint64_amounts(store):
    """Amounts up to 2**64-1 (the ILP maximum) are exact, in limits too."""
    assert (yield store.reserve_incoming("a", U64, U64)) is True
    assert (yield store.reserve_incoming("a", 1, U64)) is False
    assert (yield store.settle_incoming("a", U64, True)) == B(balance=U64)
    assert (yield store.reserve_incoming("a", 1, U64)) is False
    assert (yield store.reserve_incoming("a", 0, U64)) is True
    assert (yield store.adjust("a", 1)) == B(balance=2**64)


@pytest_twisted.inlineCallbacks
def test_negative_balances_beyond_int64(store):
    """Balances below -2**63 and minimums beyond int64 are exact."""
    assert (yield store.reserve_outgoing("a", U64, -(2**64))) is True
    assert (yield store.settle_outgoing("a", U64, True)) == B(balance=-U64)
    assert (yield store.reserve_outgoing("a", 1, -(2**64))) is True  # -U64 - 1 == -2**64
    assert (yield store.reserve_outgoing("a", 1, -(2**64))) is False
    yield store.settle_outgoing("a", 1, True)
    assert (yield store.adjust("a", -(2**70))) == B(balance=-(2**64) - 2**70)
    assert (yield store.adjust("a", 2**70 + 2**64)) == B()


@pytest_twisted.inlineCallbacks
def test_big_settlements(store):
    """Settlement amounts beyond int64 are exact through the outbox."""
    yield store.adjust("a", -(3 * 2**63))
    yield store.add_settlement("s", "a", 2 * U64)
    assert (yield store.pending_settlements()) == [("s", "a", 2 * U64)]
    assert (yield store.get_balance("a")) == B(balance=-(3 * 2**63), settling=2 * U64)
    yield store.complete_settlement("s")
    assert (yield store.get_balance("a")) == B(balance=2 * U64 - 3 * 2**63)


_MAGNITUDES = [0, 1, 9, 10**7 - 1, 10**7, 10**14, 10**15 - 1, 10**15, 10**15 + 1, 2**53 - 1, 2**53, 2**53 + 1,
               2**63 - 1, 2**63, 2**63 + 1, U64, 2**64, 10**20, 10**25 + 10**7]


@pytest_twisted.inlineCallbacks
def test_random_operations_match_the_reference(store):
    """600 random operations with amounts around every precision boundary (2**53, 10**15,
    2**63, 2**64) give the same results as the memory store."""
    rng = random.Random(1729)
    model = MemoryStore()

    def amount():
        return max(0, rng.choice(_MAGNITUDES) + rng.choice([-1, 0, 0, 1]))

    def limit():
        return rng.choice([None, rng.choice(_MAGNITUDES) * rng.choice([1, -1]) + rng.randint(-2, 2)])

    for step in range(600):
        account = rng.choice(["a", "b"])
        op = rng.randrange(6)
        if op == 0:
            call = ("reserve_incoming", account, amount(), limit())
        elif op == 1:
            call = ("reserve_outgoing", account, amount(), limit())
        elif op == 2:
            call = ("settle_incoming", account, amount(), rng.random() < 0.5)
        elif op == 3:
            call = ("settle_outgoing", account, amount(), rng.random() < 0.5)
        elif op == 4:
            call = ("adjust", account, amount() * rng.choice([1, -1]))
        else:
            call = ("get_balance", account)
        expected = yield getattr(model, call[0])(*call[1:])
        got = yield getattr(store, call[0])(*call[1:])
        assert got == expected, f"step {step}: {call}"
    assert (yield store.all_balances()) == (yield model.all_balances())
    assert (yield store.recover()) == (yield model.recover())


# --- durability ---------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_reopen_sees_committed_state(durable_stores):
    """Close, then a new store object on the same file / Redis sees every committed change."""
    store = yield durable_stores.open_later()
    yield store.adjust("a", -(2**65))
    yield store.reserve_incoming("a", 5, None)
    yield store.reserve_outgoing("b", 7, None)
    yield store.settle_incoming("a", 2, True)
    yield store.add_settlement("s2", "a", 9)
    yield store.add_settlement("s1", "b", 3)
    yield store.put("plugin:x", "state")
    yield store.put("gone", "x")
    yield store.delete("gone")
    before = yield store.all_balances()
    yield store.close()

    again = yield durable_stores.open_later()
    assert (yield again.all_balances()) == before
    assert (yield again.pending_settlements()) == [("s2", "a", 9), ("s1", "b", 3)]
    assert (yield again.keys("")) == ["plugin:x"]
    assert (yield again.get("plugin:x")) == "state"
    assert (yield again.recover()) == {"a": B(balance=-(2**65) + 2, settling=9), "b": B(balance=-7, settling=3)}
    yield again.add_settlement("s3", "a", 1)
    assert [sid for sid, _, _ in (yield again.pending_settlements())] == ["s2", "s1", "s3"]


@pytest_twisted.inlineCallbacks
def test_committed_state_is_visible_to_a_second_store_before_close(durable_stores):
    """A commit's Deferred fires only when the change is durable: a store opened afterwards
    (sqlite: after the first is closed without further writes; redis: a second connection
    while the first is open) sees it."""
    store = yield durable_stores.open_later()
    yield gatherResults([store.adjust("a", 1) for _ in range(50)])
    if durable_stores.kind == "sqlite":
        # the exclusive lock is released by close(), which has nothing left to write
        yield store.close()
    other = yield durable_stores.open_later()
    assert (yield other.get_balance("a")) == B(balance=50)
