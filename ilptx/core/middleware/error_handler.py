"""``errorHandler``: the outermost incoming middleware. Turns what we raise into a Reject.

An :class:`~ilptx.errors.IlpError` becomes a Reject with its code, message and data and
``triggeredBy`` = our ILP address (RFC 27, "ILP Reject"). Any other exception is a bug on
our side and becomes ``T00 Internal Error`` (the reference uses F00; T00 is what RFC 27
defines for "a generic unexpected exception", and tells the sender a retry may work).
Rejects from downstream are values and pass through untouched.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.ilp import ErrorCode, Reject
from ilptx.errors import IlpError
from ilptx.interfaces import IMiddleware

__all__ = ["ErrorHandlerMiddleware"]


@implementer(IMiddleware)
class ErrorHandlerMiddleware:
    """:param address: callable returning the connector's current ILP address."""

    name = "errorHandler"
    log = Logger()

    def __init__(self, address) -> None:
        self._address = address

    def handle(self, account, prepare, next_handler) -> Deferred:
        """See :meth:`ilptx.interfaces.IMiddleware.handle`; never fails: errors become Rejects."""
        try:
            d = next_handler(account, prepare)
        except IlpError as exc:
            return succeed(exc.to_reject(self._address()))
        except Exception:
            return succeed(self._reject(Failure(), account))
        return d.addErrback(self._reject, account)

    def _reject(self, failure: Failure, account) -> Reject:
        exc = failure.value
        if isinstance(exc, IlpError):
            return exc.to_reject(self._address())
        self.log.failure("unexpected error handling a Prepare from {account}", failure, account=account.id)
        return Reject(ErrorCode.T00_INTERNAL_ERROR, self._address(), "internal error", b"")
