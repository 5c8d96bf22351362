"""The built-in ``stream-receiver`` ledger plugin: a STREAM receiver (RFC 29) and its SPSP
endpoint (RFC 9) living inside the connector, as a child account.

::

    accounts:
      shop:
        relation: child
        plugin: stream-receiver
        assetCode: USD
        assetScale: 9
        options:
          spsp: {host: 127.0.0.1, port: 8080}   # where senders query SPSP
          serverSecret: <base64 of 32 bytes>    # optional: keeps handed-out addresses valid
          receiveMax: "1000000000"              # optional per-stream limit, base units

Prepares the connector routes to the account (``<connector>.<segment>.<token>``) are answered
in process by :class:`ilptx.stream.server.StreamServer`; nothing crosses a socket but the
SPSP query. The account's balance middleware sees every payment like any other child's.
Payments are logged with the account id; :attr:`StreamReceiverPlugin.server` has the totals.
"""

from __future__ import annotations

import base64
import binascii
from typing import Optional

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ilptx.errors import ConfigError
from ilptx.interfaces import IAccountAddressAware, ILedgerPlugin
from ilptx.plugins.base import PluginHandlers, PluginServices
from ilptx.plugins.hookspecs import hookimpl
from ilptx.stream.server import StreamServer
from ilptx.stream.spsp import SpspServer

__all__ = ["StreamReceiverPlugin", "stream_receiver_factory"]


@implementer(ILedgerPlugin, IAccountAddressAware)
class StreamReceiverPlugin(PluginHandlers):
    """The plugin: ``StreamReceiverPlugin(options, *, account_id, reactor, log=None)``; the
    connector makes it with :func:`stream_receiver_factory`. The connector tells it the
    account's address (:class:`~ilptx.interfaces.IAccountAddressAware`)."""

    def __init__(self, options: dict, *, account_id: str, reactor, log: Optional[Logger] = None) -> None:
        self.account_id = account_id
        self._reactor = reactor
        self._log = log or Logger(namespace=f"ilptx.account.{account_id}")
        where = f"accounts.{account_id}.options."
        spsp = options.get("spsp") or {}
        if not isinstance(spsp, dict) or not isinstance(spsp.get("port", 0), int):
            raise ConfigError(where + "spsp", "must be {host, port}")
        self._spsp_host = spsp.get("host", "127.0.0.1")
        self._spsp_port = spsp.get("port")
        secret = options.get("serverSecret")
        raw_secret = None
        if secret is not None:
            try:
                raw_secret = base64.b64decode(secret, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raw_secret = b""
            if len(raw_secret) != 32:
                raise ConfigError(where + "serverSecret", "must be 32 bytes in base64")
        receive_max = options.get("receiveMax")
        if receive_max is not None and (not isinstance(receive_max, str) or not receive_max.isdigit()):
            raise ConfigError(where + "receiveMax", "must be an integer string (base units)")
        self.server = StreamServer(self, reactor, server_secret=raw_secret, on_money=self._on_money,
                                   receive_max=int(receive_max) if receive_max else None)
        self._connected = False
        self._port = None
        self._init_handlers()

    # -- the connector tells us our address (see ilptx.node) -------------------------------

    def set_account_address(self, address: str, asset_code: Optional[str] = None,
                            asset_scale: Optional[int] = None) -> None:
        """Receive at ``address`` (``<connector>.<segment>``) in the account's asset."""
        self.server.configure(address, asset_code, asset_scale)

    @property
    def spsp_port(self) -> Optional[int]:
        """The SPSP endpoint's port once connected (useful with port 0)."""
        return self._port.getHost().port if self._port is not None else None

    def _on_money(self, connection, stream_id: int, amount: int) -> None:
        self._log.debug("{account}: received {amount} on stream {stream}", account=self.account_id,
                        amount=amount, stream=stream_id)

    # -- ILedgerPlugin -------------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Start the SPSP endpoint (if ``spsp.port`` is set)."""
        if self._connected:
            return succeed(None)

        def listening(port) -> None:
            self._port = port
            self._log.info("{account}: STREAM receiver at {address}, SPSP on http://{host}:{port}/",
                           account=self.account_id, address=self.server.address, host=self._spsp_host,
                           port=port.getHost().port)
            self._up()

        if self._spsp_port is None:
            self._up()
            return succeed(None)
        from twisted.internet.endpoints import TCP4ServerEndpoint
        from twisted.web.server import Site

        site = Site(SpspServer(self._credentials).resource())
        return TCP4ServerEndpoint(self._reactor, self._spsp_port, interface=self._spsp_host).listen(site).addCallback(
            listening)

    def _credentials(self):
        return self.server.generate_address_and_secret() if self.server.address else None

    def _up(self) -> None:
        self._connected = True
        self.server.start()
        self._notify_connection(True)

    def disconnect(self) -> Deferred:
        """Stop the SPSP endpoint."""
        self._connected = False
        self.server.stop()
        port, self._port = self._port, None
        self._notify_connection(False)
        return maybeDeferred(port.stopListening) if port is not None else succeed(None)

    def is_connected(self) -> bool:
        """Up once :meth:`connect` ran."""
        return self._connected

    def send_data(self, data: bytes) -> Deferred:
        """A Prepare routed to this account: answered by the STREAM receiver, in process."""
        return succeed(self.server.handle_data(data))

    def send_money(self, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Nothing to settle with: the receiver is the connector itself."""
        return succeed(None)







def stream_receiver_factory(options: dict, *, account_id: str, services: PluginServices) -> StreamReceiverPlugin:
    """The ``stream-receiver`` ledger plugin factory: a :class:`StreamReceiverPlugin` on
    ``services.reactor``/``.log``.

    :raises ConfigError: invalid options.
    """
    return StreamReceiverPlugin(options, account_id=account_id, reactor=services.reactor, log=services.log)


@hookimpl
def ilptx_ledger_plugins():
    """The built-in STREAM receiver plugin."""
    return {"stream-receiver": stream_receiver_factory}
