"""The built-in BTP ledger plugin: ILP packets over a WebSocket (RFC 23), wire-compatible
with the JavaScript ``ilp-plugin-btp`` 1.5.0, under the plugin names ``btp`` and
``ilp-plugin-btp``.

A :class:`BtpPlugin` either **listens** (``options.listener``: the counterparty dials us) or
**dials** (``options.server``: we dial the counterparty), never both. The BTP protocol logic
lives in :class:`ilptx.transport.btp_session.BtpSession` (sans-IO); the WebSocket adapters in
:mod:`ilptx.transport.btp_ws`; endpoints and TLS in :mod:`ilptx.transport.endpoints`.

Options (the account's ``options`` object; durations in milliseconds, as in the reference)
-----------------------------------------------------------------------------------------

Server mode:

``listener.port`` (int, required)
    TCP port; ``0`` picks a free one. After :meth:`BtpPlugin.connect` has fired, read the
    bound port from ``plugin.listening_port.getHost().port`` (or ``plugin.port``).
``listener.host`` (str, default ``"0.0.0.0"``)
    Interface to bind. The reference (``ws`` with only ``port``) binds every interface; we keep
    that default so reference configs behave the same. Set ``"127.0.0.1"`` for local peers.
``listener.secret`` (str, required)
    The ``auth_token`` the counterparty must send (compared in constant time).
``listener.cert`` / ``listener.key`` (PEM file paths, optional, together)
    Serve ``wss`` (TLS) instead of ``ws``. ``cert`` may hold the chain.
``listener.ca`` (PEM file path, optional, needs ``cert``)
    Require client certificates issued by these CAs.
``authTimeout`` (ms, default 35000)
    A connection that has not authenticated by then is closed.

Client mode:

``server`` (str, required)
    ``btp+ws://[account[:token]@]host[:port][/path]`` or ``btp+wss://...``. The userinfo is
    sent exactly as written (percent-escapes are not decoded, as the reference does), in the
    auth Message; the WebSocket URL is the rest with ``btp+`` dropped.
``btpAccount`` / ``btpToken`` (str, optional)
    The same credentials given separately; not together with userinfo in ``server``.
``btpAuthFlags`` (object, optional)
    Extra entries of the auth Message: str → text/plain, anything else → JSON.
``ca`` (PEM path, optional)
    ``btp+wss``: trust these CAs instead of the platform's. The server's certificate must
    always name the host in ``server``.
``cert`` / ``key`` (PEM paths, optional, together)
    ``btp+wss``: our client certificate.
``reconnectIntervals`` (list of ms, default ``[0, 100, 500, 1000, 2000, 5000]``),
``reconnectInterval`` (ms, a one-element list), ``reconnectClearTryTimeout`` (ms, default 10000)
    The reference's reconnect schedule: after each lost or failed connection wait the next
    interval (staying on the last); 10 s after the last failure start again from the first.

Both modes:

``responseTimeout`` (ms, default 35000)
    How long :meth:`~BtpPlugin.send_data` / :meth:`~BtpPlugin.send_money` wait for an answer.
``pingInterval`` / ``pingTimeout`` (ms, default 10000 / 10000; 0 disables)
    WebSocket pings that detect a dead peer and drop the connection.
``maxMessageSize`` (bytes, default 1048576)
    Largest WebSocket message accepted.
``maxUnsentBytes`` (bytes, default 4194304; 0: no limit)
    Backpressure. When a connection's write buffer is full (64 KiB: the peer is not reading
    what we send) we stop reading from that peer until it has drained; if more than this many
    bytes still queue up for it beyond that buffer, the connection is dropped (logged as a
    warning with the account) and its requests in flight fail with T01, as on any closed
    connection. Not in the reference (whose ``ws`` buffers without limit).

Failed logins (server mode): each wrong ``auth_token`` makes the next check of a login from
the same IP address wait longer (0.1 s doubling up to 10 s; a success, or ten minutes without
failure, clears it; other addresses are not affected); a waiting login is answered when its
turn comes, as the reference would answer it. See :mod:`ilptx.transport.auth_backoff`.

How failures surface (``send_data``)
------------------------------------

* not connected: :class:`~ilptx.errors.PeerUnreachableError` (T01), at once; the connection
  closing while a request waits: the same.
* the peer answers with a BTP Error: :class:`~ilptx.transport.btp_session.BtpRemoteError`,
  an :class:`~ilptx.errors.UnreachableError` (F02) whose message is the reference plugin's
  (JSON of the BTP Error); ``.btp_error`` holds the frame.
* no answer within ``responseTimeout``:
  :class:`~ilptx.transport.btp_session.BtpTimeoutError` (F02, ``"<requestId> timed out"``).

The reference connector rejects every failed ``sendData`` without an ILP code with F02 and the
message ``"failed to send packet: " + message``; the F02 codes above give the same Reject.

Money
-----

BTP has no ledger, so a Transfer is only the peer's word. An incoming Transfer goes through
:meth:`BtpPlugin.verify_transfer`, the single point where a settling plugin (a subclass)
checks it against its ledger; only the amount that returns goes to the money handler. This
plugin verifies nothing: every Transfer is answered with BTP Error ``F00 NotAcceptedError``,
``{"message":"No sendMoney functionality is included in this module"}`` (what
``ilp-plugin-btp`` 1.5.0's ``_handleMoney`` throws), and no balance moves.
:meth:`BtpPlugin.send_money` sends a BTP Transfer (the reference's base plugin no-ops
``sendMoney``), so against a plain peer, ours or the JavaScript one, it errbacks with
:class:`~ilptx.transport.btp_session.BtpRemoteError`.

What this plugin does not do: settlement logic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Optional

import hyperlink
from twisted.application.internet import ClientService
from twisted.internet.defer import CancelledError, Deferred, fail, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.btp import (
    CONTENT_JSON,
    CONTENT_OCTET_STREAM,
    CONTENT_TEXT_PLAIN_UTF8,
    ProtocolDataEntry,
    Transfer,
)
from ilptx.codec.oer import UINT64_MAX
from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.base import PluginHandlers, PluginServices, resolve_all
from ilptx.plugins.hookspecs import hookimpl
from ilptx.transport.btp_session import (
    BtpAuthError,
    BtpRemoteError,
    BtpSession,
    BtpTimeoutError,
    NotAcceptedError,
    Role,
)
from ilptx.transport.auth_backoff import AuthBackoff
from ilptx.transport.btp_ws import DEFAULT_MAX_UNSENT_BYTES, BtpClientFactory, BtpServerFactory, peer_host
from ilptx.transport.endpoints import (
    client_tls_options,
    connect_endpoint,
    listen_endpoint,
    server_tls_options,
)

__all__ = [
    "BtpPlugin",
    "BtpOptions",
    "ListenerOptions",
    "ServerTarget",
    "ReconnectPolicy",
    "parse_options",
    "BtpRemoteError",
    "BtpTimeoutError",
    "BtpAuthError",
    "btp_factory",
    "NotAcceptedError",
    "NO_SETTLEMENT_MESSAGE",
    "ilptx_ledger_plugins",
]

DEFAULT_RESPONSE_TIMEOUT_MS = 35000
DEFAULT_RECONNECT_INTERVALS_MS = (0, 100, 500, 1000, 2000, 5000)
DEFAULT_RECONNECT_CLEAR_TRY_TIMEOUT_MS = 10000
DEFAULT_PING_INTERVAL_MS = 10000
DEFAULT_PING_TIMEOUT_MS = 10000
DEFAULT_AUTH_TIMEOUT_MS = 35000
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
DEFAULT_LISTEN_HOST = "0.0.0.0"
REPLACED_REASON = "This connection has been ended because the user has opened a new connection"
#: What an unverifiable Transfer is refused with (``ilp-plugin-btp`` 1.5.0, ``_handleMoney``).
NO_SETTLEMENT_MESSAGE = "No sendMoney functionality is included in this module"


# -- options ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListenerOptions:
    """``options.listener``: where and how to accept the counterparty."""

    port: int
    host: str
    secret: bytes
    cert: Optional[str] = None
    key: Optional[str] = None
    ca: Optional[str] = None


@dataclass(frozen=True)
class ServerTarget:
    """``options.server`` taken apart: ``ws_url`` has no credentials and may be logged."""

    ws_url: str
    host: str
    port: int
    secure: bool
    account: str
    token: str


@dataclass(frozen=True)
class BtpOptions:
    """Validated plugin options; times in seconds. Exactly one of ``listener``/``server``."""

    listener: Optional[ListenerOptions]
    server: Optional[ServerTarget]
    auth_flags: tuple = ()
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT_MS / 1000
    reconnect_intervals: tuple = tuple(ms / 1000 for ms in DEFAULT_RECONNECT_INTERVALS_MS)
    reconnect_clear_try_timeout: float = DEFAULT_RECONNECT_CLEAR_TRY_TIMEOUT_MS / 1000
    ping_interval: float = DEFAULT_PING_INTERVAL_MS / 1000
    ping_timeout: float = DEFAULT_PING_TIMEOUT_MS / 1000
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT_MS / 1000
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES


def parse_listener(raw: dict, where, port: Optional[int] = None, secret_required: bool = True) -> ListenerOptions:
    """Validate a ``listener`` object: ``{port, host, secret, cert, key, ca}`` (shared by the
    BTP and mini-accounts plugins).

    :param where: ``callable(key) -> str``, the key's full path for error messages.
    :param port: the port when the caller took it from elsewhere (mini-accounts' ``port``).
    :param secret_required: mini-accounts has one token per client, so no ``secret``.
    :raises ConfigError: naming the key.
    """
    if port is None:
        port = raw.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(where("port"), "must be an integer 0..65535")
    host = raw.get("host", DEFAULT_LISTEN_HOST)
    if not isinstance(host, str) or not host:
        raise ConfigError(where("host"), "must be an interface address")
    secret = raw.get("secret", None if secret_required else "")
    if not isinstance(secret, str):
        raise ConfigError(where("secret"), "is required (a string)" if secret_required else "must be a string")
    cert, key = _pair(raw, where)
    ca = _path(raw, "ca", where)
    if ca is not None and cert is None:
        raise ConfigError(where("ca"), "client certificates need TLS: set cert and key too")
    return ListenerOptions(port, host, secret.encode("utf-8"), cert, key, ca)


def ms_option(options: dict, name: str, default: float, where) -> float:
    """A duration option in ms, returned in seconds. :raises ConfigError: not a number >= 0."""
    return _ms(options, name, default, where)


def bytes_option(options: dict, name: str, default: int, where) -> int:
    """A size option in bytes (``maxMessageSize``, ``maxUnsentBytes``).

    :raises ConfigError: not an integer >= 0."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(where(name), "must be a number of bytes >= 0")
    return value


def _ms(options: dict, name: str, default: float, where) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(where(name), "must be a number of milliseconds >= 0")
    return value / 1000


def _path(options: dict, name: str, where) -> Optional[str]:
    value = options.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(where(name), "must be a file path")
    return value


def _pair(options: dict, where) -> tuple[Optional[str], Optional[str]]:
    cert, key = _path(options, "cert", where), _path(options, "key", where)
    if (cert is None) != (key is None):
        raise ConfigError(where("cert" if cert is None else "key"), "cert and key go together")
    return cert, key


def _auth_flag_entry(name, value) -> ProtocolDataEntry:
    if isinstance(value, str):
        return ProtocolDataEntry(name, CONTENT_TEXT_PLAIN_UTF8, value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return ProtocolDataEntry(name, CONTENT_OCTET_STREAM, bytes(value))
    return ProtocolDataEntry(name, CONTENT_JSON, json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _parse_server(options: dict, where) -> ServerTarget:
    text = options["server"]
    if not isinstance(text, str) or not text.startswith("btp+"):
        raise ConfigError(where("server"), 'must start with "btp+", e.g. btp+wss://host:port')
    try:
        url = hyperlink.URL.from_text(text)
    except (ValueError, hyperlink.URLParseError) as e:
        raise ConfigError(where("server"), f"not a URL: {e}") from None
    if url.scheme not in ("btp+ws", "btp+wss") or not url.host:
        raise ConfigError(where("server"), "must be btp+ws://host[:port][/path] or btp+wss://...")
    secure = url.scheme == "btp+wss"
    port = url.port or (443 if secure else 80)
    account, _, token = url.userinfo.partition(":")
    if (account or token) and (options.get("btpAccount") or options.get("btpToken")):
        raise ConfigError(where("server"), "account/token must be passed in via constructor or uri, but not both")
    account = account or options.get("btpAccount") or ""
    token = token or options.get("btpToken") or ""
    if not isinstance(account, str) or not isinstance(token, str):
        raise ConfigError(where("btpToken"), "btpAccount and btpToken must be strings")
    ws_url = url.replace(scheme="wss" if secure else "ws", userinfo="", port=port).to_text()
    return ServerTarget(ws_url, url.host, port, secure, account, token)


def parse_options(options: dict, account_id: str = "") -> BtpOptions:
    """Validate a BTP plugin's ``options`` (see the module docstring).

    :raises ConfigError: with the key path ``accounts.<account_id>.options.<key>``.
    """
    def where(name: str, _prefix=f"accounts.{account_id}.options.") -> str:
        return _prefix + name

    if not isinstance(options, dict):
        raise ConfigError(where("")[:-1], "must be an object")
    has_listener, has_server = options.get("listener") is not None, options.get("server") is not None
    if has_listener == has_server:
        raise ConfigError(where("")[:-1], "give exactly one of 'listener' (accept) and 'server' (dial)")

    listener = server = None
    if has_listener:
        raw = options["listener"]
        if not isinstance(raw, dict):
            raise ConfigError(where("listener"), "must be an object")

        listener = parse_listener(raw, lambda name: where("listener." + name))
    else:
        server = _parse_server(options, where)

    flags = options.get("btpAuthFlags") or {}
    if not isinstance(flags, dict):
        raise ConfigError(where("btpAuthFlags"), "must be an object")
    cert, key = _pair(options, where)

    if "reconnectIntervals" in options:
        raw_intervals = options["reconnectIntervals"]
        if not isinstance(raw_intervals, list) or not raw_intervals:
            raise ConfigError(where("reconnectIntervals"), "must be a non-empty list of milliseconds")
        intervals = tuple(_ms({"i": v}, "i", 0, lambda _n: where("reconnectIntervals")) for v in raw_intervals)
    elif "reconnectInterval" in options:
        intervals = (_ms(options, "reconnectInterval", 0, where),)
    else:
        intervals = tuple(ms / 1000 for ms in DEFAULT_RECONNECT_INTERVALS_MS)

    return BtpOptions(
        listener=listener,
        server=server,
        auth_flags=tuple(_auth_flag_entry(str(k), v) for k, v in flags.items()),
        ca=_path(options, "ca", where),
        cert=cert,
        key=key,
        response_timeout=_ms(options, "responseTimeout", DEFAULT_RESPONSE_TIMEOUT_MS, where),
        reconnect_intervals=intervals,
        reconnect_clear_try_timeout=_ms(options, "reconnectClearTryTimeout",
                                        DEFAULT_RECONNECT_CLEAR_TRY_TIMEOUT_MS, where),
        ping_interval=_ms(options, "pingInterval", DEFAULT_PING_INTERVAL_MS, where),
        ping_timeout=_ms(options, "pingTimeout", DEFAULT_PING_TIMEOUT_MS, where),
        auth_timeout=_ms(options, "authTimeout", DEFAULT_AUTH_TIMEOUT_MS, where),
        max_message_size=bytes_option(options, "maxMessageSize", DEFAULT_MAX_MESSAGE_SIZE, where),
        max_unsent_bytes=bytes_option(options, "maxUnsentBytes", DEFAULT_MAX_UNSENT_BYTES, where),
    )


# -- reconnecting -------------------------------------------------------------------------

class ReconnectPolicy:
    """A :class:`~twisted.application.internet.ClientService` ``retryPolicy`` with the
    reference's ``WebSocketReconnector`` schedule.

    Each call (one per lost or failed connection) returns the next of ``intervals`` (then
    keeps returning the last) and restarts a ``clear_try_timeout`` timer that starts the
    schedule over. Unlike ClientService's own attempt count, a connection that opens and
    drops at once does not reset the schedule, so a flapping peer is not hammered.

    :param intervals: delays in seconds.
    :param clear_try_timeout: seconds after the last failure when the schedule resets.
    :param clock: :class:`~twisted.internet.interfaces.IReactorTime`.
    """

    def __init__(self, intervals, clear_try_timeout: float, clock) -> None:
        self._intervals = tuple(intervals)
        self._clear_try_timeout = clear_try_timeout
        self._clock = clock
        self._tries = 0
        self._clear_timer = None

    def __call__(self, failed_attempts: int) -> float:
        delay = self._intervals[self._tries]
        self._tries = min(self._tries + 1, len(self._intervals) - 1)
        self.stop()
        self._clear_timer = self._clock.callLater(self._clear_try_timeout, self._reset)
        return delay

    def _reset(self) -> None:
        self._clear_timer = None
        self._tries = 0

    def stop(self) -> None:
        """Cancel the reset timer (when the plugin disconnects)."""
        if self._clear_timer is not None and self._clear_timer.active():
            self._clear_timer.cancel()
        self._clear_timer = None


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """Wraps a client endpoint to report failed connection attempts (refused, DNS, timeout)."""

    def __init__(self, endpoint, on_failure: Callable[[Failure], None]) -> None:
        self._endpoint = endpoint
        self._on_failure = on_failure

    def connect(self, factory):
        d = self._endpoint.connect(factory)

        def failed(failure: Failure) -> Failure:
            if not failure.check(CancelledError):
                self._on_failure(failure)
            return failure

        return d.addErrback(failed)


# -- the plugin ---------------------------------------------------------------------------

@implementer(ILedgerPlugin)
class BtpPlugin(PluginHandlers):
    """ILP over BTP over WebSocket: :class:`~ilptx.interfaces.ILedgerPlugin` for one account.

    :param options: the account's plugin ``options`` (see the module docstring).
    :param account_id: the account's id; every log event carries it as ``account``.
    :param reactor: provides ``IReactorTCP``, ``IReactorSSL``, ``IReactorTime`` and a name
        resolver (the global reactor in production, ``MemoryReactorClock`` in tests).
    :param log: where events go (default: a logger in namespace ``ilptx.plugins.btp``).
    :raises ConfigError: invalid options.

    :ivar listening_port: server mode, once :meth:`connect` fired: the
        :class:`~twisted.internet.interfaces.IListeningPort` (``.getHost().port`` is the bound
        port, useful with ``port: 0``); ``None`` otherwise.
    :ivar data_handler: the registered data handler or ``None``.
    :ivar money_handler: the registered money handler or ``None``.
    """

    def __init__(self, options: dict, *, account_id: str, reactor, log: Optional[Logger] = None) -> None:
        self.account_id = account_id
        self.options = parse_options(options, account_id)
        self._reactor = reactor
        self._log = log if log is not None else Logger(namespace="ilptx.plugins.btp")
        self._init_handlers()
        self.listening_port = None
        self._session: Optional[BtpSession] = None  # the authenticated connection in use
        self._sessions: set[BtpSession] = set()  # every live connection
        self._connected = False
        self._running = False
        self._ready = False  # connect() has succeeded (listening / authenticated once)
        self._ready_waiters: list[Deferred] = []
        self._client_service: Optional[ClientService] = None
        self._reconnect_policy: Optional[ReconnectPolicy] = None
        self._auth_backoff = AuthBackoff(reactor)  # server mode: failed logins per IP address

    def __repr__(self) -> str:
        mode = "listener" if self.options.listener is not None else self.options.server.ws_url
        return f"<BtpPlugin {self.account_id!r} {mode} connected={self.is_connected()}>"

    @property
    def port(self) -> Optional[int]:
        """Server mode: the bound TCP port once listening, else ``None``."""
        return self.listening_port.getHost().port if self.listening_port is not None else None

    # -- ILedgerPlugin --------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Listen (server mode) or dial and authenticate (client mode).

        :returns: ``Deferred[None]``: server mode fires once the port is bound; client mode
            once the first connection has authenticated (connection attempts are retried on
            the reconnect schedule until then). Client mode errbacks with
            :class:`~ilptx.transport.btp_session.BtpAuthError` when the server refuses the
            first authentication, and then stops (as the reference does); after one success
            it reconnects for ever. Calling it again while running returns the same outcome.
        """
        if self._running and self._ready:
            return succeed(None)
        d = Deferred()
        self._ready_waiters.append(d)
        if not self._running:
            self._running = True
            try:
                if self.options.listener is not None:
                    self._listen()
                else:
                    self._dial()
            except Exception:
                self._running = False
                self._fire_ready(Failure())
        return d

    def disconnect(self) -> Deferred:
        """Stop listening or dialling, close every connection, fail requests in flight (T01).

        :returns: ``Deferred[None]`` that fires when the connections are closed.
        """
        self._running = False
        self._ready = False
        if self._ready_waiters:
            self._fire_ready(Failure(PeerUnreachableError("BTP plugin disconnected before it connected")))
        self._session = None
        self._set_connected(False)
        waits = []
        for session in list(self._sessions):
            waits.append(session.when_closed())
            session.close(1000)
        if self.listening_port is not None:
            port, self.listening_port = self.listening_port, None
            waits.append(maybeDeferred(port.stopListening))
        waits.append(self._stop_dialling())
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def is_connected(self) -> bool:
        """:returns: whether an authenticated counterparty is connected now."""
        return self._session is not None

    def send_data(self, data: bytes) -> Deferred:
        """Send an OER ILP packet in a BTP Message (single ``ilp`` entry).

        :returns: ``Deferred[bytes]``: the ``ilp`` entry of the peer's Response (``b""`` if it
            has none). Errbacks: :class:`~ilptx.errors.PeerUnreachableError` (T01) when not
            connected or the connection closes first; :class:`BtpRemoteError` (F02) when the
            peer answers with a BTP Error; :class:`BtpTimeoutError` (F02) after
            ``responseTimeout``. Cancelling it forgets the request.
        """
        session = self._session
        if session is None:
            return fail(PeerUnreachableError(f"BTP peer of account {self.account_id} is not connected"))
        return session.request_ilp(data)

    def send_money(self, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Send a BTP Transfer of ``amount`` (base units, 1..2**64-1) with no protocol data.

        ``idempotency_key`` is ignored: BTP 2.0 has no field for it, and ``ilp-plugin-btp``
        peers would not read one.

        :returns: ``Deferred[None]`` on the peer's Response; errbacks as :meth:`send_data`,
            and with :class:`ValueError` for a bad amount.
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= UINT64_MAX:
            return fail(ValueError(f"transfer amount must be an integer 1..2**64-1, got {amount!r}"))
        session = self._session
        if session is None:
            return fail(PeerUnreachableError(f"BTP peer of account {self.account_id} is not connected"))
        return session.request(lambda rid: Transfer(rid, amount)).addCallback(lambda _: None)

    def verify_transfer(self, transfer: Transfer):
        """Check an incoming BTP Transfer against the ledger; the override point of settling plugins.

        Called for every Transfer from the authenticated peer (when a money handler is
        registered), before anything is credited. A settling plugin checks
        ``transfer.protocol_data`` (its claim or payment proof, RFC 23 sub-protocols) and
        ``transfer.amount`` (the peer's word only), records the credit durably, and returns
        the amount the proof is worth; exactly that is passed to the money handler (the
        connector's incoming money pipeline, which lowers the peer's balance), then the peer
        gets an empty Response. Raise :class:`NotAcceptedError` to refuse (F00 with the
        message); any other exception is logged as a failure and also answered F00.

        :param transfer: the :class:`ilptx.codec.btp.Transfer` frame (``amount``: int base
            units, 0..2**64-1; ``protocol_data``: tuple of ``ProtocolDataEntry``).
        :returns: the verified amount, ``int`` >= 0 (0: credit nothing), or a Deferred of it.
        :raises NotAcceptedError: always, here: plain BTP proves no payment (as
            ``ilp-plugin-btp`` 1.5.0, which throws :data:`NO_SETTLEMENT_MESSAGE`).
        """
        raise NotAcceptedError(NO_SETTLEMENT_MESSAGE)

    # -- BtpSession owner -----------------------------------------------------------------

    def session_open(self, session: BtpSession) -> None:
        """A session authenticated: it becomes the one in use; an older one is closed."""
        if not self._running:
            session.close(1000)
            return
        old, self._session = self._session, session
        self._log.info("{account}: BTP connection authenticated (peer {peer}, username {username!r})",
                       account=self.account_id, peer=session.peer, username=session.username)
        if old is not None and old is not session:
            self._log.info("{account}: closing the older BTP connection from {peer}",
                           account=self.account_id, peer=old.peer)
            old.close(1000, REPLACED_REASON)
        self._set_connected(True)
        if not self._ready:
            self._ready = True
            self._fire_ready(None)

    def session_auth_failed(self, session: BtpSession, error: BtpAuthError) -> None:
        """The server refused our auth Message: give up if we never connected."""
        if not self._ready and self._ready_waiters:
            self._log.error("{account}: first BTP authentication refused; not reconnecting",
                            account=self.account_id)
            self._running = False
            self._stop_dialling()
            self._fire_ready(Failure(error))

    def session_closed(self, session: BtpSession, reason: Optional[Failure]) -> None:
        """A connection ended (the session has failed its pending requests)."""
        self._sessions.discard(session)
        if session is self._session:
            self._session = None
            self._log.info("{account}: BTP connection to {peer} closed",
                           account=self.account_id, peer=session.peer)
            self._set_connected(False)

    # -- internals ------------------------------------------------------------------------

    def _new_session(self, protocol, role: Role) -> BtpSession:
        listener = self.options.listener
        session = BtpSession(
            role=role,
            send=protocol.send_frame,
            close=protocol.close_connection,
            clock=self._reactor,
            owner=self,
            log=self._log,
            account_id=self.account_id,
            response_timeout=self.options.response_timeout,
            secret=listener.secret if role is Role.SERVER else None,
            auth_timeout=self.options.auth_timeout if role is Role.SERVER else None,
            auth_backoff=self._auth_backoff if role is Role.SERVER else None,
            peer=protocol.peer or "",
            source=peer_host(protocol),
        )
        self._sessions.add(session)
        return session

    def _listen(self) -> None:
        listener = self.options.listener
        tls = None
        if listener.cert is not None:
            tls = server_tls_options(listener.cert, listener.key, listener.ca)
        factory = BtpServerFactory(
            reactor=self._reactor,
            on_open=self._server_ws_open,
            on_failed=self._server_ws_failed,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.ping_timeout,
            max_message_size=self.options.max_message_size,
            max_unsent_bytes=self.options.max_unsent_bytes,
            log=self._log,
            account_id=self.account_id,
        )
        endpoint = listen_endpoint(self._reactor, listener.port, listener.host, tls)

        def listening(port) -> None:
            if not self._running:  # disconnect() came first
                port.stopListening()
                return
            self.listening_port = port
            self._log.info("{account}: listening for BTP connections on {address} ({scheme})",
                           account=self.account_id, address=port.getHost(),
                           scheme="wss" if tls is not None else "ws")
            self._ready = True
            self._fire_ready(None)

        def not_listening(failure: Failure) -> None:
            self._running = False
            # the caller of connect() gets the failure (the connector stops start-up with it)
            self._log.error("{account}: cannot listen for BTP connections: {error}", account=self.account_id,
                            error=failure.getErrorMessage())
            self._fire_ready(failure)

        endpoint.listen(factory).addCallbacks(listening, not_listening)

    def _server_ws_open(self, protocol) -> BtpSession:
        session = self._new_session(protocol, Role.SERVER)
        if not self._running:
            session.close(1000)
        return session

    def _server_ws_failed(self, protocol, reason: Failure) -> None:
        self._log.info("{account}: incoming BTP connection from {peer} ended before the "
                       "WebSocket opened: {reason.value}", account=self.account_id,
                       peer=protocol.peer, reason=reason)

    def _dial(self) -> None:
        opts = self.options
        target = opts.server
        tls = client_tls_options(target.host, opts.ca, opts.cert, opts.key) if target.secure else None
        factory = BtpClientFactory(
            target.ws_url,
            reactor=self._reactor,
            on_open=self._client_ws_open,
            on_failed=self._client_ws_failed,
            ping_interval=opts.ping_interval,
            ping_timeout=opts.ping_timeout,
            max_message_size=opts.max_message_size,
            max_unsent_bytes=opts.max_unsent_bytes,
            log=self._log,
            account_id=self.account_id,
        )
        endpoint = _ReportingEndpoint(connect_endpoint(self._reactor, target.host, target.port, tls),
                                      self._dial_failed)
        self._reconnect_policy = ReconnectPolicy(opts.reconnect_intervals,
                                                 opts.reconnect_clear_try_timeout, self._reactor)
        self._client_service = ClientService(endpoint, factory, retryPolicy=self._reconnect_policy,
                                             clock=self._reactor)
        self._log.info("{account}: connecting to BTP server {url}", account=self.account_id,
                       url=target.ws_url)
        self._client_service.startService()

    def _client_ws_open(self, protocol) -> BtpSession:
        session = self._new_session(protocol, Role.CLIENT)
        target = self.options.server
        session.start_auth(target.account, target.token, self.options.auth_flags)
        return session

    def _client_ws_failed(self, protocol, reason: Failure) -> None:
        self._log.warn("{account}: BTP connection to {url} ended before the WebSocket opened: "
                       "{reason.value}", account=self.account_id, url=self.options.server.ws_url,
                       reason=reason)

    def _dial_failed(self, reason: Failure) -> None:
        if not self._running:  # disconnect() cancelled the attempt
            return
        self._log.warn("{account}: cannot connect to BTP server {url}: {reason.value}",
                       account=self.account_id, url=self.options.server.ws_url, reason=reason)

    def _stop_dialling(self) -> Deferred:
        d = succeed(None)
        if self._client_service is not None:
            service, self._client_service = self._client_service, None
            d = service.stopService()
        if self._reconnect_policy is not None:
            self._reconnect_policy.stop()
            self._reconnect_policy = None
        return d

    def _fire_ready(self, result) -> None:
        waiters, self._ready_waiters = self._ready_waiters, []
        resolve_all(waiters, result)

    def _set_connected(self, connected: bool) -> None:
        if connected == self._connected:
            return
        self._connected = connected
        self._notify_connection(connected)


def btp_factory(options: dict, *, account_id: str, services: PluginServices) -> BtpPlugin:
    """The ``btp`` ledger plugin factory: a :class:`BtpPlugin` on ``services.reactor``/``.log``.

    :raises ConfigError: invalid options.
    """
    return BtpPlugin(options, account_id=account_id, reactor=services.reactor, log=services.log)


@hookimpl
def ilptx_ledger_plugins():
    """Register :func:`btp_factory` as ``btp`` and ``ilp-plugin-btp`` (the reference's name)."""
    return {"btp": btp_factory, "ilp-plugin-btp": btp_factory}
