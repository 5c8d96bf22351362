"""Every pluggable kind of component in ilptx, as a zope.interface.

A component says what it is by ``@implementer(I...)``; ilptx checks it with
:func:`zope.interface.verify.verifyObject` when it is loaded. How a component is *found* is
pluggy's job (see :mod:`ilptx.plugins.hookspecs`).
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ILedgerPlugin(Interface):
    """A ledger plugin: one bilateral link to one account's counterparty.

    The Python shape of the JavaScript reference's Ledger Plugin Interface v2 (LPI2, as
    implemented by ``ilp-plugin-btp``): ILP packets travel as opaque ``bytes`` (OER-encoded
    ILPv4 packets, RFC 27); money is an ``int`` in the account's base units.

    A plugin is made by a factory registered through the ``ilptx_ledger_plugins`` hook::

        factory(options: dict, *, account_id: str, services: ilptx.plugins.base.PluginServices)
            -> ILedgerPlugin

    ``options`` is the account's ``options`` object from the config (plain ``dict``/``list``
    values); ``services`` holds the reactor, a logger and the connector's store
    (:class:`ilptx.plugins.base.PluginServices`). The factory raises
    :class:`ilptx.errors.ConfigError` (key ``accounts.<id>.options.<name>``) for invalid
    options. The connector checks what the factory returns with
    :func:`zope.interface.verify.verifyObject` against this interface and against every
    optional interface the plugin declares (:class:`IAccountAddressAware`,
    :class:`IAdminInfoProvider`, :class:`IAdminInfoReceiver`); a plugin that fails stops
    start-up with one ``ConfigError`` line naming ``accounts.<id>.plugin``.

    The connector registers its data and money handlers before :meth:`connect`. Once the
    counterparty is there, a peer's or parent's plugin (route broadcasting on) is first sent
    CCP route control through :meth:`send_data`: a Prepare to ``peer.route.control`` asking
    for SYNC (README, "What a plugin receives").
    """

    account_id = Attribute("str: the id of the account this plugin serves (for log events).")

    def connect():
        """Start the link: listen or dial.

        :returns: ``Deferred[None]`` that fires once the plugin is ready (a listener is
            bound; a client has authenticated). Errback if it cannot be started.
        """

    def disconnect():
        """Stop the link, failing requests in flight.

        :returns: ``Deferred[None]`` that fires when every connection is closed.
        """

    def is_connected():
        """:returns: ``bool``: whether a counterparty is connected and authenticated now."""

    def send_data(data):
        """Send an ILP Prepare to the counterparty.

        :param data: ``bytes``, an OER-encoded ILP Prepare.
        :returns: ``Deferred[bytes]``: the OER-encoded Fulfill or Reject. Errbacks with
            :class:`ilptx.errors.PeerUnreachableError` when not connected, and with the
            peer's error (as an :class:`ilptx.errors.IlpError`) when it answers with a BTP
            Error. The caller applies its own timeout by cancelling the Deferred.
        """

    def send_money(amount, idempotency_key=None):
        """Settle: transfer ``amount`` (``int``, base units, > 0) to the counterparty.

        :param idempotency_key: ``str`` identifying this settlement; a retry of a failed
            settlement passes the same key, so a plugin whose ledger supports it can make
            sure the money moves once (plugins that cannot, e.g. plain BTP, ignore it).
        :returns: ``Deferred[None]``.
        """

    def register_data_handler(handler):
        """Set the handler for incoming ILP Prepares.

        :param handler: ``callable(bytes) -> Deferred[bytes] | bytes`` taking an OER Prepare
            and returning an OER Fulfill or Reject.
        :raises RuntimeError: a handler is already registered.
        """

    def deregister_data_handler():
        """Remove the data handler."""

    def register_money_handler(handler):
        """Set the handler for incoming settlements.

        :param handler: ``callable(int) -> Deferred[None] | None``, the amount in base units.
        :raises RuntimeError: a handler is already registered.
        """

    def deregister_money_handler():
        """Remove the money handler."""

    def add_connection_listener(listener):
        """Be told when the counterparty connects or goes away.

        :param listener: ``callable(bool)``: ``True`` on connect, ``False`` on disconnect.
        """


# -- optional abilities of a ledger plugin ---------------------------------------------------
#
# A plugin declares each one it has, next to ILedgerPlugin: ``@implementer(ILedgerPlugin,
# IAccountAddressAware)``. The connector asks ``I....providedBy(plugin)``, never ``getattr``,
# and verifies every declared interface when the plugin is loaded.


class IAccountAddressAware(Interface):
    """A ledger plugin that must know its account's ILP address and asset, e.g. one that
    serves many clients under its account and answers their IL-DCP requests (RFC 31):
    ``mini-accounts``, ``stream-receiver``.

    The connector calls :meth:`set_account_address` for a ``child`` account before
    :meth:`ILedgerPlugin.connect` once its own address is known, and again whenever its
    address changes (IL-DCP from a parent).
    """

    def set_account_address(address, asset_code=None, asset_scale=None):
        """Tell the plugin its account's address.

        :param address: ``str``, the account's ILP address: ``<connector address>.<segment>``.
        :param asset_code: ``str`` or ``None`` (unchanged), the account's ``assetCode``.
        :param asset_scale: ``int`` 0..255 or ``None`` (unchanged), the account's ``assetScale``.
        :raises ValueError: not a valid ILP address.
        """


class IAdminInfoProvider(Interface):
    """A ledger plugin with its own status for operators: ``GET /accounts/<id>`` on the
    admin API answers ``{"account", "plugin", "info"}`` with it (501 for a plugin without
    this interface), as the reference connector does with ``plugin.getAdminInfo()``."""

    def get_admin_info():
        """:returns: a JSON-serialisable ``dict`` (or a ``Deferred`` of one)."""


class IAdminInfoReceiver(Interface):
    """A ledger plugin that takes operator commands: ``POST /accounts/<id>`` on the admin
    API hands it the JSON body and answers ``{"account", "plugin", "result"}`` (501 for a
    plugin without this interface), as the reference does with ``plugin.sendAdminInfo()``."""

    def send_admin_info(info):
        """:param info: the decoded JSON body.
        :returns: a JSON-serialisable result (or a ``Deferred`` of one)."""


#: Every optional ability of a ledger plugin, in the order the connector verifies them.
LEDGER_PLUGIN_ABILITIES = (IAccountAddressAware, IAdminInfoProvider, IAdminInfoReceiver)


class IRateBackend(Interface):
    """Exchange rates between assets (the reference connector's ``backend``)."""

    def rate(source_asset_code, source_asset_scale, destination_asset_code, destination_asset_scale):
        """:returns: ``decimal.Decimal``: destination base units per source base unit,
        after spread. Raises :class:`ilptx.errors.IlpError` (T00/F02) when unknown."""

    def connect():
        """:returns: ``Deferred[None]`` once rates are available."""

    def disconnect():
        """:returns: ``Deferred[None]``."""


class IMiddleware(Interface):
    """One account's instance of a middleware: a step of its packet and money pipelines.

    A middleware *factory* ``factory(options: dict, *, account, services) -> IMiddleware | None``
    makes one per account (``None``: nothing to do for this account, e.g. no
    ``maxPacketAmount`` configured), as the reference connector applies each middleware to
    each account's pipelines. Built-in factories are in :mod:`ilptx.core.middleware`;
    third-party ones come from the ``ilptx_middlewares`` hook and the ``middlewares`` config.

    Each handler is ``None`` (not in that pipeline) or a callable:

    * ``incoming(account, prepare, next) -> Deferred[Fulfill | Reject]`` -- Prepares that
      arrive on this account; ``next(account, prepare)`` continues the chain.
    * ``outgoing(account, prepare, next) -> Deferred[Fulfill | Reject]`` -- Prepares about
      to be sent on this account.
    * ``incoming_money(account, amount, next) -> Deferred[None]`` -- a settlement received.
    * ``outgoing_money(account, amount, next) -> Deferred[None]`` -- a settlement we send.

    A handler may raise :class:`ilptx.errors.IlpError` (or fail its Deferred with one); the
    ``errorHandler`` middleware turns it into a Reject.
    """

    name = Attribute("str: the middleware's name, e.g. 'balance' (used by disableMiddleware).")
    incoming = Attribute("callable or None")
    outgoing = Attribute("callable or None")
    incoming_money = Attribute("callable or None")
    outgoing_money = Attribute("callable or None")

    def start():
        """Start timers (called when the connector starts). :returns: None."""

    def stop():
        """Stop timers. :returns: None."""


class IStats(Interface):
    """Where middlewares report what happened (Prometheus in :mod:`ilptx.metrics`).

    ``account`` is an :class:`ilptx.core.accounts.Account`; amounts are ``int`` base units;
    ``result`` is ``"fulfilled"``, ``"rejected"`` or ``"failed"`` for packets and
    ``"succeeded"`` or ``"failed"`` for money; ``code`` is an ILP error code or ``""``.
    """

    def incoming_packet(account, result, code, amount):
        """One incoming Prepare ended."""

    def outgoing_packet(account, result, code, amount):
        """One outgoing Prepare ended."""

    def incoming_money(account, result, amount):
        """A settlement from the peer was processed."""

    def outgoing_money(account, result, amount):
        """A settlement to the peer was attempted."""

    def rate_limited_packet(account):
        """An incoming Prepare was refused by the rate limit."""

    def rate_limited_money(account):
        """An incoming settlement was refused by the rate limit."""

    def balance(account, value):
        """The account's balance is now ``value`` (``int``)."""


class IStore(Interface):
    """Durable state of the connector: balances, reservations in flight, the settlement
    outbox, runtime accounts and plugin state (``store: memory | sqlite | redis``).

    Balances are from the connector's point of view, in the account's base units (``int``):
    positive = the counterparty owes us, negative = we owe the counterparty (as in the
    reference connector). Per account the store keeps a :class:`ilptx.core.balances.BalanceState`:
    ``balance``, ``incoming_reserved`` (Prepares from the account not yet answered),
    ``outgoing_reserved`` (Prepares to the account not yet answered) and ``settling``
    (settlements in the outbox, not yet confirmed).

    Every method returns a ``Deferred``. A method that *commits* money (``settle_*`` with
    ``fulfilled=True``, ``adjust``, ``add_settlement``, ``complete_settlement``) fires only
    once the change is durable (a durable store may group many commits into one write).
    Limit checks are atomic with the change they guard, so two connector processes sharing
    one store cannot both pass a check that only one should.
    """

    def open():
        """Connect / create tables. :returns: ``Deferred[None]``."""

    def close():
        """Flush and release. :returns: ``Deferred[None]``."""

    def reserve_incoming(account_id, amount, maximum):
        """Reserve an incoming Prepare's ``amount`` if
        ``balance + incoming_reserved + amount <= maximum`` (``maximum=None``: no limit).

        :returns: ``Deferred[bool]``: ``False`` (nothing changed) when over the maximum.
        """

    def settle_incoming(account_id, amount, fulfilled):
        """End an incoming reservation: ``fulfilled`` moves ``amount`` into ``balance``,
        otherwise it is released. :returns: ``Deferred[BalanceState]`` (after the change)."""

    def reserve_outgoing(account_id, amount, minimum):
        """Reserve an outgoing Prepare's ``amount`` if
        ``balance - outgoing_reserved - amount >= minimum`` (``minimum=None``: no limit).

        :returns: ``Deferred[bool]``: ``False`` (nothing changed) when under the minimum;
            ``True`` only once the reservation is durable, because the connector forwards
            the Prepare then and a restart must know about it (see :meth:`recover`).
        """

    def settle_outgoing(account_id, amount, fulfilled):
        """End an outgoing reservation: ``fulfilled`` takes ``amount`` off ``balance``,
        otherwise it is released. :returns: ``Deferred[BalanceState]``."""

    def adjust(account_id, amount_diff):
        """Add ``amount_diff`` (may be negative) to ``balance`` (money received, admin API).

        :returns: ``Deferred[BalanceState]``."""

    def add_settlement(settlement_id, account_id, amount):
        """Put a settlement of ``amount`` (> 0) to ``account_id`` in the outbox and add it to
        ``settling``; idempotent for a known ``settlement_id``. :returns: ``Deferred[None]``."""

    def complete_settlement(settlement_id):
        """Atomically: ``balance += amount``, ``settling -= amount``, remove from the outbox.
        Idempotent: an unknown id does nothing. :returns: ``Deferred[bool]`` (was it pending)."""

    def pending_settlements():
        """:returns: ``Deferred[list[tuple[str, str, int]]]``: ``(settlement_id, account_id,
        amount)`` still in the outbox, oldest first."""

    def get_balance(account_id):
        """:returns: ``Deferred[BalanceState]`` (zeros for an unknown account)."""

    def all_balances():
        """:returns: ``Deferred[dict[str, BalanceState]]``."""

    def recover():
        """After a restart: release every incoming reservation (the sender never saw a
        Fulfill), and commit every outgoing reservation (the next hop may have fulfilled;
        we never under-pay a counterparty). :returns: ``Deferred[dict[str, BalanceState]]``
        of the accounts it changed."""

    def get(key):
        """Plugin state / runtime accounts: :returns: ``Deferred[str | None]``."""

    def put(key, value):
        """Store ``value`` (``str``) durably under ``key``. :returns: ``Deferred[None]``."""

    def delete(key):
        """:returns: ``Deferred[None]``."""

    def keys(prefix):
        """:returns: ``Deferred[list[str]]`` of keys starting with ``prefix``."""
