"""Errors ilptx raises.

:class:`IlpError` and its subclasses carry an ILP error code (RFC 27, "Error Codes"). We
*raise* them for our own failures; one place (the switch's error handler) turns them into a
Reject with our address as ``triggeredBy``. A Reject received from downstream is a value,
relayed unchanged, never an exception.

:class:`ConfigError` stops start-up with one line naming the key and the problem.
"""

from __future__ import annotations

from ilptx.codec.ilp import ErrorCode, Reject

__all__ = [
    "IlpError",
    "BadRequestError",
    "InvalidPacketError",
    "UnreachableError",
    "AmountTooLargeError",
    "WrongConditionError",
    "InternalError",
    "PeerUnreachableError",
    "InsufficientLiquidityError",
    "RateLimitedError",
    "TransferTimedOutError",
    "InsufficientSourceAmountError",
    "InsufficientTimeoutError",
    "ConfigError",
]


class IlpError(Exception):
    """An error with an ILP error code.

    :param message: human-readable text; becomes the Reject's ``message``.
    :param data: bytes for the Reject's ``data`` (e.g. F08 amounts), default empty.
    :cvar code: the three-character ILP error code.
    """

    code: str = ErrorCode.F00_BAD_REQUEST

    def __init__(self, message: str = "", data: bytes = b"", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        if code is not None:
            self.code = code

    def to_reject(self, triggered_by: str) -> Reject:
        """:returns: the Reject that reports this error, ``triggeredBy`` = our address."""
        return Reject(self.code, triggered_by, self.message, self.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r})"


class BadRequestError(IlpError):
    """F00 Bad Request."""

    code = ErrorCode.F00_BAD_REQUEST


class InvalidPacketError(IlpError):
    """F01 Invalid Packet: the ILP packet was syntactically invalid."""

    code = ErrorCode.F01_INVALID_PACKET


class UnreachableError(IlpError):
    """F02 Unreachable: no route to the destination."""

    code = ErrorCode.F02_UNREACHABLE


class AmountTooLargeError(IlpError):
    """F08 Amount Too Large; ``data`` holds received and maximum amounts."""

    code = ErrorCode.F08_AMOUNT_TOO_LARGE


class WrongConditionError(IlpError):
    """F05 Wrong Condition."""

    code = ErrorCode.F05_WRONG_CONDITION


class InternalError(IlpError):
    """T00 Internal Error: a bug or unhandled case on our side."""

    code = ErrorCode.T00_INTERNAL_ERROR


class PeerUnreachableError(IlpError):
    """T01 Peer Unreachable: the next hop is not connected or failed to answer."""

    code = ErrorCode.T01_PEER_UNREACHABLE


class InsufficientLiquidityError(IlpError):
    """T04 Insufficient Liquidity."""

    code = ErrorCode.T04_INSUFFICIENT_LIQUIDITY


class RateLimitedError(IlpError):
    """T05 Rate Limited."""

    code = ErrorCode.T05_RATE_LIMITED


class TransferTimedOutError(IlpError):
    """R00 Transfer Timed Out: the next hop did not answer before the expiry."""

    code = ErrorCode.R00_TRANSFER_TIMED_OUT


class InsufficientSourceAmountError(IlpError):
    """R01 Insufficient Source Amount: the amount after exchange is zero."""

    code = ErrorCode.R01_INSUFFICIENT_SOURCE_AMOUNT


class InsufficientTimeoutError(IlpError):
    """R02 Insufficient Timeout: too little time left to forward safely."""

    code = ErrorCode.R02_INSUFFICIENT_TIMEOUT


class ConfigError(Exception):
    """Invalid configuration.

    ``str(error)`` is one line: ``"<key.path>: <problem>"``, e.g.
    ``"accounts.peer.assetScale: must be an integer 0..255"``.

    :param key: dotted path of the offending key (empty for the whole file).
    :param problem: what is wrong with it.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)
