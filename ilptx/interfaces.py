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

        factory(options: dict, *, account_id: str, reactor, log: twisted.logger.Logger)
            -> ILedgerPlugin
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

    def send_money(amount):
        """Settle: transfer ``amount`` (``int``, base units, > 0) to the counterparty.

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
    """One step of the incoming or outgoing packet pipeline."""

    name = Attribute("str: the reference connector's middleware name, e.g. 'expire'.")

    def handle(account, prepare, next_handler):
        """Process ``prepare`` (an :class:`ilptx.codec.ilp.Prepare`) from/to ``account``.

        :param account: :class:`ilptx.core.accounts.Account`.
        :param next_handler: ``callable(account, prepare) -> Deferred[Fulfill | Reject]``.
        :returns: ``Deferred[Fulfill | Reject]`` (or raise :class:`ilptx.errors.IlpError`).
        """
