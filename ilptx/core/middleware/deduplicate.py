"""``deduplicate``: outgoing. Prepares with the same destination, condition and data share
one outcome instead of being forwarded twice.

As the reference: a Prepare matching a cached one (same destination, execution condition
and data) whose cached amount and expiry are at least as large gets the cached outcome
(in flight: the same future answer; finished: the same answer). Entries are dropped
``packetLifetime`` ms after their expiry, checked every ``cleanupInterval`` ms
(``deduplicate: {cleanupInterval, packetLifetime}``, both default 30000).

Unlike the reference, it runs *before* ``balance`` (see :mod:`ilptx.core.middleware`): a copy
answered from the cache reserves and commits nothing, so the outgoing balance moves once per
Prepare the next hop actually received.
"""

from __future__ import annotations

import hashlib
from typing import Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.core.middleware import Middleware
from ilptx.interfaces import IMiddleware

__all__ = ["DeduplicateMiddleware", "create", "NAME"]

NAME = "deduplicate"
DEFAULT_CLEANUP_INTERVAL = 30000
DEFAULT_PACKET_LIFETIME = 30000


class _Outcome:
    """One forwarded Prepare's answer, shared by every duplicate."""

    __slots__ = ("amount", "expires_at", "result", "waiters")

    def __init__(self, amount: int, expires_at) -> None:
        self.amount = amount
        self.expires_at = expires_at
        self.result = None
        self.waiters: Optional[list[Deferred]] = []

    def settle(self, result):
        self.result = result
        waiters, self.waiters = self.waiters, None
        for d in waiters:
            d.callback(result) if not isinstance(result, Failure) else d.errback(result)
        return result

    def share(self) -> Deferred:
        if self.waiters is None:
            if isinstance(self.result, Failure):
                d: Deferred = Deferred()
                d.errback(self.result)
                return d
            return succeed(self.result)
        d = Deferred()
        self.waiters.append(d)
        return d


@implementer(IMiddleware)
class DeduplicateMiddleware(Middleware):
    """:param clock: ``IReactorTime``. :param cleanup_interval_ms, packet_lifetime_ms: ms."""

    name = NAME

    def __init__(self, clock, cleanup_interval_ms: int, packet_lifetime_ms: int) -> None:
        self._clock = clock
        self._cleanup_interval = cleanup_interval_ms / 1000.0
        self._lifetime = packet_lifetime_ms / 1000.0
        self.cache: dict[bytes, _Outcome] = {}
        self._loop = LoopingCall(self.cleanup)
        self._loop.clock = clock

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Answer a duplicate from the cache; otherwise forward and remember the outcome."""
        key = hashlib.sha256(
            prepare.execution_condition + prepare.destination.encode("ascii") + b"\0" + prepare.data
        ).digest()[:16]
        cached = self.cache.get(key)
        if cached is not None and cached.amount >= prepare.amount and cached.expires_at >= prepare.expires_at:
            return cached.share()
        outcome = self.cache[key] = _Outcome(prepare.amount, prepare.expires_at)
        return next_handler(account, prepare).addBoth(outcome.settle)

    def cleanup(self) -> None:
        """Forget outcomes whose expiry passed more than ``packetLifetime`` ago."""
        now = self._clock.seconds()
        stale = [k for k, o in self.cache.items() if o.expires_at.timestamp() + self._lifetime < now]
        for key in stale:
            del self.cache[key]

    def start(self) -> None:
        """Start the cleanup timer."""
        if not self._loop.running:
            self._loop.start(self._cleanup_interval, now=False)

    def stop(self) -> None:
        """Stop the cleanup timer."""
        if self._loop.running:
            self._loop.stop()


def create(options, *, account, services) -> DeduplicateMiddleware:
    """Every account."""
    cfg = account.settings.get("deduplicate") or {}
    return DeduplicateMiddleware(services.clock, cfg.get("cleanupInterval", DEFAULT_CLEANUP_INTERVAL),
                                 cfg.get("packetLifetime", DEFAULT_PACKET_LIFETIME))
