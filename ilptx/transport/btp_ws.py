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

Backpressure (Twisted's producer/consumer). Once the WebSocket is open (so after any TLS
handshake), every protocol registers itself on its transport as a push producer
(:class:`~twisted.internet.interfaces.IPushProducer`). When the transport's write buffer
passes its high-water mark (Twisted's ``bufferSize``, 64 KiB for TCP) it pauses us and we
stop reading the socket, so a peer that does not read cannot make us answer more (pongs to
its pings, Responses to its requests); when the buffer has drained we resume reading. Frames
we still produce while paused (Prepares from other accounts, pings) are counted, and once
more than ``max_unsent_bytes`` have queued beyond the transport's buffer the connection is
aborted (buffered bytes discarded at once, logged as a warning with the account, the peer
and the cap); the session then fails its pending requests with T01, as for any closed
connection. On ``connectionLost`` the protocol lets go of its transport and session, so the
buffer is freed at once instead of at the next full garbage collection (Autobahn's
``is_closed`` Deferred refers back to the protocol: a reference cycle).

Autobahn schedules its timers (open/close handshake timeouts, pings) through txaio's global
reactor; these factories send them to the injected reactor instead, so that unit tests can
run them on a :class:`~twisted.internet.task.Clock`. A client does not wait for the server to
drop TCP after a close handshake (which Autobahn would time with the global reactor): it
closes the TCP connection itself once its close frame is written.

The server accepts any request path, as the reference's ``ws`` server does.

Lean framing (measured in ``bench/README.md``, "Lean BTP framing"). Autobahn's defaults cost
more per ~100-byte BTP frame than the BTP work itself, so, with Autobahn's own options and
hooks:

* **Unmasking** (server role): Autobahn builds a cffi (NVX) masker object for every masked
  frame, about 3 µs for a 100-byte frame; its ``AUTOBAHN_USE_NVX=0`` switch falls back to a
  per-byte Python loop, slower still. So the server factory sets Autobahn's ``applyMask``
  option off and :meth:`_BtpAdapterMixin.onFrameBegin` unmasks each masked frame itself: with
  :class:`IntXorMasker` (one integer XOR, about 0.5 µs) up to :data:`SMALL_FRAME` bytes of
  payload, with Autobahn's ``create_xor_masker`` above that (faster for large frames). The
  client role keeps Autobahn's masking of what it sends (RFC 6455 §5.3).
* **Writing**: an open connection's frames go straight to ``transport.write`` (see
  :meth:`_BtpAdapterMixin.sendData`); Autobahn's ``sendData`` formats the arguments of a debug
  log line on every call, even with debug logging off.
* **Reading**: :meth:`_BtpAdapterMixin.onMessageEnd` hands each message to the session without
  Autobahn's per-message ``"message"`` event (an observable with no listeners here, which
  still builds and chains a Deferred per message), and ``dataReceived`` skips Autobahn's debug
  line (formatted on every read, as on writes).

Not taken (tried on branch ``h-framing``): writing WebSocket frames ourselves instead of
Autobahn's ``sendMessage``; the frame writer stays Autobahn's (the saving was small next to
the masker and the log lines, and the integration backpressure tests became flaky).
"""

from __future__ import annotations

from typing import Callable, Optional

from zope.interface import implementer

from autobahn.websocket.xormasker import create_xor_masker
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = [
    "DEFAULT_MAX_UNSENT_BYTES",
    "SMALL_FRAME",
    "IntXorMasker",
    "peer_host",
    "BtpServerProtocol",
    "BtpServerFactory",
    "BtpClientProtocol",
    "BtpClientFactory",
]

#: Default cap on the bytes queued for one connection beyond the transport's own buffer (4 MiB).
DEFAULT_MAX_UNSENT_BYTES = 4 << 20


#: Largest frame payload (bytes) the server unmasks with :class:`IntXorMasker`; larger ones
#: go to Autobahn's masker (measured: the integer XOR is faster below about 1.5 KiB).
SMALL_FRAME = 1024


class IntXorMasker:
    """RFC 6455 §5.3 unmasking of one frame's payload with one integer XOR per chunk.

    The interface of Autobahn's maskers (``pointer()``, ``reset()``, ``process(data)``):
    ``process`` may be called with successive chunks of the payload (as Autobahn does when a
    frame arrives over several reads) and returns the unmasked bytes of each.

    :param mask: the frame's 4-byte masking key.
    """

    __slots__ = ("_mask", "_ptr")

    def __init__(self, mask: bytes) -> None:
        self._mask = mask
        self._ptr = 0

    def pointer(self) -> int:
        """:returns: payload bytes processed so far."""
        return self._ptr

    def reset(self) -> None:
        self._ptr = 0

    def process(self, data: bytes) -> bytes:
        """:returns: ``data`` XORed with the mask, continuing where the last chunk ended."""
        n = len(data)
        shift = self._ptr & 3
        mask = self._mask[shift:] + self._mask[:shift] if shift else self._mask
        self._ptr += n
        key = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


def peer_host(protocol) -> str:
    """:returns: the remote IP address of ``protocol``'s connection (``""`` if it has none)."""
    transport = getattr(protocol, "transport", None)
    return str(getattr(transport.getPeer(), "host", "")) if transport is not None else ""


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


def _configure(factory, reactor, ping_interval: float, ping_timeout: float, max_message_size: int,
               max_unsent_bytes: int, log: Optional[Logger], account_id: str) -> None:
    factory._batched_timer = _ReactorTimer(reactor)  # Autobahn's timers on *our* reactor
    factory.max_unsent_bytes = max_unsent_bytes
    factory.log = log if log is not None else Logger(namespace="ilptx.transport.btp_ws")
    factory.account_id = account_id
    factory.setProtocolOptions(
        autoPingInterval=ping_interval,
        autoPingTimeout=ping_timeout,
        maxMessagePayloadSize=max_message_size,
        maxFramePayloadSize=max_message_size,
    )


@implementer(IPushProducer)
class _BtpAdapterMixin:
    """What server and client protocols share: frames in → session, session → frames out,
    and backpressure (see the module docstring)."""

    session = None
    _registered = False  # we are the transport's producer
    _output_paused = False  # the transport's write buffer is over its high-water mark
    _queued_while_paused = 0  # bytes handed to the transport since it paused us
    _overflowed = False

    # -- IPushProducer: the transport tells us when its write buffer is full / drained --

    def pauseProducing(self) -> None:
        """The transport's write buffer is full: stop reading from the peer.

        Twisted calls it again on every write while the buffer stays full; only the first
        call starts the count."""
        if self._output_paused:
            return
        self._output_paused = True
        self._queued_while_paused = 0
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport has written everything: read from the peer again."""
        self._output_paused = False
        self._queued_while_paused = 0
        if self.transport is not None and not self._overflowed:
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away (``connectionLost`` follows)."""

    def unregisterProducer(self) -> None:
        # Autobahn's dropConnection() calls it, also before onOpen and after connectionLost
        if self._registered and self.transport is not None:
            self._registered = False
            self.transport.unregisterProducer()

    def sendData(self, data: bytes, sync: bool = False, chopsize: Optional[int] = None) -> None:
        # every WebSocket frame Autobahn writes (messages, pongs, pings, close) passes here
        if self._overflowed:
            return
        if self._output_paused:
            cap = self.factory.max_unsent_bytes
            if cap and self._queued_while_paused + len(data) > cap:
                self._drop_stuck_peer(cap, len(data))
                return
            self._queued_while_paused += len(data)
        if self.state == self.STATE_OPEN and not sync and not chopsize and not self.send_queue \
                and not self.logOctets:
            # Autobahn's sendData for this case, minus its debug line (formatted on every call)
            self.transport.write(data)
            self.trafficStats.outgoingOctetsWireLevel += len(data)
            return
        super().sendData(data, sync, chopsize)

    def _drop_stuck_peer(self, cap: int, size: int) -> None:
        self._overflowed = True
        session = self.session
        self.factory.log.warn(
            "{account}: dropping the BTP connection from {peer} (user {username!r}): it does not "
            "read; {queued} bytes queued beyond the transport's buffer, {size} more would pass "
            "maxUnsentBytes={cap}",
            account=self.factory.account_id, peer=self.peer, cap=cap, queued=self._queued_while_paused,
            size=size, username=getattr(session, "username", None))
        self.wasClean = False
        self.wasNotCleanReason = "peer does not read: maxUnsentBytes exceeded"
        self.dropConnection(abort=True)

    def onOpen(self) -> None:
        # only now: during a TLS handshake the TLS layer pauses its producer while it buffers
        # our writes, and pausing our reading then would stall the handshake itself
        self.transport.registerProducer(self, True)
        self._registered = True
        self.session = self.factory.on_open(self)

    def onFrameBegin(self) -> None:
        # with applyMask off (the server factory), Autobahn gave this frame a no-op masker
        frame = self.current_frame
        if frame.mask is not None and frame.length and not self.applyMask:
            self.current_frame_masker = IntXorMasker(frame.mask) if frame.length <= SMALL_FRAME \
                else create_xor_masker(frame.mask, frame.length)
        super().onFrameBegin()

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's dataReceived is this call after a log.debug whose arguments it formats on
        # every read (hltype/hlval), debug logging on or off
        self._dataReceived(data)

    def onMessageEnd(self) -> None:
        # Autobahn's onMessageEnd without the per-message "message" event and timing
        if not self.failedByMe:
            payload = b"".join(self.message_data)
            self.message_data = None
            self.onMessage(payload, self.message_is_binary)
        else:
            self.message_data = None

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
        # break the cycles (session ↔ protocol, Autobahn's is_closed ↔ protocol) that would
        # keep the transport and its unsent buffer alive until a full garbage collection
        self.session = None
        self.transport = None


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
            # a registered producer would keep a paused connection open after loseConnection
            self.unregisterProducer()
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
    :param max_unsent_bytes: bytes that may queue beyond the transport's buffer before the
        connection is dropped (0: unlimited).
    :param log: where the drop of a stuck peer is logged.
    :param account_id: put in that log event as ``account``.
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
        max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES,
        log: Optional[Logger] = None,
        account_id: str = "",
    ) -> None:
        super().__init__(reactor=reactor)
        self.on_open = on_open
        self.on_failed = on_failed
        _configure(self, reactor, ping_interval, ping_timeout, max_message_size, max_unsent_bytes, log,
                   account_id)
        # Autobahn passes masked frames through as they are; onFrameBegin unmasks them
        self.setProtocolOptions(applyMask=False)


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
        max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES,
        log: Optional[Logger] = None,
        account_id: str = "",
    ) -> None:
        super().__init__(url=url, reactor=reactor)
        self.on_open = on_open
        self.on_failed = on_failed
        _configure(self, reactor, ping_interval, ping_timeout, max_message_size, max_unsent_bytes, log,
                   account_id)
        # never wait on Autobahn's global-reactor timer for the server to drop TCP:
        # close_connection() closes it itself
        self.setProtocolOptions(serverConnectionDropTimeout=0)
