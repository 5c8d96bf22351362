"""The interfaces of the settlement framework (``ilptx.settlement``), as zope.interfaces.

They live here, not in :mod:`ilptx.interfaces`, while the framework is being built; they are the
public API for settling ledger plugins. Amounts are ``int`` in the base units of the log or
tracker (what those are -- gwei, wei, drops, msat -- is the caller's choice and belongs in the
name it gives the log). Every method returns a ``Deferred``; errors are its errback.

Behaviour follows ``ilp-plugin-payment-channel-framework`` 1.3.5 (README "Backend API, with
Extensions for Payment Channels"; ``src/util/backend.js``), with two differences: state is read
from and written to the store on every operation, atomically (the JS one caches in memory and
serialises writes with a per-process promise queue), so a reload keeps prepared amounts and
several processes on one Redis share one log; and amounts are ``int``, not decimal strings.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["ITransferLog", "IMaxValueTracker", "ISettlementState"]


class ITransferLog(Interface):
    """The transfers of one account, incoming and outgoing, and their four sums
    (JS ``TransferLog``, from ``backend.getTransferLog({key})``).

    A transfer is prepared, then either fulfilled or cancelled; the state of every id is kept,
    so a replay is recognised after any restart. The sums (:class:`ilptx.settlement.model.TransferLogSums`):
    incoming fulfilled (IF), incoming fulfilled + prepared (IFP), outgoing fulfilled (OF) and
    outgoing fulfilled + prepared (OFP). Limits are checked atomically with the prepare:
    an incoming prepare of ``amount`` fails if ``IFP + amount − OF > maximum``, an outgoing one
    if ``IF − (OFP + amount) < minimum`` (as ``setMaximum`` / ``setMinimum`` in JS).
    """

    key = Attribute("``str``: the log's name in the store (e.g. ``'<account>:claims'``).")

    def prepare(transfer_id, amount, incoming, data=""):
        """Add a transfer in state prepared: ``amount`` (``int`` >= 0) goes into IFP (incoming)
        or OFP (outgoing).

        :param transfer_id: ``str``, unique in this log.
        :param incoming: ``bool``.
        :param data: ``str`` stored with it and compared on a replay.
        :returns: ``Deferred[bool]``: ``True`` if added; ``False`` if a transfer with this id and
            the same direction, amount and data is already in the log, in any state (nothing
            changes: JS returns without modifying the store).
        :raises DuplicateTransferError: the id is in the log with other content.
        :raises TransferLimitError: past the maximum / minimum (nothing changes).
        :raises TypeError, ValueError: not an ``int`` >= 0, not a ``str``.
        """

    def fulfill(transfer_id, fulfillment=""):
        """Move a prepared transfer to fulfilled: its amount goes into IF or OF. The fulfillment
        (``str``) is stored, not checked against any condition (as in JS).

        :returns: ``Deferred[bool]``: ``True`` if it was prepared, ``False`` if already fulfilled.
        :raises TransferNotFoundError: no such id.
        :raises TransferAlreadyCancelledError: it was cancelled.
        """

    def cancel(transfer_id):
        """Move a prepared transfer to cancelled: its amount leaves IFP or OFP.

        :returns: ``Deferred[bool]``: ``True`` if it was prepared, ``False`` if already cancelled.
        :raises TransferNotFoundError: no such id.
        :raises TransferAlreadyFulfilledError: it was fulfilled.
        """

    def get(transfer_id):
        """:returns: ``Deferred[Transfer]`` (:class:`ilptx.settlement.model.Transfer`).
        :raises TransferNotFoundError: no such id."""

    def prepared():
        """:returns: ``Deferred[list[Transfer]]``: the transfers still prepared (in flight), by id;
        after a restart these are what the plugin must resolve."""

    def get_sums():
        """:returns: ``Deferred[TransferLogSums]``: the four sums and the limits, read at once."""

    def set_maximum(maximum):
        """Store the maximum (``int``, or ``None`` for none) checked by incoming prepares.
        :returns: ``Deferred[None]``."""

    def set_minimum(minimum):
        """Store the minimum (``int``, or ``None`` for none) checked by outgoing prepares.
        :returns: ``Deferred[None]``."""


class IMaxValueTracker(Interface):
    """The greatest value seen and data kept with it, e.g. the best incoming claim (value = its
    cumulative total, data = the signed claim) or the total settled so far (JS
    ``MaxValueTracker``, from ``backend.getMaxValueTracker(key)``). Starts at ``(0, None)``."""

    key = Attribute("``str``: the tracker's name in the store.")

    def set_if_max(value, data):
        """Make ``(value, data)`` the maximum if ``value`` is greater than the current one (atomic).

        :param value: ``int`` >= 0.
        :param data: ``str`` or ``None``.
        :returns: ``Deferred[MaxEntry]`` (a ``(value, data)`` tuple): the previous maximum when
            ``value`` replaced it, else ``(value, data)`` itself -- so ``value − returned.value``
            is the increase of the maximum, 0 when it was not a new maximum (as JS ``setIfMax``).
        :raises TypeError, ValueError: not an ``int`` >= 0, data not a ``str``/``None``.
        """

    def get_max():
        """:returns: ``Deferred[MaxEntry]``: the maximum, ``(0, None)`` if none was set."""


class ISettlementState(Interface):
    """The backend the transfer logs, trackers and scale converters run on: each method is one
    atomic step in the store (see :mod:`ilptx.settlement.state` for how each store does it).
    Callers normally use :class:`~ilptx.settlement.tracking.TransferLog`,
    :class:`~ilptx.settlement.tracking.MaxValueTracker` and
    :class:`~ilptx.settlement.tracking.ScaleConverter`, which check their arguments; the backend
    trusts them. ``log`` and ``key`` are opaque ``str`` names.
    """

    def open():
        """Prepare the backend (tables, scripts) on an open store. :returns: ``Deferred[None]``."""

    def prepare(log, transfer):
        """See :meth:`ITransferLog.prepare`; ``transfer`` is a prepared ``Transfer``."""

    def fulfill(log, transfer_id, fulfillment):
        """See :meth:`ITransferLog.fulfill`."""

    def cancel(log, transfer_id):
        """See :meth:`ITransferLog.cancel`."""

    def get_transfer(log, transfer_id):
        """:returns: ``Deferred[Transfer | None]``."""

    def prepared_transfers(log):
        """See :meth:`ITransferLog.prepared`."""

    def get_sums(log):
        """See :meth:`ITransferLog.get_sums`."""

    def set_limit(log, which, value):
        """Store limit ``which`` (``"maximum"`` or ``"minimum"``) = ``value`` (``int`` or ``None``).
        :returns: ``Deferred[None]``."""

    def set_if_max(key, value, data):
        """See :meth:`IMaxValueTracker.set_if_max`."""

    def get_max(key):
        """See :meth:`IMaxValueTracker.get_max`."""

    def divide_with_leftover(key, amount, digits):
        """Atomically: ``total = leftover[key] + amount``; ``leftover[key] = total % 10**digits``.

        :param amount: ``int`` >= 0; :param digits: ``int`` > 0.
        :returns: ``Deferred[(int, int)]``: ``(total // 10**digits, the new leftover)``.
        """

    def get_leftover(key):
        """:returns: ``Deferred[int]``: the leftover kept under ``key`` (0 if none)."""
