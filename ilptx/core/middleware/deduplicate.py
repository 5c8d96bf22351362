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

The cache stays out of the garbage collector's way (issue 12): it holds every Prepare of the
last ``expiry + packetLifetime``, so at thousands of packets/s its entries would make every
full collection walk hundreds of thousands of objects.

- A **finished** entry is a flat tuple of ints, ``str``, ``bytes`` and an aware ``datetime``
  only — ``(amount, expires_at, FULFILLED, fulfillment, data)``,
  ``(amount, expires_at, REJECTED, code, triggered_by, message, data)`` or
  ``(amount, expires_at, FAILED, code, message, data)`` for an :class:`~ilptx.errors.IlpError`
  raised below (replayed as an ``IlpError`` with the same code, message and data). CPython
  untracks such tuples at the first young collection after they are made (``gc.is_tracked``
  is then ``False``), so they never reach the old generations. Only a failure that is not an
  ``IlpError`` (a bug below) is kept as the ``Failure`` itself.
- An **in-flight** entry is a small :class:`_InFlight` object (the waiting duplicates'
  Deferreds); it is replaced by the finished tuple when the answer arrives.
- The sweep never scans live entries: a heap of ``(drop_at, key)`` in drop order is popped
  while its head is due, at most :data:`SWEEP_CHUNK` (1000) entries per chunk; a longer sweep
  continues :data:`SWEEP_PAUSE` (1 ms) later, so no reactor turn stalls on a large cache.
"""

from __future__ import annotations

import hashlib
import heapq
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.ilp import Fulfill, Reject
from ilptx.core.middleware import Middleware
from ilptx.errors import IlpError
from ilptx.interfaces import IMiddleware

__all__ = ["DeduplicateMiddleware", "create", "NAME", "SWEEP_CHUNK"]

NAME = "deduplicate"
DEFAULT_CLEANUP_INTERVAL = 30000
DEFAULT_PACKET_LIFETIME = 30000
#: Most cache entries one chunk of the sweep drops (well under 1 ms of CPU on CPython).
SWEEP_CHUNK = 1000
#: Seconds between two chunks of one sweep (the reactor serves I/O in between).
SWEEP_PAUSE = 0.001

# the kind of answer a finished entry holds (its third field)
FULFILLED, REJECTED, FAILED = 0, 1, 2


class _InFlight:
    """One forwarded Prepare still waiting for its answer; duplicates wait on it."""

    __slots__ = ("amount", "expires_at", "waiters")

    def __init__(self, amount: int, expires_at: datetime) -> None:
        self.amount = amount
        self.expires_at = expires_at
        self.waiters: list[Deferred] = []

    def share(self) -> Deferred:
        d: Deferred = Deferred()
        self.waiters.append(d)
        return d

    def settle(self, result) -> None:
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.errback(result) if isinstance(result, Failure) else d.callback(result)


def _finished(amount: int, expires_at: datetime, result) -> tuple:
    """:returns: the finished entry for ``result`` (Fulfill, Reject or Failure)."""
    if type(result) is Fulfill:
        return (amount, expires_at, FULFILLED, result.fulfillment, result.data)
    if type(result) is Reject:
        return (amount, expires_at, REJECTED, result.code, result.triggered_by, result.message, result.data)
    exc = result.value if isinstance(result, Failure) else None
    if isinstance(exc, IlpError):
        return (amount, expires_at, FAILED, exc.code, exc.message, exc.data)
    return (amount, expires_at, None, result)


def _replay(entry: tuple) -> Deferred:
    """:returns: a Deferred firing with the answer a finished entry holds."""
    kind = entry[2]
    if kind == FULFILLED:
        return succeed(Fulfill(entry[3], entry[4]))
    if kind == REJECTED:
        return succeed(Reject(entry[3], entry[4], entry[5], entry[6]))
    if kind == FAILED:
        return fail(IlpError(entry[4], entry[5], code=entry[3]))
    result = entry[3]
    return fail(result) if isinstance(result, Failure) else succeed(result)


@implementer(IMiddleware)
class DeduplicateMiddleware(Middleware):
    """:param clock: ``IReactorTime``. :param cleanup_interval_ms, packet_lifetime_ms: ms.

    :ivar cache: ``{key: _InFlight | tuple}``, key the first 16 bytes of SHA-256 over the
        condition, destination and data (see the module docstring for the entry shapes).
    """

    name = NAME

    def __init__(self, clock, cleanup_interval_ms: int, packet_lifetime_ms: int,
                 sweep_chunk: int = SWEEP_CHUNK) -> None:
        self._clock = clock
        self._cleanup_interval = cleanup_interval_ms / 1000.0
        self._lifetime = timedelta(milliseconds=packet_lifetime_ms)
        self._chunk = sweep_chunk
        #: key → a finished entry (tuple) or an :class:`_InFlight`
        self.cache: dict[bytes, Any] = {}
        self._drops: list[tuple[datetime, bytes]] = []  # heap: (expires_at + lifetime, key)
        self._loop = LoopingCall(self.cleanup)
        self._loop.clock = clock
        self._continuation: Optional[IDelayedCall] = None

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Answer a duplicate from the cache; otherwise forward and remember the outcome."""
        key = hashlib.sha256(
            prepare.execution_condition + prepare.destination.encode("ascii") + b"\0" + prepare.data
        ).digest()[:16]
        cached = self.cache.get(key)
        if cached is not None:
            if type(cached) is tuple:
                if cached[0] >= prepare.amount and cached[1] >= prepare.expires_at:
                    return _replay(cached)
            elif cached.amount >= prepare.amount and cached.expires_at >= prepare.expires_at:
                return cached.share()
        amount, expires_at = prepare.amount, prepare.expires_at
        pending = self.cache[key] = _InFlight(amount, expires_at)
        heapq.heappush(self._drops, (expires_at + self._lifetime, key))

        def settle(result):
            if self.cache.get(key) is pending:
                self.cache[key] = _finished(amount, expires_at, result)
            pending.settle(result)
            return result

        return next_handler(account, prepare).addBoth(settle)

    def cleanup(self) -> None:
        """Forget entries whose expiry passed more than ``packetLifetime`` ago.

        Drops at most ``sweep_chunk`` entries now; if more are due, the rest go in further
        chunks of ``sweep_chunk``, :data:`SWEEP_PAUSE` s apart.
        """
        if self._continuation is not None and self._continuation.active():
            self._continuation.cancel()  # the interval came round during a long sweep: one chain only
        self._continuation = None
        now = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        drops, cache = self._drops, self.cache
        for _ in range(self._chunk):
            if not drops or drops[0][0] >= now:
                return
            drop_at, key = heapq.heappop(drops)
            entry = cache.get(key)
            if entry is None:
                continue
            expires_at = entry[1] if type(entry) is tuple else entry.expires_at
            if expires_at + self._lifetime == drop_at:  # else re-cached by a larger Prepare: a later record
                del cache[key]
        if drops and drops[0][0] < now:
            self._continuation = self._clock.callLater(SWEEP_PAUSE, self.cleanup)

    def start(self) -> None:
        """Start the cleanup timer."""
        if not self._loop.running:
            self._loop.start(self._cleanup_interval, now=False)

    def stop(self) -> None:
        """Stop the cleanup timer (and a sweep still under way)."""
        if self._loop.running:
            self._loop.stop()
        if self._continuation is not None and self._continuation.active():
            self._continuation.cancel()
        self._continuation = None


def create(options, *, account, services) -> DeduplicateMiddleware:
    """Every account."""
    cfg = account.settings.get("deduplicate") or {}
    return DeduplicateMiddleware(services.clock, cfg.get("cleanupInterval", DEFAULT_CLEANUP_INTERVAL),
                                 cfg.get("packetLifetime", DEFAULT_PACKET_LIFETIME))
