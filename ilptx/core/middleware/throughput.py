"""``throughput``: incoming and outgoing. ``T04 Insufficient Liquidity`` (``exceeded money
bandwidth, throttling.``) when more value passes than ``throughput: {incomingAmount,
outgoingAmount, refillPeriod}`` allows (amounts per ``refillPeriod`` ms, default 1000 ms).

Token buckets of value, with exact integer arithmetic (the reference uses floats).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.core.middleware import Middleware
from ilptx.core.token_bucket import TokenBucket
from ilptx.errors import InsufficientLiquidityError
from ilptx.interfaces import IMiddleware

__all__ = ["ThroughputMiddleware", "create", "NAME", "DEFAULT_REFILL_PERIOD"]

NAME = "throughput"
DEFAULT_REFILL_PERIOD = 1000


@implementer(IMiddleware)
class ThroughputMiddleware(Middleware):
    """:param incoming_bucket: or ``None``. :param outgoing_bucket: or ``None``."""

    name = NAME

    def __init__(self, incoming_bucket, outgoing_bucket) -> None:
        self.incoming_bucket = incoming_bucket
        self.outgoing_bucket = outgoing_bucket
        # a direction without a bucket is not in that pipeline at all
        self.incoming = self._incoming if incoming_bucket is not None else None
        self.outgoing = self._outgoing if outgoing_bucket is not None else None

    def _incoming(self, account, prepare, next_handler) -> Deferred:
        """T04 when the incoming value bucket cannot cover ``prepare.amount``."""
        if not self.incoming_bucket.take(prepare.amount):
            raise InsufficientLiquidityError("exceeded money bandwidth, throttling.")
        return next_handler(account, prepare)

    def _outgoing(self, account, prepare, next_handler) -> Deferred:
        """T04 when the outgoing value bucket cannot cover ``prepare.amount``."""
        if not self.outgoing_bucket.take(prepare.amount):
            raise InsufficientLiquidityError("exceeded money bandwidth, throttling.")
        return next_handler(account, prepare)


def create(options, *, account, services):
    """Only for accounts with ``throughput``."""
    cfg = account.settings.get("throughput")
    if not cfg:
        return None
    period = cfg.get("refillPeriod", DEFAULT_REFILL_PERIOD)
    incoming = TokenBucket(services.clock, period, int(cfg["incomingAmount"])) if cfg.get("incomingAmount") else None
    outgoing = TokenBucket(services.clock, period, int(cfg["outgoingAmount"])) if cfg.get("outgoingAmount") else None
    if incoming is None and outgoing is None:
        return None
    return ThroughputMiddleware(incoming, outgoing)
