"""The values and pure rules of the settlement state: transfers, the four sums, the best entry
of a max-value tracker, and scale conversion that keeps its leftover.

Nothing here does I/O. The memory and SQLite backends (:mod:`ilptx.settlement.state`) apply
these functions inside one atomic step; the Redis backend runs the same rules as Lua scripts,
and the contract tests hold the three to one behaviour.

The rules follow ``ilp-plugin-payment-channel-framework`` 1.3.5 (``src/util/backend.js``,
``ObjTransferLog`` and ``MaxValueTracker``), except that a transfer log here keeps prepared
(in-flight) amounts across a reload, which the JS one resets to the fulfilled sums.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional

__all__ = [
    "PREPARED", "FULFILLED", "CANCELLED", "Transfer", "TransferLogSums", "MaxEntry",
    "SettlementStateError", "DuplicateTransferError", "TransferLimitError", "TransferNotFoundError",
    "TransferAlreadyFulfilledError", "TransferAlreadyCancelledError",
    "apply_prepare", "apply_fulfill", "apply_cancel", "apply_set_if_max", "convert_scale", "split_leftover",
    "check_amount", "check_text",
    "SCALE_WEI", "SCALE_GWEI", "SCALE_DROPS", "SCALE_SAT", "SCALE_MSAT",
]

#: Transfer states (``Transfer.state``).
PREPARED, FULFILLED, CANCELLED = "prepared", "fulfilled", "cancelled"

#: Asset scales of common ledger units, for :func:`convert_scale` (ETH = 10**18 wei).
SCALE_WEI = 18
#: ETH in gwei: the ILP amounts of ``ilp-plugin-ethereum``.
SCALE_GWEI = 9
#: XRP in drops.
SCALE_DROPS = 6
#: BTC in satoshis.
SCALE_SAT = 8
#: BTC in millisatoshis (Lightning).
SCALE_MSAT = 11


class SettlementStateError(Exception):
    """Base of the errors of :mod:`ilptx.settlement`."""


class DuplicateTransferError(SettlementStateError):
    """A transfer id already in the log with other content (direction, amount or data);
    nothing changed. (JS: ``DuplicateIdError``.)"""


class TransferLimitError(SettlementStateError):
    """The prepare would take the log past its maximum (incoming) or minimum (outgoing);
    nothing changed. (JS: ``NotAcceptedError``.)"""


class TransferNotFoundError(SettlementStateError, KeyError):
    """No transfer with that id in the log. (JS: ``TransferNotFoundError``.)"""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TransferAlreadyFulfilledError(SettlementStateError):
    """Cancel of a fulfilled transfer; nothing changed. (JS: ``AlreadyFulfilledError``.)"""


class TransferAlreadyCancelledError(SettlementStateError):
    """Fulfill of a cancelled transfer; nothing changed. (JS: ``AlreadyRolledBackError``.)"""


@dataclass(frozen=True)
class Transfer:
    """One transfer of a log.

    :ivar id: the transfer id (opaque ``str``: an ILP packet id, a tx hash, a claim total).
    :ivar incoming: ``True`` for money to us, ``False`` for money we send.
    :ivar amount: ``int`` >= 0, in the log's base units.
    :ivar data: opaque ``str`` stored with it and compared on a replay (e.g. a condition).
    :ivar state: :data:`PREPARED`, :data:`FULFILLED` or :data:`CANCELLED`.
    :ivar fulfillment: the ``str`` given to fulfill (``None`` unless fulfilled).
    """

    id: str
    incoming: bool
    amount: int
    data: str = ""
    state: str = PREPARED
    fulfillment: Optional[str] = None

    def same_content(self, other: "Transfer") -> bool:
        """:returns: whether ``other`` has this transfer's direction, amount and data."""
        return (self.incoming, self.amount, self.data) == (other.incoming, other.amount, other.data)


@dataclass(frozen=True)
class TransferLogSums:
    """The four sums of a transfer log and its limits, in the log's base units (``int``).

    :ivar incoming_fulfilled: incoming transfers fulfilled (JS ``getIncomingFulfilled``).
    :ivar incoming_fulfilled_and_prepared: incoming fulfilled + prepared
        (``getIncomingFulfilledAndPrepared``): the most the peer can owe us.
    :ivar outgoing_fulfilled: outgoing fulfilled (``getOutgoingFulfilled``).
    :ivar outgoing_fulfilled_and_prepared: outgoing fulfilled + prepared
        (``getOutgoingFulfilledAndPrepared``): the most we can owe the peer.
    :ivar maximum: an incoming prepare fails if ``incoming_fulfilled_and_prepared + amount −
        outgoing_fulfilled > maximum`` (``None``: no limit).
    :ivar minimum: an outgoing prepare fails if ``incoming_fulfilled −
        (outgoing_fulfilled_and_prepared + amount) < minimum`` (``None``: no limit).
    """

    incoming_fulfilled: int = 0
    incoming_fulfilled_and_prepared: int = 0
    outgoing_fulfilled: int = 0
    outgoing_fulfilled_and_prepared: int = 0
    maximum: Optional[int] = None
    minimum: Optional[int] = None

    @property
    def balance(self) -> int:
        """Fulfilled incoming − fulfilled outgoing (JS ``getBalance``; for display)."""
        return self.incoming_fulfilled - self.outgoing_fulfilled


class MaxEntry(NamedTuple):
    """An entry of a max-value tracker: ``(value, data)``; the empty tracker holds ``(0, None)``.

    :ivar value: ``int`` >= 0 (e.g. a claim's cumulative total in wei).
    :ivar data: ``str`` kept with it (e.g. the signed claim), or ``None``.
    """

    value: int
    data: Optional[str]


def check_amount(name: str, value: object) -> int:
    """:returns: ``value`` if it is an ``int`` >= 0 (not a ``bool``).
    :raises TypeError: not an ``int``. :raises ValueError: negative."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


def check_text(name: str, value: object, optional: bool = False) -> None:
    """:raises TypeError: ``value`` is not a ``str`` (or ``None`` when ``optional``)."""
    if not isinstance(value, str) and not (optional and value is None):
        raise TypeError(f"{name} must be a str{' or None' if optional else ''}, not {type(value).__name__}")


def apply_prepare(log: str, sums: TransferLogSums, existing: Optional[Transfer],
                  transfer: Transfer) -> Optional[TransferLogSums]:
    """The sums after preparing ``transfer`` (in state :data:`PREPARED`).

    :returns: the new sums, or ``None`` when ``existing`` (the log's transfer with that id)
        has the same content: a replay, nothing to change.
    :raises DuplicateTransferError: ``existing`` has other content.
    :raises TransferLimitError: past ``sums.maximum`` / ``sums.minimum``.
    """
    if existing is not None:
        if existing.same_content(transfer):
            return None
        raise DuplicateTransferError(f"transfer log {log}: transfer {transfer.id} is already in the log with other "
                                     f"content ({existing}); refused {transfer}")
    if transfer.incoming:
        total = sums.incoming_fulfilled_and_prepared + transfer.amount
        if sums.maximum is not None and total - sums.outgoing_fulfilled > sums.maximum:
            raise TransferLimitError(f"transfer log {log}: incoming {transfer.id} of {transfer.amount} would bring "
                                     f"incoming fulfilled+prepared − outgoing fulfilled to "
                                     f"{total - sums.outgoing_fulfilled} > maximum {sums.maximum}")
        return replace(sums, incoming_fulfilled_and_prepared=total)
    total = sums.outgoing_fulfilled_and_prepared + transfer.amount
    if sums.minimum is not None and sums.incoming_fulfilled - total < sums.minimum:
        raise TransferLimitError(f"transfer log {log}: outgoing {transfer.id} of {transfer.amount} would bring "
                                 f"incoming fulfilled − outgoing fulfilled+prepared to "
                                 f"{sums.incoming_fulfilled - total} < minimum {sums.minimum}")
    return replace(sums, outgoing_fulfilled_and_prepared=total)


# the state a transfer moves to -> (the verb, the final state it cannot leave and its error,
# the sum it moves for an incoming / an outgoing transfer, the sign of the move)
_FINISH = {
    FULFILLED: ("fulfill", CANCELLED, TransferAlreadyCancelledError,
                ("incoming_fulfilled", "outgoing_fulfilled"), 1),
    CANCELLED: ("cancel", FULFILLED, TransferAlreadyFulfilledError,
                ("incoming_fulfilled_and_prepared", "outgoing_fulfilled_and_prepared"), -1),
}


def _apply_finish(log: str, sums: TransferLogSums, existing: Optional[Transfer], transfer_id: str,
                  state: str, fulfillment: Optional[str]) -> Optional[tuple[TransferLogSums, Transfer]]:
    if existing is None:
        raise TransferNotFoundError(f"transfer log {log}: no transfer {transfer_id}")
    if existing.state == state:
        return None
    verb, final, error, fields, sign = _FINISH[state]
    if existing.state == final:
        raise error(f"transfer log {log}: {transfer_id} is {final}, cannot {verb} it")
    field = fields[0] if existing.incoming else fields[1]
    sums = replace(sums, **{field: getattr(sums, field) + sign * existing.amount})
    return sums, replace(existing, state=state, fulfillment=fulfillment)


def apply_fulfill(log: str, sums: TransferLogSums, existing: Optional[Transfer],
                  transfer_id: str, fulfillment: str) -> Optional[tuple[TransferLogSums, Transfer]]:
    """The sums and transfer after fulfilling ``transfer_id`` (``existing``: the log's transfer
    with that id): IF or OF grows by its amount.

    :returns: ``(sums, transfer)``, or ``None`` when it is already fulfilled (idempotent).
    :raises TransferNotFoundError: no such transfer.
    :raises TransferAlreadyCancelledError: it was cancelled.
    """
    return _apply_finish(log, sums, existing, transfer_id, FULFILLED, fulfillment)


def apply_cancel(log: str, sums: TransferLogSums, existing: Optional[Transfer],
                 transfer_id: str) -> Optional[tuple[TransferLogSums, Transfer]]:
    """The sums and transfer after cancelling ``transfer_id``: IFP or OFP shrinks by its amount.

    :returns: ``(sums, transfer)``, or ``None`` when it is already cancelled (idempotent).
    :raises TransferNotFoundError: no such transfer.
    :raises TransferAlreadyFulfilledError: it was fulfilled.
    """
    return _apply_finish(log, sums, existing, transfer_id, CANCELLED, None)


def apply_set_if_max(current: MaxEntry, value: int, data: Optional[str]) -> tuple[Optional[MaxEntry], MaxEntry]:
    """:returns: ``(new, returned)``: ``new`` is the entry to store (``None``: keep ``current``)
        and ``returned`` is what ``set_if_max`` answers: ``current`` when ``value`` is
        greater (it replaced it), else ``(value, data)`` itself -- so ``value − returned.value``
        is always the increase of the maximum (0 when it was not a new maximum), as in the JS
        ``MaxValueTracker.setIfMax``."""
    entry = MaxEntry(value, data)
    if value > current.value:
        return entry, current
    return None, entry


def split_leftover(total: int, digits: int) -> tuple[int, int]:
    """:returns: ``divmod(total, 10**digits)``: whole units of the coarser scale and the
        leftover in the finer one (``total`` >= 0, ``digits`` >= 0)."""
    return divmod(total, 10 ** digits)


def convert_scale(amount: int, from_scale: int, to_scale: int, leftover: int = 0) -> tuple[int, int]:
    """Convert ``amount`` (+ a ``leftover`` carried from earlier conversions) from asset scale
    ``from_scale`` to ``to_scale``, keeping what does not make a whole unit.

    Examples: ``convert_scale(amount_wei, SCALE_WEI, SCALE_GWEI)`` → ``(gwei, leftover_wei)``;
    ``convert_scale(gwei, SCALE_GWEI, SCALE_WEI)`` → ``(amount_wei, 0)``;
    ``convert_scale(units, 9, SCALE_DROPS)`` → ``(drops, leftover_units)``.

    Nothing is created or lost: ``converted * 10**(from_scale − to_scale) + new_leftover ==
    amount + leftover`` (exactly; for ``to_scale >= from_scale`` the leftover is 0).

    :param amount: ``int`` >= 0 in units of ``from_scale``.
    :param leftover: ``int`` >= 0 in units of ``from_scale``, below one unit of ``to_scale``
        when it came from this function.
    :returns: ``(converted, leftover)``: ``int`` in units of ``to_scale``, ``int`` in units of
        ``from_scale``.
    :raises TypeError, ValueError: an amount or leftover that is not an ``int`` >= 0.
    """
    check_amount("amount", amount)
    check_amount("leftover", leftover)
    if to_scale >= from_scale:
        return (amount + leftover) * 10 ** (to_scale - from_scale), 0
    return split_leftover(amount + leftover, from_scale - to_scale)
