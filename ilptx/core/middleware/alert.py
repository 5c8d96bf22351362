"""``alert``: outgoing. A ``T04`` Reject saying ``exceeded maximum balance.`` from the next
hop becomes an alert (GET ``/alerts`` in the admin API).

The peer refused a packet that our own balance says should have passed: typically we owe
the peer money and it restarted before we settled. The Reject itself is relayed unchanged.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.codec.ilp import ErrorCode, Reject
from ilptx.core.middleware import Middleware
from ilptx.interfaces import IMiddleware

__all__ = ["AlertMiddleware", "create", "NAME"]

NAME = "alert"
TRIGGER_MESSAGE = "exceeded maximum balance."


@implementer(IMiddleware)
class AlertMiddleware(Middleware):
    """:param alerts: :class:`ilptx.core.alerts.Alerts`."""

    name = NAME

    def __init__(self, alerts) -> None:
        self._alerts = alerts

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Record an alert for a peer's ``T04 exceeded maximum balance.``."""

        def check(result):
            if (type(result) is Reject and result.code == ErrorCode.T04_INSUFFICIENT_LIQUIDITY
                    and result.message == TRIGGER_MESSAGE):
                self._alerts.add(account.id, result.triggered_by, result.message)
            return result

        return next_handler(account, prepare).addCallback(check)


def create(options, *, account, services) -> AlertMiddleware:
    """Every account."""
    return AlertMiddleware(services.alerts)
