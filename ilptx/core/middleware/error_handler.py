"""``errorHandler``: the outermost incoming middleware. Turns what we raise into a Reject.

An :class:`~ilptx.errors.IlpError` becomes a Reject with its code, message and data and
``triggeredBy`` = our ILP address (RFC 27, "ILP Reject"). Any other exception is a bug on
our side and becomes ``T00 Internal Error`` (the reference uses F00; T00 is what RFC 27
defines for "a generic unexpected exception", and tells the sender a retry may work).
Rejects from downstream are values and pass through untouched. In the incoming money
pipeline it logs the failure and passes it on (the ledger plugin reports it to the peer).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.ilp import ErrorCode, Reject
from ilptx.core.middleware import Middleware
from ilptx.errors import IlpError
from ilptx.interfaces import IMiddleware

__all__ = ["ErrorHandlerMiddleware", "create", "NAME"]

NAME = "errorHandler"


@implementer(IMiddleware)
class ErrorHandlerMiddleware(Middleware):
    """:param address: callable returning the connector's current ILP address."""

    name = NAME
    log = Logger()

    def __init__(self, address) -> None:
        self._address = address

    def incoming(self, account, prepare, next_handler) -> Deferred:
        """Run the rest of the pipeline; never fails: errors (raised or failed) become Rejects."""
        return maybeDeferred(next_handler, account, prepare).addErrback(self._reject, account)

    def incoming_money(self, account, amount, next_handler) -> Deferred:
        """Run the money pipeline; log a failure and pass it on."""
        d = maybeDeferred(next_handler, account, amount)

        def failed(failure: Failure):
            level = "warn" if failure.check(IlpError) else "failure"
            if level == "warn":
                self.log.warn("account {account}: incoming settlement of {amount} refused: {error}",
                              account=account.id, amount=amount, error=failure.getErrorMessage())
            else:
                self.log.failure("account {account}: incoming settlement of {amount} failed", failure,
                                 account=account.id, amount=amount)
            return failure

        return d.addErrback(failed)

    def _reject(self, failure: Failure, account) -> Reject:
        exc = failure.value
        if isinstance(exc, IlpError):
            return exc.to_reject(self._address())
        self.log.failure("unexpected error handling a Prepare from {account}", failure, account=account.id)
        return Reject(ErrorCode.T00_INTERNAL_ERROR, self._address(), "internal error", b"")


def create(options, *, account, services) -> ErrorHandlerMiddleware:
    """Every account gets one."""
    return ErrorHandlerMiddleware(services.address)
