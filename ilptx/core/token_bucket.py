"""A token bucket with exact integer arithmetic (for packet counts and for amounts).

``refill_count`` tokens are added evenly over every ``refill_period_ms``, up to
``capacity``. The reference connector uses floats here; amounts are money, so we keep
tokens as integers scaled by the refill period (in microseconds) and never round.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """:param clock: ``IReactorTime``. :param refill_period_ms: > 0. :param refill_count: > 0.
    :param capacity: most tokens held (default ``refill_count``); starts full."""

    __slots__ = ("_clock", "_period_us", "_refill", "_cap_scaled", "_left_scaled", "_last_us")

    def __init__(self, clock, refill_period_ms: int, refill_count: int, capacity: int | None = None) -> None:
        self._clock = clock
        self._period_us = int(refill_period_ms) * 1000
        self._refill = int(refill_count)
        cap = self._refill if capacity is None else int(capacity)
        self._cap_scaled = cap * self._period_us
        self._left_scaled = self._cap_scaled
        self._last_us = int(clock.seconds() * 1_000_000)

    def take(self, count: int = 1) -> bool:
        """Take ``count`` tokens if available. :returns: whether they were taken."""
        now = int(self._clock.seconds() * 1_000_000)
        elapsed = now - self._last_us
        self._last_us = now
        if elapsed > 0:
            self._left_scaled = min(self._cap_scaled, self._left_scaled + elapsed * self._refill)
        need = count * self._period_us
        if self._left_scaled < need:
            return False
        self._left_scaled -= need
        return True

    @property
    def tokens(self) -> int:
        """Whole tokens left (without refilling)."""
        return self._left_scaled // self._period_us
