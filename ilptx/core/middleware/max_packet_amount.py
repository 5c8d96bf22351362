"""``maxPacketAmount``: incoming. ``F08 Amount Too Large`` for a Prepare over the account's
``maxPacketAmount``, with the RFC 27 data: received amount and maximum, two UInt64
(``InterledgerErrorData.asn``), so the sender can split its payment.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.codec.ilp import AmountTooLargeData
from ilptx.core.middleware import Middleware
from ilptx.errors import AmountTooLargeError
from ilptx.interfaces import IMiddleware

__all__ = ["MaxPacketAmountMiddleware", "create", "NAME"]

NAME = "maxPacketAmount"


@implementer(IMiddleware)
class MaxPacketAmountMiddleware(Middleware):
    """:param maximum: the largest amount accepted, base units."""

    name = NAME

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """F08 (with amounts) when ``prepare.amount`` exceeds the maximum."""
        if prepare.amount > self.maximum:
            raise AmountTooLargeError(
                f"packet size too large. maxAmount={self.maximum} actualAmount={prepare.amount}",
                AmountTooLargeData(prepare.amount, self.maximum).encode())
        return next_handler(account, prepare)


def create(options, *, account, services):
    """Only for accounts with ``maxPacketAmount``."""
    maximum = account.settings.get("maxPacketAmount")
    return MaxPacketAmountMiddleware(int(maximum)) if maximum else None
