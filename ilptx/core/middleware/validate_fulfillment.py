"""``validateFulfillment``: outgoing. A Fulfill must carry the preimage of the condition.

A Fulfill whose fulfillment does not hash (SHA-256) to the Prepare's execution condition is
turned into ``F05 Wrong Condition`` (RFC 27): from where the sender stands, the path
returned a fulfillment for a different condition, which is exactly what F05 reports; it is
final because retrying the same condition along the same path cannot succeed, and it is
the code the reference connector and its peers already expect. The next hop's Fulfill is
not passed on, so no balance upstream moves for it.
"""

from __future__ import annotations

import hashlib

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ilptx.codec.ilp import Fulfill
from ilptx.core.middleware import Middleware
from ilptx.errors import WrongConditionError
from ilptx.interfaces import IMiddleware

__all__ = ["ValidateFulfillmentMiddleware", "create", "NAME"]

NAME = "validateFulfillment"

_sha256 = hashlib.sha256


@implementer(IMiddleware)
class ValidateFulfillmentMiddleware(Middleware):
    """Checks SHA-256(fulfillment) == execution condition on every Fulfill from the next hop."""

    name = NAME

    def outgoing(self, account, prepare, next_handler) -> Deferred:
        """Fail with F05 when the Fulfill's fulfillment does not hash to the condition."""
        condition = prepare.execution_condition

        def check(result):
            if type(result) is Fulfill and _sha256(result.fulfillment).digest() != condition:
                raise WrongConditionError(f"fulfillment did not match expected value. account={account.id}")
            return result

        return next_handler(account, prepare).addCallback(check)


def create(options, *, account, services) -> ValidateFulfillmentMiddleware:
    """Every account."""
    return ValidateFulfillmentMiddleware()
