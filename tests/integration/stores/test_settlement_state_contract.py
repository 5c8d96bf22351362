"""The settlement state contract (TransferLog, MaxValueTracker, ScaleConverter), pinned for the
state kept in every store: memory, sqlite (a temporary file) and redis (the session's real
redis-server). It lives with the store tests for their fixtures (``stores``).

"Reload" is a new store object on the same file / Redis prefix (for memory: a new log object on
the same store), as after a restart of the connector.
"""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults, inlineCallbacks
from zope.interface.verify import verifyObject

from ilptx.settlement import (
    CANCELLED, FULFILLED, PREPARED, SCALE_DROPS, SCALE_GWEI, SCALE_WEI, DuplicateTransferError, IMaxValueTracker,
    ISettlementState, ITransferLog, MaxEntry, MaxValueTracker, ScaleConverter, Transfer,
    TransferAlreadyCancelledError, TransferAlreadyFulfilledError, TransferLimitError, TransferLog, TransferLogSums,
    TransferNotFoundError, make_settlement_state,
)
from ilptx.settlement.state import MemorySettlementState

U64 = 2**64 - 1
S = TransferLogSums


class Settle:
    """An open store of one kind and the settlement state in it; :meth:`reload` starts over
    on the same backing, as a restarted process would."""

    def __init__(self, stores) -> None:
        self.stores = stores
        self.store = None
        self.state = None

    @inlineCallbacks
    def reload(self):
        """Close the store (durable kinds), open a new one on the same backing and a new state."""
        if self.store is None or self.stores.kind != "memory":
            if self.store is not None:
                yield self.store.close()
            self.store = yield self.stores.open_later()
        self.state = make_settlement_state(self.store)
        yield self.state.open()
        return self.state

    def log(self, key: str = "peer") -> TransferLog:
        return TransferLog(self.state, key)


@pytest.fixture
def settle(stores):
    """A :class:`Settle` with the state open, for each kind of store."""
    s = Settle(stores)
    pytest_twisted.blockon(s.reload())
    return s


@pytest.fixture
def log(settle):
    """A transfer log named ``peer`` in each kind of store."""
    return settle.log()


def test_provides_the_interfaces(settle, log):
    """The state provides ISettlementState; TransferLog and MaxValueTracker their interfaces."""
    assert verifyObject(ISettlementState, settle.state)
    assert verifyObject(ITransferLog, log)
    assert verifyObject(IMaxValueTracker, MaxValueTracker(settle.state, "best"))


# --- transfers and sums ------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_prepare_counts_in_fulfilled_and_prepared_only(log):
    """A prepare adds its amount to IFP (incoming) or OFP (outgoing), not to IF / OF."""
    assert (yield log.get_sums()) == S()
    assert (yield log.prepare("in", 10, True)) is True
    assert (yield log.prepare("out", 3, False)) is True
    assert (yield log.get_sums()) == S(incoming_fulfilled_and_prepared=10, outgoing_fulfilled_and_prepared=3)
    assert (yield log.get("in")) == Transfer("in", True, 10, "", PREPARED, None)


@pytest_twisted.inlineCallbacks
def test_fulfill_moves_into_fulfilled(log):
    """fulfill adds the amount to IF / OF (IFP / OFP keep it) and stores the fulfillment."""
    yield log.prepare("in", 10, True, "cond")
    yield log.prepare("out", 3, False)
    assert (yield log.fulfill("in", "ful")) is True
    assert (yield log.fulfill("out")) is True
    assert (yield log.get_sums()) == S(10, 10, 3, 3)
    assert (yield log.get_sums()).balance == 7
    assert (yield log.get("in")) == Transfer("in", True, 10, "cond", FULFILLED, "ful")


@pytest_twisted.inlineCallbacks
def test_data_and_fulfillment_are_kept_verbatim(log):
    """Data and fulfillment (JSON, quotes, slashes, non-ASCII, empty) come back exactly, also
    after the transfer changed state; a replay with the same data is recognised."""
    data = '{"claim": "0x01/02", "note": "caf\u00e9 \u2713 \\ \\"}'
    yield log.prepare("a/b:c", 1, True, data)
    yield log.fulfill("a/b:c", "f\u00fcl\"/")
    assert (yield log.get("a/b:c")) == Transfer("a/b:c", True, 1, data, FULFILLED, "f\u00fcl\"/")
    assert (yield log.prepare("a/b:c", 1, True, data)) is False
    yield log.prepare("e", 2, False, "")
    yield log.cancel("e")
    assert (yield log.get("e")) == Transfer("e", False, 2, "", CANCELLED, None)


@pytest_twisted.inlineCallbacks
def test_cancel_releases_the_prepared_amount(log):
    """cancel takes the amount off IFP / OFP; IF / OF never saw it."""
    yield log.prepare("in", 10, True)
    yield log.prepare("out", 3, False)
    yield log.prepare("keep", 1, True)
    assert (yield log.cancel("in")) is True
    assert (yield log.cancel("out")) is True
    assert (yield log.get_sums()) == S(incoming_fulfilled_and_prepared=1)
    assert (yield log.get("out")).state == CANCELLED


@pytest_twisted.inlineCallbacks
def test_same_id_same_content_is_a_noop(log):
    """Preparing a known id with the same direction, amount and data returns False and changes
    nothing, in every state (a replay)."""
    yield log.prepare("a", 5, True, "x")
    assert (yield log.prepare("a", 5, True, "x")) is False
    yield log.fulfill("a")
    assert (yield log.prepare("a", 5, True, "x")) is False
    yield log.prepare("b", 2, False)
    yield log.cancel("b")
    assert (yield log.prepare("b", 2, False)) is False
    assert (yield log.get_sums()) == S(5, 5, 0, 0)
    assert (yield log.get("a")).state == FULFILLED
    assert (yield log.get("b")).state == CANCELLED


@pytest_twisted.inlineCallbacks
def test_same_id_other_content_is_an_error(log):
    """A known id with another amount, direction or data raises DuplicateTransferError and
    changes nothing."""
    yield log.prepare("a", 5, True, "x")
    for amount, incoming, data in ((6, True, "x"), (5, False, "x"), (5, True, "y")):
        with pytest.raises(DuplicateTransferError, match="transfer a is already in the log"):
            yield log.prepare("a", amount, incoming, data)
    assert (yield log.get_sums()) == S(incoming_fulfilled_and_prepared=5)
    assert (yield log.get("a")) == Transfer("a", True, 5, "x")


@pytest_twisted.inlineCallbacks
def test_fulfill_and_cancel_are_idempotent(log):
    """A second fulfill / cancel returns False and counts nothing twice (the first fulfillment stays)."""
    yield log.prepare("f", 5, True)
    yield log.prepare("c", 7, False)
    yield log.fulfill("f", "one")
    assert (yield log.fulfill("f", "two")) is False
    yield log.cancel("c")
    assert (yield log.cancel("c")) is False
    assert (yield log.get_sums()) == S(5, 5, 0, 0)
    assert (yield log.get("f")).fulfillment == "one"


@pytest_twisted.inlineCallbacks
def test_fulfill_after_cancel_and_cancel_after_fulfill_fail(log):
    """Fulfill of a cancelled transfer and cancel of a fulfilled one raise and change nothing."""
    yield log.prepare("f", 5, True)
    yield log.prepare("c", 7, True)
    yield log.fulfill("f")
    yield log.cancel("c")
    with pytest.raises(TransferAlreadyFulfilledError, match="f is fulfilled"):
        yield log.cancel("f")
    with pytest.raises(TransferAlreadyCancelledError, match="c is cancelled"):
        yield log.fulfill("c")
    assert (yield log.get_sums()) == S(5, 5, 0, 0)


@pytest_twisted.inlineCallbacks
def test_unknown_transfer_is_not_found(log):
    """fulfill, cancel and get of an unknown id raise TransferNotFoundError (naming log and id)."""
    for call in (lambda: log.fulfill("nope"), lambda: log.cancel("nope"), lambda: log.get("nope")):
        with pytest.raises(TransferNotFoundError, match="transfer log peer: no transfer nope"):
            yield call()
    assert (yield log.get_sums()) == S()


@pytest_twisted.inlineCallbacks
def test_maximum_limits_incoming_fulfilled_and_prepared(log):
    """An incoming prepare passes while IFP + amount − OF <= maximum; over it, TransferLimitError
    and nothing changes; outgoing fulfilled transfers make room (JS setMaximum)."""
    yield log.set_maximum(100)
    assert (yield log.prepare("a", 60, True)) is True
    assert (yield log.prepare("b", 40, True)) is True  # exactly 100
    with pytest.raises(TransferLimitError, match="> maximum 100"):
        yield log.prepare("c", 1, True)
    assert (yield log.get_sums()) == S(incoming_fulfilled_and_prepared=100, maximum=100)
    yield log.prepare("out", 30, False)
    with pytest.raises(TransferLimitError):
        yield log.prepare("c", 1, True)  # a prepared outgoing transfer makes no room
    yield log.fulfill("out")
    assert (yield log.prepare("c", 30, True)) is True
    with pytest.raises(TransferLimitError):
        yield log.prepare("d", 1, True)
    assert (yield log.prepare("d", 1, False)) is True  # outgoing ignores the maximum


@pytest_twisted.inlineCallbacks
def test_minimum_limits_outgoing_fulfilled_and_prepared(log):
    """An outgoing prepare passes while IF − (OFP + amount) >= minimum; incoming fulfilled
    transfers make room (JS setMinimum)."""
    yield log.set_minimum(-50)
    assert (yield log.prepare("a", 50, False)) is True
    with pytest.raises(TransferLimitError, match="< minimum -50"):
        yield log.prepare("b", 1, False)
    yield log.prepare("in", 20, True)
    with pytest.raises(TransferLimitError):
        yield log.prepare("b", 1, False)
    yield log.fulfill("in")
    assert (yield log.prepare("b", 20, False)) is True
    assert (yield log.get_sums()) == S(20, 20, 0, 70, minimum=-50)
    assert (yield log.prepare("c", 10**6, True)) is True  # incoming ignores the minimum


@pytest_twisted.inlineCallbacks
def test_limits_can_be_changed_and_removed(log):
    """set_maximum / set_minimum replace the limit; None removes it; a cancel frees room."""
    yield log.set_maximum(0)
    yield log.set_minimum(0)
    with pytest.raises(TransferLimitError):
        yield log.prepare("a", 1, True)
    with pytest.raises(TransferLimitError):
        yield log.prepare("b", 1, False)
    yield log.set_maximum(10)
    yield log.prepare("a", 10, True)
    yield log.cancel("a")
    assert (yield log.prepare("a2", 10, True)) is True
    yield log.set_maximum(None)
    yield log.set_minimum(None)
    assert (yield log.prepare("big", U64, True)) is True
    assert (yield log.prepare("out", U64, False)) is True
    sums = yield log.get_sums()
    assert (sums.maximum, sums.minimum) == (None, None)


@pytest_twisted.inlineCallbacks
def test_concurrent_prepares_never_pass_the_maximum(log):
    """300 prepares of 7 started at once against a maximum of 1000: exactly 142 pass and IFP is
    their sum."""
    yield log.set_maximum(1000)
    results = yield gatherResults([log.prepare(f"t{n}", 7, True).addErrback(
        lambda f: f.trap(TransferLimitError) and False) for n in range(300)])
    assert sum(results) == 1000 // 7
    assert (yield log.get_sums()).incoming_fulfilled_and_prepared == 7 * (1000 // 7)


@pytest_twisted.inlineCallbacks
def test_logs_are_separate(settle):
    """Two logs in one store share neither transfers, sums nor limits."""
    a, b = settle.log("a"), settle.log("b")
    yield a.set_maximum(5)
    yield a.prepare("t", 5, True)
    assert (yield b.prepare("t", 9, False)) is True
    assert (yield a.get_sums()) == S(incoming_fulfilled_and_prepared=5, maximum=5)
    assert (yield b.get_sums()) == S(outgoing_fulfilled_and_prepared=9)
    assert [t.id for t in (yield b.prepared())] == ["t"]


@pytest_twisted.inlineCallbacks
def test_big_amounts_round_trip(log):
    """Amounts beyond uint64 and int64 sum exactly, and limits compare exactly."""
    yield log.set_maximum(2 * U64)
    yield log.prepare("a", U64, True)
    yield log.prepare("b", U64, True)
    with pytest.raises(TransferLimitError):
        yield log.prepare("c", 1, True)
    yield log.fulfill("a")
    yield log.set_minimum(-(10**30))
    yield log.prepare("o", 10**30 + U64, False)
    assert (yield log.get_sums()) == S(U64, 2 * U64, 0, 10**30 + U64, 2 * U64, -(10**30))
    assert (yield log.get("o")).amount == 10**30 + U64


@pytest_twisted.inlineCallbacks
def test_bad_arguments_errback(log):
    """Wrong types and negative amounts fail the Deferred (TypeError / ValueError) and change nothing."""
    bad = [lambda: log.prepare("a", 1.0, True), lambda: log.prepare("a", True, True),
           lambda: log.prepare("a", 1, 1), lambda: log.prepare(1, 1, True), lambda: log.prepare("a", 1, True, None),
           lambda: log.fulfill("a", b"x"), lambda: log.set_maximum("10")]
    for call in bad:
        with pytest.raises(TypeError):
            yield call()
    with pytest.raises(ValueError, match="amount must be >= 0"):
        yield log.prepare("a", -1, True)
    assert (yield log.get_sums()) == S()


# --- reload (a restarted process) --------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_reload_keeps_prepared_amounts(settle):
    """After a reload the four sums still count the prepared (in-flight) transfers, prepared()
    lists them, and they can be fulfilled or cancelled (the JS log resets IFP/OFP to IF/OF)."""
    log = settle.log()
    yield log.prepare("in1", 10, True)
    yield log.prepare("in2", 20, True)
    yield log.prepare("out1", 3, False)
    yield log.prepare("done", 4, False)
    yield log.fulfill("done")
    before = yield log.get_sums()
    yield settle.reload()
    log = settle.log()
    assert (yield log.get_sums()) == before == S(0, 30, 4, 7)
    assert [(t.id, t.amount, t.incoming) for t in (yield log.prepared())] == [
        ("in1", 10, True), ("in2", 20, True), ("out1", 3, False)]
    assert (yield log.prepare("in1", 10, True)) is False  # a replay after the restart
    yield log.fulfill("in1")
    yield log.cancel("out1")
    assert (yield log.get_sums()) == S(10, 30, 4, 4)
    assert [t.id for t in (yield log.prepared())] == ["in2"]


@pytest_twisted.inlineCallbacks
def test_reload_keeps_limits_maxima_and_leftovers(settle):
    """Limits, the best entry of a tracker and a converter's leftover survive a reload."""
    log = settle.log()
    yield log.set_maximum(10)
    yield log.set_minimum(-3)
    yield log.prepare("a", 10, True)
    yield MaxValueTracker(settle.state, "best").set_if_max(U64 + 1, '{"sig":"0x01"}')
    yield ScaleConverter(settle.state, "wei", SCALE_WEI, SCALE_GWEI).convert(1_999_999_999)
    yield settle.reload()
    log = settle.log()
    with pytest.raises(TransferLimitError):
        yield log.prepare("b", 1, True)
    with pytest.raises(TransferLimitError):
        yield log.prepare("c", 4, False)
    assert (yield MaxValueTracker(settle.state, "best").get_max()) == (U64 + 1, '{"sig":"0x01"}')
    converter = ScaleConverter(settle.state, "wei", SCALE_WEI, SCALE_GWEI)
    assert (yield converter.leftover()) == 999_999_999
    assert (yield converter.convert(1)) == (1, 0)


# --- MaxValueTracker -----------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_max_value_tracker_starts_empty(settle):
    """A new tracker's maximum is (0, None)."""
    assert (yield MaxValueTracker(settle.state, "new").get_max()) == MaxEntry(0, None)


@pytest_twisted.inlineCallbacks
def test_set_if_max_returns_the_previous_maximum(settle):
    """A greater value replaces the maximum and set_if_max returns the previous one; an equal or
    lower value leaves it and returns the entry given (JS setIfMax)."""
    best = MaxValueTracker(settle.state, "best")
    assert (yield best.set_if_max(10, "ten")) == (0, None)
    assert (yield best.set_if_max(25, "25")) == (10, "ten")
    assert (yield best.set_if_max(25, "again")) == (25, "again")
    assert (yield best.set_if_max(3, None)) == (3, None)
    assert (yield best.get_max()) == (25, "25")
    assert (yield best.set_if_max(10**40, None)) == (25, "25")
    assert (yield best.get_max()) == (10**40, None)
    assert (yield MaxValueTracker(settle.state, "other").get_max()) == (0, None)


@pytest_twisted.inlineCallbacks
def test_set_if_max_increments_sum_to_the_maximum(settle):
    """Over 300 values set at once, the increases value − returned.value add up to the final
    maximum: nothing is counted twice (the pattern of a total settled)."""
    best = MaxValueTracker(settle.state, "settled")
    values = random.Random(9).sample(range(1, 10**6), 300)
    returned = yield gatherResults([best.set_if_max(v, str(v)) for v in values])
    assert sum(v - r.value for v, r in zip(values, returned, strict=True)) == max(values)
    assert (yield best.get_max()) == (max(values), str(max(values)))


@pytest_twisted.inlineCallbacks
def test_set_if_max_bad_arguments_errback(settle):
    """A non-int or negative value, or non-str data, fails the Deferred and changes nothing."""
    best = MaxValueTracker(settle.state, "best")
    for value, data, error in ((1.5, None, TypeError), ("2", None, TypeError), (-1, None, ValueError),
                               (2, 2, TypeError)):
        with pytest.raises(error):
            yield best.set_if_max(value, data)
    assert (yield best.get_max()) == (0, None)


# --- ScaleConverter ----------------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_converter_carries_the_leftover(settle):
    """wei → gwei: what is below one gwei is kept and counted into the next conversion."""
    converter = ScaleConverter(settle.state, "peer:in", SCALE_WEI, SCALE_GWEI)
    assert (yield converter.convert(1_500_000_000)) == (1, 500_000_000)
    assert (yield converter.convert(499_999_999)) == (0, 999_999_999)
    assert (yield converter.convert(1)) == (1, 0)
    assert (yield converter.convert(3 * 10**27 + 7)) == (3 * 10**18, 7)
    assert (yield converter.leftover()) == 7
    units_to_drops = ScaleConverter(settle.state, "peer:in", 9, SCALE_DROPS)  # same key, other scales
    assert (yield units_to_drops.leftover()) == 0
    assert (yield units_to_drops.convert(2_500)) == (2, 500)


@pytest_twisted.inlineCallbacks
def test_converter_to_a_finer_scale_is_exact(settle):
    """gwei → wei multiplies exactly and keeps no leftover."""
    converter = ScaleConverter(settle.state, "peer:out", SCALE_GWEI, SCALE_WEI)
    assert (yield converter.convert(U64)) == (U64 * 10**9, 0)
    assert (yield converter.leftover()) == 0
    assert (yield ScaleConverter(settle.state, "same", 9, 9).convert(5)) == (5, 0)


@pytest_twisted.inlineCallbacks
def test_concurrent_conversions_lose_nothing(settle):
    """200 conversions at once: the converted units and the leftover add up to the input exactly."""
    converter = ScaleConverter(settle.state, "many", 12, 9)
    amounts = [random.Random(n).randrange(0, 10**7) for n in range(200)]
    results = yield gatherResults([converter.convert(a) for a in amounts])
    leftover = yield converter.leftover()
    assert sum(c for c, _ in results) * 1000 + leftover == sum(amounts)
    assert 0 <= leftover < 1000


@pytest_twisted.inlineCallbacks
def test_conversions_match_convert_scale(settle):
    """Random amounts (up to 10**40) over several pairs of scales give exactly what convert_scale
    gives with the leftover carried (the Redis script divides decimal strings)."""
    from ilptx.settlement import convert_scale

    rng = random.Random(5)
    for from_scale, to_scale in ((18, 9), (9, 6), (11, 8), (20, 1), (3, 0)):
        converter = ScaleConverter(settle.state, "pairs", from_scale, to_scale)
        leftover = 0
        for _ in range(40):
            amount = rng.choice([0, 1, 10 ** (from_scale - to_scale) - 1, rng.randrange(10**40)])
            expected = convert_scale(amount, from_scale, to_scale, leftover)
            assert (yield converter.convert(amount)) == expected, (from_scale, to_scale, amount, leftover)
            leftover = expected[1]
        assert (yield converter.leftover()) == leftover


# --- every backend agrees with the rules -------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_random_operations_match_the_memory_reference(settle):
    """400 random operations (prepare, replay, conflict, fulfill, cancel, limits) give the same
    results, errors and sums as the memory backend."""
    reference = TransferLog(MemorySettlementState(), "peer")
    log = settle.log()
    rng = random.Random(17)
    ids = [f"t{n}" for n in range(40)]
    amounts = {}

    def call(target, op, args):
        d = getattr(target, op)(*args)
        return d.addCallbacks(lambda r: ("ok", r), lambda f: ("error", f.type, f.getErrorMessage()))

    for _ in range(400):
        op = rng.choice(["prepare", "prepare", "prepare", "fulfill", "cancel", "set_maximum", "set_minimum"])
        if op == "prepare":
            transfer_id = rng.choice(ids)
            amount = amounts.setdefault(transfer_id, rng.choice([0, 1, 5, 50, 10**20]))
            args = (transfer_id, amount if rng.random() < 0.9 else amount + 1, rng.random() < 0.6, "")
        elif op in ("fulfill", "cancel"):
            args = (rng.choice(ids),)
        else:
            args = (rng.choice([None, -100, 0, 100, 10**21]),)
        expected = yield call(reference, op, args)
        assert (yield call(log, op, args)) == expected, (op, args)
    assert (yield log.get_sums()) == (yield reference.get_sums())
    assert (yield log.prepared()) == (yield reference.prepared())


@pytest_twisted.inlineCallbacks
def test_closed_store_fails_cleanly(durable_stores):
    """Operations on the state of a closed store errback (nothing is half done)."""
    store = yield durable_stores.open_later()
    state = make_settlement_state(store)
    yield state.open()
    yield store.close()
    with pytest.raises(Exception, match="not open"):
        yield TransferLog(state, "peer").prepare("a", 1, True)


@pytest_twisted.inlineCallbacks
def test_redis_scripts_come_back_after_script_flush(redis_server):
    """After SCRIPT FLUSH (as after a Redis restart) the Redis state's operations still run (EVAL)."""
    from ilptx.stores.redis import RedisStore

    store = RedisStore(port=redis_server.port, prefix="flush:")
    yield store.open()
    try:
        state = make_settlement_state(store)
        yield state.open()
        assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
        assert (yield TransferLog(state, "peer").prepare("a", 1, True)) is True
        assert (yield MaxValueTracker(state, "best").set_if_max(3, None)) == (0, None)
        assert (yield TransferLog(state, "peer").get_sums()) == S(incoming_fulfilled_and_prepared=1)
    finally:
        yield store.close()
