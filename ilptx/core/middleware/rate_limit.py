"""``rateLimit``: incoming. ``T05 Rate Limited`` when the account sends too many Prepares
(or settlements).

A token bucket per account: ``rateLimit: {capacity, refillCount, refillPeriod}``, defaults
as the reference: 10000 packets per 60000 ms, capacity = refillCount. One token per
Prepare and per incoming settlement. Message: ``too many requests, throttling.``
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.core.middleware import Middleware
from ilptx.core.token_bucket import TokenBucket
from ilptx.errors import RateLimitedError
from ilptx.interfaces import IMiddleware

__all__ = ["RateLimitMiddleware", "create", "NAME", "DEFAULT_REFILL_PERIOD", "DEFAULT_REFILL_COUNT"]

NAME = "rateLimit"
DEFAULT_REFILL_PERIOD = 60000
DEFAULT_REFILL_COUNT = 10000


@implementer(IMiddleware)
class RateLimitMiddleware(Middleware):
    """:param bucket: the account's :class:`TokenBucket`. :param stats: ``IStats``."""

    name = NAME

    def __init__(self, bucket: TokenBucket, stats) -> None:
        self.bucket = bucket
        self._stats = stats

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """T05 when the bucket is empty."""
        if not self.bucket.take():
            self._stats.rate_limited_packet(account)
            raise RateLimitedError("too many requests, throttling.")
        return next_handler(account, prepare)

    def incoming_money(self, account, amount, next_handler) -> Deferred:
        """T05 when the bucket is empty."""
        if not self.bucket.take():
            self._stats.rate_limited_money(account)
            raise RateLimitedError("too many requests, throttling.")
        return next_handler(account, amount)


def create(options, *, account, services) -> RateLimitMiddleware:
    """Every account is rate limited (the reference does the same, with its defaults)."""
    cfg = account.settings.get("rateLimit") or {}
    refill_count = cfg.get("refillCount", DEFAULT_REFILL_COUNT)
    capacity = cfg.get("capacity") or refill_count  # the reference treats capacity 0 as unset
    bucket = TokenBucket(services.clock, cfg.get("refillPeriod", DEFAULT_REFILL_PERIOD), refill_count, capacity)
    return RateLimitMiddleware(bucket, services.stats)
