"""What a settling plugin keeps per account: a :class:`TransferLog`, :class:`MaxValueTracker`\\ s
and :class:`ScaleConverter`\\ s, each a named view on an :class:`ISettlementState` (the store).

Objects are cheap and hold no state of their own: two objects with the same name over the same
store (in one process or several sharing a Redis) are the same log, tracker or accumulator.
Arguments are checked here (``TypeError`` / ``ValueError`` as the Deferred's errback), so the
backends may trust them.
"""

from __future__ import annotations

import functools
from typing import Optional

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from zope.interface import implementer

from ilptx.settlement.interfaces import IMaxValueTracker, ISettlementState, ITransferLog
from ilptx.settlement.model import Transfer, TransferNotFoundError, check_amount, check_text

__all__ = ["TransferLog", "MaxValueTracker", "ScaleConverter"]


def _deferred(method):
    """Run ``method`` under ``maybeDeferred``: an argument error becomes the errback."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs) -> Deferred:
        return maybeDeferred(method, *args, **kwargs)

    return wrapper


def _check_limit(name: str, value: Optional[int]) -> None:
    if value is not None and type(value) is not int:
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")


@implementer(ITransferLog)
class TransferLog:
    """A transfer log named ``key`` in ``state``. See :class:`ITransferLog` for each method
    (JS ``ilp-plugin-payment-channel-framework`` 1.3.5 ``TransferLog``).

    :param state: an :class:`ISettlementState` (:func:`ilptx.settlement.state.make_settlement_state`).
    :param key: ``str``, the log's name, e.g. ``'peer.alice:ilp'`` (one per account and use).
    """

    def __init__(self, state: ISettlementState, key: str) -> None:
        check_text("key", key)
        self._state = state
        self.key = key

    @_deferred
    def prepare(self, transfer_id: str, amount: int, incoming: bool, data: str = "") -> Deferred:
        check_text("transfer_id", transfer_id)
        check_amount("amount", amount)
        check_text("data", data)
        if not isinstance(incoming, bool):
            raise TypeError(f"incoming must be a bool, not {type(incoming).__name__}")
        return self._state.prepare(self.key, Transfer(transfer_id, incoming, amount, data))

    @_deferred
    def fulfill(self, transfer_id: str, fulfillment: str = "") -> Deferred:
        check_text("transfer_id", transfer_id)
        check_text("fulfillment", fulfillment)
        return self._state.fulfill(self.key, transfer_id, fulfillment)

    @_deferred
    def cancel(self, transfer_id: str) -> Deferred:
        check_text("transfer_id", transfer_id)
        return self._state.cancel(self.key, transfer_id)

    @_deferred
    def get(self, transfer_id: str) -> Deferred:
        check_text("transfer_id", transfer_id)

        def found(transfer: Optional[Transfer]) -> Transfer:
            if transfer is None:
                raise TransferNotFoundError(f"transfer log {self.key}: no transfer {transfer_id}")
            return transfer

        return self._state.get_transfer(self.key, transfer_id).addCallback(found)

    def prepared(self) -> Deferred:
        return self._state.prepared_transfers(self.key)

    def get_sums(self) -> Deferred:
        return self._state.get_sums(self.key)

    @_deferred
    def set_maximum(self, maximum: Optional[int]) -> Deferred:
        _check_limit("maximum", maximum)
        return self._state.set_limit(self.key, "maximum", maximum)

    @_deferred
    def set_minimum(self, minimum: Optional[int]) -> Deferred:
        _check_limit("minimum", minimum)
        return self._state.set_limit(self.key, "minimum", minimum)


@implementer(IMaxValueTracker)
class MaxValueTracker:
    """A max-value tracker named ``key`` in ``state``. See :class:`IMaxValueTracker` (JS
    ``ilp-plugin-payment-channel-framework`` 1.3.5 ``MaxValueTracker``, but atomic in the
    store rather than behind a per-process promise queue).

    :param state: an :class:`ISettlementState`.
    :param key: ``str``, e.g. ``'peer.alice:best-claim'``.
    """

    def __init__(self, state: ISettlementState, key: str) -> None:
        check_text("key", key)
        self._state = state
        self.key = key

    @_deferred
    def set_if_max(self, value: int, data: Optional[str]) -> Deferred:
        check_amount("value", value)
        check_text("data", data, optional=True)
        return self._state.set_if_max(self.key, value, data)

    def get_max(self) -> Deferred:
        return self._state.get_max(self.key)


class ScaleConverter:
    """Converts amounts from asset scale ``from_scale`` to ``to_scale`` and keeps, in the store,
    what does not make a whole unit of ``to_scale``, adding it to the next conversion: nothing is
    dropped (e.g. wei of a claim's increment → gwei credited, the wei below one gwei carried).

    ``ScaleConverter(state, "alice:claims", SCALE_WEI, SCALE_GWEI).convert(amount_wei)`` →
    ``(gwei, leftover_wei)``. Converting to a finer scale (``to_scale >= from_scale``) is exact
    and touches no store. The accumulator is named ``key`` plus both scales, so a change of
    scale starts a new one (the old leftover stays readable under the old scales).

    :param state: an :class:`ISettlementState`.
    :param key: ``str``: one accumulator per account and direction.
    :param from_scale: ``int`` >= 0, the scale of the amounts given.
    :param to_scale: ``int`` >= 0, the scale of the amounts returned.
    """

    def __init__(self, state: ISettlementState, key: str, from_scale: int, to_scale: int) -> None:
        check_text("key", key)
        check_amount("from_scale", from_scale)
        check_amount("to_scale", to_scale)
        self._state = state
        self.key = key
        self.from_scale, self.to_scale = from_scale, to_scale
        self._store_key = f"{key}:{from_scale}:{to_scale}"

    @_deferred
    def convert(self, amount: int) -> Deferred:
        """Add ``amount`` (``int`` >= 0, in ``from_scale`` units) to the leftover and convert
        what makes whole units, atomically.

        :returns: ``Deferred[(int, int)]``: ``(converted, leftover)`` in ``to_scale`` and
            ``from_scale`` units; ``converted * 10**(from_scale − to_scale) + leftover`` is
            exactly ``amount`` + the leftover before.
        :raises TypeError, ValueError: not an ``int`` >= 0.
        """
        check_amount("amount", amount)
        digits = self.from_scale - self.to_scale
        if digits <= 0:
            return succeed((amount * 10 ** -digits, 0))
        return self._state.divide_with_leftover(self._store_key, amount, digits)

    def leftover(self) -> Deferred:
        """:returns: ``Deferred[int]``: the leftover carried, in ``from_scale`` units."""
        if self.from_scale <= self.to_scale:
            return succeed(0)
        return self._state.get_leftover(self._store_key)
