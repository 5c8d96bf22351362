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

__all__ = ["ITransferLog", "IMaxValueTracker", "ISettlementState", "ISettlementModule", "ISettlementContext"]


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


class ISettlementModule(Interface):
    """What one ledger contributes to a settling plugin (:mod:`ilptx.settlement.plugin`): how a
    claim is signed, sent and checked, or how an on-ledger payment is made and found; how a
    channel is opened, funded, watched and closed. Everything else -- BTP, the sub-protocol
    plumbing, the payout queue and its retries, idempotent credits, scale conversion, the
    watcher schedule, state in the store, logging -- is the framework's
    (:class:`ilptx.settlement.engine.SettlementAccount`).

    Units: *ledger units* are the ledger's base units at :attr:`ledger_scale` (wei, drops,
    msat); *account units* are the ILP amounts of the account at :attr:`asset_scale` (gwei for
    ``ilp-plugin-ethereum``). The framework converts between them and keeps the leftover.

    Every method may return a value or a ``Deferred``; raising (or errbacking) fails that step
    only: a failed :meth:`create_claim`, :meth:`send_claim` or :meth:`pay` leaves the payout
    queued and the framework retries it later with the same arguments. A module keeps no
    money state of its own in memory that the framework does not also keep in the store: after
    a restart it is rebuilt from the store (``ctx.state`` / ``ctx.store`` under ``ctx.key(..)``).
    """

    name = Attribute("``str``: the plugin's name, first part of every store key (e.g. ``'ethereum'``).")
    kind = Attribute("``'claim'`` (:data:`~ilptx.settlement.engine.CLAIM`: cumulative signed claims, a "
                     "payment channel) or ``'payment'`` (:data:`~ilptx.settlement.engine.PAYMENT`: "
                     "one on-ledger payment per settlement).")
    ledger_scale = Attribute("``int`` >= 0: the asset scale of ledger units (18 for wei).")
    asset_scale = Attribute("``int`` >= 0: the asset scale of the account's ILP amounts (9 for gwei).")

    def connect(ctx):
        """Start: register sub-protocol handlers (``ctx.register_sub_protocol``), load what the
        module keeps, check the ledger. Called once, before BTP connects (so no peer yet).

        :param ctx: the account's :class:`ISettlementContext`.
        :returns: ``None`` or ``Deferred[None]``; a failure stops ``connect()`` of the plugin.
        """

    def peer_connected():
        """The peer (re)connected over BTP: exchange what the module needs (addresses, channel
        ids, e.g. the ``info`` sub-protocol). Queued payouts are resumed after it fires.

        :returns: ``None`` or ``Deferred[None]``; a failure is logged, the link stays up.
        """

    def disconnect():
        """Stop (e.g. claim the best incoming claim on the ledger when worthwhile).
        :returns: ``None`` or ``Deferred[None]``."""

    def create_claim(total):
        """Claim-based: sign a claim for the cumulative ``total`` (``int``, ledger units, the
        account's lifetime total paid; > every total signed before), opening or funding the
        channel first if it is too small. ``total`` spans every channel the account ever had: a
        module whose new channel starts again at 0 signs ``total − base`` on it, ``base`` being
        what earlier channels carried (kept in the store with the channel id). The framework
        records the claim in the store before :meth:`send_claim` sends it, so a claim that was
        signed but not recorded was never sent.

        :returns: ``str``: the claim as the module will send it (e.g. the JSON of the
            ``machinomy`` sub-protocol), or a ``Deferred`` of it.
        :raises Exception: cannot sign (channel cannot be funded, ledger down): the payout
            stays queued.
        """

    def send_claim(claim):
        """Claim-based: deliver ``claim`` (a ``str`` :meth:`create_claim` made, possibly after
        a restart and possibly again) to the peer, e.g. ``ctx.call_peer('claim', ...)``.

        :returns: ``Deferred[None]`` once the peer acknowledged it; the payouts it covers are
            then confirmed. An errback leaves them queued.
        """

    def pay(amount, payment_id):
        """Payment-based: pay ``amount`` (``int`` > 0, ledger units) to the peer on the ledger.

        Must be idempotent by ``payment_id`` (``str``): the framework records the payment as
        intended (in the store) before calling, and after a crash calls again with the same
        id and amount; the module must then find the earlier payment (a memo, a deterministic
        transaction, a nonce) instead of paying twice.

        :returns: ``str`` (or ``Deferred[str]``): the ledger's proof (a tx hash) once final.
        """

    def watch():
        """One tick of the channel watcher (every ``channelWatcherInterval`` ms on the
        injected clock): e.g. claim a channel whose sender started settling.
        :returns: ``None`` or ``Deferred[None]``; a failure is logged, the schedule goes on."""

    def admin_info():
        """:returns: a JSON-serialisable ``dict`` for ``GET /accounts/<id>`` (channel ids,
        deposited, claimed ...), or a ``Deferred`` of one."""


class ISettlementContext(Interface):
    """What the framework gives a module for one account (:class:`ISettlementModule.connect`).
    Implemented by :class:`ilptx.settlement.engine.SettlementAccount`."""

    account_id = Attribute("``str``: the connector's account id.")
    key_prefix = Attribute("``str``: ``'<module name>:<account id>'``, the prefix of this account's store keys.")
    state = Attribute("the :class:`ISettlementState` (transfer logs, trackers) in the connector's store.")
    store = Attribute("the connector's :class:`ilptx.interfaces.IStore` (``get``/``put`` of ``str``).")
    clock = Attribute("the injected ``IReactorTime``.")
    log = Attribute("the account's :class:`twisted.logger.Logger` (put ``account=`` in events).")

    def key(suffix):
        """:returns: ``'<key_prefix>:<suffix>'``, a store key of the module's own."""

    def register_sub_protocol(name, handler, whole_message=False):
        """Answer BTP MESSAGEs carrying a ``name`` entry (RFC 23 sub-protocol) with ``handler``.

        :param handler: ``callable(entry: ilptx.codec.btp.ProtocolDataEntry) ->
            list[ProtocolDataEntry] | Deferred[...]``: the entries of the Response (``[]``: an
            empty Response). With ``whole_message=True`` it is called with the whole
            ``ilptx.codec.btp.Message`` instead (entries that travel together, e.g. ``channel`` +
            ``channel_signature``). Raise :class:`~ilptx.settlement.engine.ClaimRejectedError` to
            refuse (logged as a warning, answered F00, nothing credited).
        :raises ValueError: ``name`` is ``'ilp'`` (that entry goes to the data handler) or taken.
        """

    def call_peer(name, data, content_type=None):
        """Send a MESSAGE with one sub-protocol entry to the peer.

        :param data: ``bytes``; :param content_type: BTP content type (default: octet-stream).
        :returns: ``Deferred[tuple[ProtocolDataEntry, ...]]``: the peer's Response entries;
            errbacks T01 (not connected), F02 (BTP Error, timeout).
        """

    def credit_claim(total, record):
        """Claim-based: credit a verified incoming claim of cumulative ``total`` (ledger units,
        the account's lifetime total: on a later channel add what earlier channels carried).

        Records the credit durably (id ``claim:<total>``, ``record`` kept with it) before
        the money handler sees ``convert(total) − convert(best total before)`` account units.
        :returns: ``Deferred[int]``: account units credited; 0 (with a warning naming both
            totals) for a total not above the best one (a replay or a lower claim).
        """

    def credit_payment(payment_id, amount, record):
        """Payment-based: credit a verified incoming payment of ``amount`` (ledger units),
        once per ``payment_id`` (a tx hash, a payment hash). :returns: ``Deferred[int]``: account
        units credited (0 for a payment already credited)."""

    def best_incoming_claim():
        """:returns: ``Deferred[MaxEntry]``: the best incoming claim (total, record)."""

    def best_outgoing_claim():
        """:returns: ``Deferred[MaxEntry]``: the best claim we signed (total, claim)."""
