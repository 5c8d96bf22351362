"""The hashed timer wheel: one callLater for every deadline, never early, at most one tick late."""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from ilptx.core.timer_wheel import RESOLUTION, SLOTS, TimerWheel, wheel_for

START = 1_700_000_000


def wheel():
    clock = Clock()
    clock.advance(START)
    return clock, TimerWheel(clock)


def test_deadline_on_a_tick_fires_exactly_then():
    """A whole-second deadline (35 s) fires at exactly 35 s, not a moment before."""
    clock, w = wheel()
    out = []
    w.call_later(35, out.append, "x")
    clock.advance(34.999)
    assert out == []
    clock.advance(0.001)
    assert out == ["x"]


def test_deadlines_fire_never_early_and_at_most_one_tick_late():
    """300 random deadlines, clock stepped by 1 ms: each fires at or after its time, within one tick."""
    clock, w = wheel()
    rng = random.Random(12)
    fired = {}
    whens = {}
    for i in range(300):
        timer = w.call_later(rng.uniform(0, 3), lambda i=i: fired.__setitem__(i, clock.seconds()))
        whens[i] = timer.when
    for _ in range(3100):
        clock.advance(0.001)
    assert sorted(fired) == list(range(300))
    for i, at in fired.items():
        assert whens[i] <= at <= whens[i] + RESOLUTION + 0.001, (i, whens[i], at)


def test_deadlines_fire_in_time_order_even_in_one_jump():
    """Deadlines added in shuffled order fire in order of their time (ties: order added), one advance for all."""
    clock, w = wheel()
    delays = [0.5, 0.01, 7.0, 0.011, 3.0, 0.01, 20.0]
    out = []
    for n, delay in enumerate(delays):
        w.call_later(delay, out.append, (delay, n))
    clock.advance(30)
    assert out == sorted((delay, n) for n, delay in enumerate(delays))


def test_cancel_forgets_the_deadline_and_the_last_cancel_drops_the_call_later():
    """cancel(): the callback never runs, active() is False, and no callLater is left once none is pending."""
    clock, w = wheel()
    out = []
    a = w.call_later(1, out.append, "a")
    b = w.call_later(1, out.append, "b")
    assert len(clock.getDelayedCalls()) == 1 and a.active()
    a.cancel()
    a.cancel()  # a no-op the second time
    assert not a.active() and len(w) == 1
    clock.advance(1)
    assert out == ["b"] and not b.active() and len(w) == 0
    c = w.call_later(5, out.append, "c")
    c.cancel()
    assert clock.getDelayedCalls() == [] and len(w) == 0
    clock.advance(10)
    assert out == ["b"]


def test_many_deadlines_in_one_slot_share_one_call_later():
    """1000 deadlines in one tick: one callLater; all fire in the order added."""
    clock, w = wheel()
    out = []
    for i in range(1000):
        w.call_later(2.0, out.append, i)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(2.0)
    assert out == list(range(1000))
    assert clock.getDelayedCalls() == []


def test_far_deadlines_wait_through_wheel_rotations():
    """A deadline 3 rotations away shares a slot with a near one and fires only on its own rotation."""
    clock, w = wheel()
    rotation = SLOTS * RESOLUTION
    out = []
    w.call_later(1.0, out.append, "near")
    w.call_later(1.0 + 3 * rotation, out.append, "far")  # the same slot, three rotations later
    w.call_later(0.5, lambda: None)
    while not out or out[-1] != "far":
        clock.advance(RESOLUTION)
        if clock.seconds() < START + 1.0 + 3 * rotation:
            assert "far" not in out
    assert out == ["near", "far"]
    assert clock.seconds() == START + 1.0 + 3 * rotation


def test_a_callback_may_add_and_cancel_timers():
    """A firing callback cancels a later timer due in the same run and adds a new one; both are honoured."""
    clock, w = wheel()
    out = []
    later = w.call_later(0.2, out.append, "cancelled")
    w.call_later(0.1, lambda: (later.cancel(), w.call_later(0.5, out.append, "added"), out.append("first")))
    clock.advance(0.3)
    assert out == ["first"]
    clock.advance(0.5)  # 0.5 s after the run at 0.3 s: off the tick grid, so up to one tick more
    assert out == ["first"]
    clock.advance(RESOLUTION)
    assert out == ["first", "added"]


def test_a_past_deadline_fires_on_the_next_tick():
    """A deadline already passed fires on the next tick, not synchronously."""
    clock, w = wheel()
    out = []
    w.call_later(-1, out.append, "late")
    assert out == []
    clock.advance(RESOLUTION)
    assert out == ["late"]


def test_one_wheel_per_clock():
    """wheel_for: the same wheel for one clock, another for another clock."""
    a, b = Clock(), Clock()
    assert wheel_for(a) is wheel_for(a)
    assert wheel_for(a) is not wheel_for(b)
