"""Autobahn WebSocket protocols and factories carrying BTP: thin adapters over
:class:`ilptx.transport.btp_session.BtpSession`.

Each binary (or text) WebSocket message is one BTP frame, passed untouched to the session;
the session's ``send`` becomes :meth:`sendMessage` (binary), its ``close`` a WebSocket close
handshake. The factories do not know about BTP: when a WebSocket opens they call
``on_open(protocol)``, which returns the session (the ledger plugin builds it); when a
connection ends before the WebSocket opened (TCP, TLS or HTTP upgrade failure) they call
``on_failed(protocol, reason)``.

Options set on every connection (Autobahn's ``setProtocolOptions``):

* ``autoPingInterval`` / ``autoPingTimeout`` (seconds; 0 disables): WebSocket pings to find
  dead peers; a peer that does not answer in time is dropped.
* ``maxMessagePayloadSize`` (bytes): a larger message fails the connection.
* no per-message compression (neither offered nor accepted), like the reference's ``ws``
  server and what it negotiates by default with our server.

Autobahn schedules its timers (open/close handshake timeouts, pings) through txaio's global
reactor; these factories send them to the injected reactor instead, so that unit tests can
run them on a :class:`~twisted.internet.task.Clock`. A client does not wait for the server to
drop TCP after a close handshake (which Autobahn would time with the global reactor): it
closes the TCP connection itself once its close frame is written.

The server accepts any request path, as the reference's ``ws`` server does.
"""

from __future__ import annotations

from typing import Callable, Optional

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.python.failure import Failure

__all__ = [
    "BtpServerProtocol",
    "BtpServerFactory",
    "BtpClientProtocol",
    "BtpClientFactory",
]


class _DelayedCall:
    """An Autobahn timer handle whose ``cancel`` tolerates fired/cancelled calls (as
    txaio's batched timer does)."""

    __slots__ = ("_call",)

    def __init__(self, call) -> None:
        self._call = call

    def cancel(self) -> None:
        try:
            self._call.cancel()
        except (AlreadyCalled, AlreadyCancelled):
            pass


class _ReactorTimer:
    """txaio ``IBatchedTimer`` on an injected reactor (no batching: BTP links are few)."""

    def __init__(self, clock) -> None:
        self._clock = clock

    def call_later(self, delay, func, *args, **kwargs) -> _DelayedCall:
        return _DelayedCall(self._clock.callLater(delay, func, *args, **kwargs))


def _configure(factory, reactor, ping_interval: float, ping_timeout: float, max_message_size: int) -> None:
    factory._batched_timer = _ReactorTimer(reactor)  # Autobahn's timers on *our* reactor
    factory.setProtocolOptions(
        autoPingInterval=ping_interval,
        autoPingTimeout=ping_timeout,
        maxMessagePayloadSize=max_message_size,
        maxFramePayloadSize=max_message_size,
    )


class _BtpAdapterMixin:
    """What server and client protocols share: frames in → session, session → frames out."""

    session = None

    def onOpen(self) -> None:
        self.session = self.factory.on_open(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is not None:
            session.data_received(payload)

    def send_frame(self, data: bytes) -> None:
        """Send one BTP frame; silently dropped once the WebSocket is closing."""
        if self.state == self.STATE_OPEN:
            self.sendMessage(data, isBinary=True)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        session = self.session
        if session is not None:
            session.connection_lost(reason)
        else:
            on_failed = self.factory.on_failed
            if on_failed is not None:
                on_failed(self, reason)


class BtpServerProtocol(_BtpAdapterMixin, WebSocketServerProtocol):
    """One accepted BTP-over-WebSocket connection."""

    def close_connection(self, code: int = 1000, reason: Optional[str] = None) -> None:
        """Start the WebSocket close handshake (Autobahn drops TCP if it does not finish)."""
        self.sendClose(code, reason)


class BtpClientProtocol(_BtpAdapterMixin, WebSocketClientProtocol):
    """Our outgoing BTP-over-WebSocket connection."""

    def close_connection(self, code: int = 1000, reason: Optional[str] = None) -> None:
        """Send a close frame, then close TCP without waiting for the server's reply."""
        if self.state == self.STATE_OPEN:
            self.sendClose(code, reason)
        if self.transport is not None:
            self.transport.loseConnection()


class BtpServerFactory(WebSocketServerFactory):
    """Accepts BTP WebSocket connections on any path.

    :param reactor: the injected reactor (also runs Autobahn's timers).
    :param on_open: ``callable(BtpServerProtocol) -> BtpSession`` once the WebSocket is open.
    :param on_failed: ``callable(protocol, Failure)`` for connections that end before
        opening, or ``None``.
    :param ping_interval: seconds between WebSocket pings (0: none).
    :param ping_timeout: seconds to wait for the pong (0: forever).
    :param max_message_size: largest accepted message in bytes (0: unlimited).
    """

    protocol = BtpServerProtocol

    def __init__(
        self,
        *,
        reactor,
        on_open: Callable,
        on_failed: Optional[Callable] = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
    ) -> None:
        super().__init__(reactor=reactor)
        self.on_open = on_open
        self.on_failed = on_failed
        _configure(self, reactor, ping_interval, ping_timeout, max_message_size)


class BtpClientFactory(WebSocketClientFactory):
    """Opens a BTP WebSocket connection to ``url`` (``ws://`` or ``wss://``, no userinfo).

    Parameters as :class:`BtpServerFactory`, plus ``url``.
    """

    protocol = BtpClientProtocol

    def __init__(
        self,
        url: str,
        *,
        reactor,
        on_open: Callable,
        on_failed: Optional[Callable] = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
    ) -> None:
        super().__init__(url=url, reactor=reactor)
        self.on_open = on_open
        self.on_failed = on_failed
        _configure(self, reactor, ping_interval, ping_timeout, max_message_size)
        # never wait on Autobahn's global-reactor timer for the server to drop TCP:
        # close_connection() closes it itself
        self.setProtocolOptions(serverConnectionDropTimeout=0)
