"""``expire``: outgoing. R00 when the next hop does not answer before the outgoing expiry.

The deadline runs on the injected clock's timer wheel (:func:`ilptx.core.timer_wheel.wheel_for`,
shared with the BTP response timeouts: no ``callLater`` per Prepare); it fires at the expiry or
at most one wheel tick (1/64 s) after it, never before. Then the next hop's Deferred is
cancelled (the ledger plugin drops its pending request) and the sender gets ``R00 Transfer
Timed Out`` (RFC 27), as the reference's expire middleware does.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from zope.interface import implementer

from ilptx.core.middleware import Middleware
from ilptx.core.timer_wheel import wheel_for
from ilptx.errors import TransferTimedOutError
from ilptx.interfaces import IMiddleware

__all__ = ["ExpireMiddleware", "create", "NAME"]

NAME = "expire"


@implementer(IMiddleware)
class ExpireMiddleware(Middleware):
    """:param clock: an ``IReactorTime`` (``task.Clock`` in tests)."""

    name = NAME

    def __init__(self, clock) -> None:
        self._wheel = wheel_for(clock)

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Fail with R00 at ``prepare.expires_at`` if the next hop has not answered."""
        d = next_handler(account, prepare)
        if d.called:
            return d
        state = [False]

        def expire() -> None:
            state[0] = True
            d.cancel()

        timer = self._wheel.call_at(prepare.expires_at.timestamp(), expire)

        def settle(result):
            if timer.active():
                timer.cancel()
            return result

        def timed_out(failure):
            if state[0] and failure.check(CancelledError):
                raise TransferTimedOutError(f"packet expired. account={account.id}")
            return failure

        return d.addBoth(settle).addErrback(timed_out)


def create(options, *, account, services) -> ExpireMiddleware:
    """Every account."""
    return ExpireMiddleware(services.clock)
