"""``expire``: outgoing. R00 when the next hop does not answer before the outgoing expiry.

The timer runs on the injected clock; when it fires the next hop's Deferred is cancelled
(the ledger plugin drops its pending request) and the sender gets ``R00 Transfer Timed Out``
(RFC 27), as the reference's expire middleware does.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from zope.interface import implementer

from ilptx.errors import TransferTimedOutError
from ilptx.interfaces import IMiddleware

__all__ = ["ExpireMiddleware"]


@implementer(IMiddleware)
class ExpireMiddleware:
    """:param clock: an ``IReactorTime`` (``task.Clock`` in tests)."""

    name = "expire"

    def __init__(self, clock) -> None:
        self._clock = clock

    def handle(self, account, prepare, next_handler) -> Deferred:
        """See :meth:`ilptx.interfaces.IMiddleware.handle`; fails with R00 at ``prepare.expires_at``."""
        d = next_handler(account, prepare)
        if d.called:
            return d
        delay = prepare.expires_at.timestamp() - self._clock.seconds()
        state = [False]

        def expire() -> None:
            state[0] = True
            d.cancel()

        timer = self._clock.callLater(max(0.0, delay), expire)

        def settle(result):
            if timer.active():
                timer.cancel()
            return result

        def timed_out(failure):
            if state[0] and failure.check(CancelledError):
                raise TransferTimedOutError(f"packet expired. account={account.id}")
            return failure

        return d.addBoth(settle).addErrback(timed_out)
