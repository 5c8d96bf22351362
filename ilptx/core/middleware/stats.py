"""``stats``: incoming, outgoing and both money pipelines. Counts packets, value and money
per account into :class:`ilptx.interfaces.IStats` (Prometheus in :mod:`ilptx.metrics`).

Results: ``fulfilled`` / ``rejected`` (with the Reject's code) / ``failed`` (an error raised
inside, before it became a Reject) for packets; ``succeeded`` / ``failed`` for money.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, maybeDeferred
from zope.interface import implementer

from ilptx.codec.ilp import Fulfill
from ilptx.core.middleware import Middleware
from ilptx.interfaces import IMiddleware

__all__ = ["StatsMiddleware", "create", "NAME"]

NAME = "stats"


@implementer(IMiddleware)
class StatsMiddleware(Middleware):
    """:param stats: ``IStats``."""

    name = NAME

    def __init__(self, stats) -> None:
        self._stats = stats

    def _packets(self, report, account, prepare, next_handler) -> Deferred:
        d = maybeDeferred(next_handler, account, prepare)
        amount = prepare.amount

        def done(result):
            if type(result) is Fulfill:
                report(account, "fulfilled", "", amount)
            elif hasattr(result, "code"):
                report(account, "rejected", result.code, amount)
            else:  # a Failure
                code = getattr(result.value, "code", "")
                report(account, "failed", code, amount)
            return result

        return d.addBoth(done)

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """Count an incoming Prepare's outcome and value."""
        return self._packets(self._stats.incoming_packet, account, prepare, next_handler)

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Count an outgoing Prepare's outcome and value."""
        return self._packets(self._stats.outgoing_packet, account, prepare, next_handler)

    def _money(self, report, account, amount, next_handler) -> Deferred:
        d = maybeDeferred(next_handler, account, amount)

        def ok(result):
            report(account, "succeeded", amount)
            return result

        def failed(failure):
            report(account, "failed", amount)
            return failure

        return d.addCallbacks(ok, failed)

    def incoming_money(self, account, amount, next_handler) -> Deferred:
        """Count a settlement received."""
        return self._money(self._stats.incoming_money, account, amount, next_handler)

    def outgoing_money(self, account, amount, next_handler) -> Deferred:
        """Count a settlement sent."""
        return self._money(self._stats.outgoing_money, account, amount, next_handler)


def create(options, *, account, services) -> StatsMiddleware:
    """Every account."""
    return StatsMiddleware(services.stats)
