"""One hashed timer wheel for the per-packet deadlines (issue 12).

Every forwarded Prepare has two deadlines: the ``expire`` middleware's (R00 at the outgoing
expiry) and the BTP response timeout of the request that carries it
(:mod:`ilptx.transport.btp_session`). A Twisted ``callLater`` per deadline costs a heap push and
a heap removal in the reactor's timed-call queue each; here all of them share one wheel and
the wheel holds at most one ``callLater`` on the injected clock.

- **Resolution** :data:`RESOLUTION` = 1/64 s (15.625 ms). A power of two, so tick arithmetic
  on the float seconds of ``IReactorTime.seconds()`` is exact: a deadline on a tick boundary
  (whole seconds, and any multiple of 15.625 ms) fires at exactly its time.
- A deadline fires **at or after** its time, never before, and **no later than one tick
  after** it (on a busy reactor, as late as the reactor runs the wheel's ``callLater``).
  Deadlines due in the same run of the wheel fire in order of their time, ties in the order
  they were added.
- :meth:`TimerWheel.call_later` and :meth:`WheelTimer.cancel` are O(1): a timer lives in slot
  ``tick % slots`` (:data:`SLOTS` = 512 slots, one rotation = 8 s); a deadline further away
  stays in its slot over several rotations and is skipped until its tick comes.
- While timers are pending the wheel ticks every resolution (one ``callLater`` for the next
  tick, whatever the number of timers); once none is pending (the last fired or was
  cancelled) it holds no ``callLater`` at all, so a quiet connector, and a test's
  ``Clock.getDelayedCalls()``, sees none. With one Prepare in flight at a time that is one
  ``callLater`` and one cancel per packet for both deadlines (two of each without the wheel).

:func:`wheel_for` gives the one wheel of a clock (the reactor in the connector, a
``task.Clock`` in tests).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable, Optional

__all__ = ["TimerWheel", "WheelTimer", "wheel_for", "RESOLUTION", "SLOTS"]

#: Seconds per tick: 1/64 s = 15.625 ms (a power of two: exact on floats).
RESOLUTION = 1 / 64
#: Slots in the wheel (one rotation = SLOTS × RESOLUTION = 8 s).
SLOTS = 512


class WheelTimer:
    """One deadline on a :class:`TimerWheel` (``DelayedCall``'s ``cancel``/``active`` subset).

    :ivar when: the deadline, in the clock's seconds.
    """

    __slots__ = ("when", "tick", "seq", "func", "args", "_wheel")

    def __init__(self, wheel: "TimerWheel", when: float, tick: int, seq: int, func: Callable, args: tuple) -> None:
        self.when = when
        self.tick = tick
        self.seq = seq
        self.func = func
        self.args = args
        self._wheel: Optional[TimerWheel] = wheel

    def active(self) -> bool:
        """:returns: ``True`` until it fired or was cancelled."""
        return self._wheel is not None

    def cancel(self) -> None:
        """Forget the deadline (O(1)); a no-op once it fired or was cancelled."""
        wheel, self._wheel = self._wheel, None
        if wheel is not None:
            wheel._remove(self)


class TimerWheel:
    """A hashed timer wheel on ``clock``.

    :param clock: ``IReactorTime`` (the reactor; ``task.Clock`` in tests).
    :param resolution: seconds per tick; keep it a power of two (default :data:`RESOLUTION`).
    :param slots: slots in the wheel (default :data:`SLOTS`).
    """

    def __init__(self, clock, resolution: float = RESOLUTION, slots: int = SLOTS) -> None:
        self._clock = clock
        self._resolution = resolution
        self._slots: list[dict[WheelTimer, None]] = [{} for _ in range(slots)]
        self._count = 0
        self._seq = 0
        self._done = math.floor(clock.seconds() / resolution)  # every tick up to this one has run
        self._call: Any = None  # the one callLater, for the next tick, while timers are pending

    def __len__(self) -> int:
        """:returns: the number of pending timers."""
        return self._count

    def call_later(self, delay: float, func: Callable, *args) -> WheelTimer:
        """Call ``func(*args)`` ``delay`` seconds from now (at the earliest; at most one tick later)."""
        return self.call_at(self._clock.seconds() + delay, func, *args)

    def call_at(self, when: float, func: Callable, *args) -> WheelTimer:
        """Call ``func(*args)`` at clock time ``when`` (at the earliest; at most one tick later).

        :returns: a :class:`WheelTimer` (``cancel()``, ``active()``).
        """
        tick = math.ceil(when / self._resolution)
        if tick <= self._done:  # already due: the next run of the wheel
            tick = self._done + 1
        self._seq += 1
        timer = WheelTimer(self, when, tick, self._seq, func, args)
        self._slots[tick % len(self._slots)][timer] = None
        self._count += 1
        if self._call is None:
            self._arm(max(self._done, math.floor(self._clock.seconds() / self._resolution)) + 1)
        return timer

    def _remove(self, timer: WheelTimer) -> None:
        del self._slots[timer.tick % len(self._slots)][timer]
        self._count -= 1
        if self._count == 0 and self._call is not None:
            self._call.cancel()
            self._call = None

    def _arm(self, tick: int) -> None:
        self._call = self._clock.callLater(max(0.0, tick * self._resolution - self._clock.seconds()), self._run)

    def _run(self) -> None:
        self._call = None
        now = self._clock.seconds()
        current = math.floor(now / self._resolution)
        if current > self._done:
            slots, count = self._slots, len(self._slots)
            first = self._done + 1
            ticks = range(first, current + 1) if current - first < count else range(count)
            due: list = []
            for tick in ticks:
                slot = slots[tick % count]
                if slot:
                    due.extend(timer for timer in slot if timer.tick <= current)
            self._done = current
            if due:
                due.sort(key=_order)
                for timer in due:
                    if timer._wheel is not None:  # an earlier callback may have cancelled it
                        timer._wheel = None
                        del slots[timer.tick % count][timer]
                        self._count -= 1
                        timer.func(*timer.args)
        if self._count and self._call is None:  # (a callback adding a timer armed it already)
            self._arm(self._done + 1)


def _order(timer: WheelTimer) -> tuple[float, int]:
    return (timer.when, timer.seq)


_wheels: "weakref.WeakKeyDictionary[Any, TimerWheel]" = weakref.WeakKeyDictionary()


def wheel_for(clock) -> TimerWheel:
    """:returns: the one :class:`TimerWheel` of ``clock`` (made on first use, gone with the clock)."""
    wheel = _wheels.get(clock)
    if wheel is None:
        wheel = _wheels[clock] = TimerWheel(clock)
    return wheel
