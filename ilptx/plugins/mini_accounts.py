"""The built-in ``mini-accounts`` ledger plugin: ONE BTP listener serving MANY clients,
wire-compatible with the JavaScript ``ilp-plugin-mini-accounts`` 4.2.0, under the plugin
names ``mini-accounts`` and ``ilp-plugin-mini-accounts``.

The connector sees one account; behind it, each BTP client that logs in becomes a *client*
with its own ILP address under the account's address::

    <account address>.<client>      e.g.  g.conn.moneyd.alice

Clients authenticate with the BTP auth Message (RFC 23): ``auth_username`` and
``auth_token``. The client name is ``auth_username``, or, when that is empty,
``base64url(sha256(auth_token))`` without padding (the reference's ``tokenToAccount``). The
first login of a name registers its token, stored **hashed** (``base64url(sha256(token))``,
the reference's ``Token`` format) in the store under
``mini-accounts:<account id>:<client>:hashed-token``; later logins must present the same token
(compared in constant time), else they get a BTP Error ``F00 NotAcceptedError`` and the
connection is closed. A client may hold several connections at once.

The BTP side is :class:`~ilptx.transport.btp_session.BtpSession`'s, as for the ``btp``
plugin: the auth Message's form, its answers and wording, the auth timeout and the backoff
on failed logins; this plugin only supplies the authenticator (the client name and the
token check above). A wrong token makes the next login with the same ``auth_username`` from
the same IP address wait longer (0.1 s doubling up to 10 s, cleared by a success; other names
and addresses are not slowed: :mod:`ilptx.transport.auth_backoff`).

The account's own address
-------------------------

:meth:`MiniAccountsPlugin.set_account_address` tells the plugin the account's ILP address,
asset code and scale; the composition root calls it before :meth:`~MiniAccountsPlugin.connect`
with ``f"{connector address}.{segment}"``. When it has not been called, ``connect`` does what
the reference does: it sends an IL-DCP request (RFC 31) to the connector through the
registered data handler and takes the answer (so the account must be a ``child``); with
``debugHostIldcpInfo`` it takes that instead (the reference's option).

Options (the account's ``options`` object; durations in milliseconds)
---------------------------------------------------------------------

``listener.port`` (int, default ``port`` or 3000), ``listener.host`` (default ``"0.0.0.0"``),
``listener.cert`` / ``listener.key`` (PEM paths: serve ``wss``), ``listener.ca`` (PEM path:
require client certificates) — as for the ``btp`` plugin. ``listener.secret`` is accepted for
symmetry with ``btp`` and ignored (every client has its own token). ``port`` (int) is the
reference's way to give the port alone.

``allowedOrigins`` (list of regular expressions, default ``[]``)
    A WebSocket handshake that carries an ``Origin`` header (browsers) is refused with HTTP
    403 unless one expression matches somewhere in it (JavaScript ``RegExp.test``, here
    :func:`re.search`). Handshakes without ``Origin`` (non-browser clients) are accepted.
``generateAccount`` (bool, optional)
    The reference's switch: ``true`` — the client name is always the token's hash
    (``auth_username`` must be empty or equal to it); ``false`` — ``auth_username`` is required.
    Absent: the username when given, else the hash.
``clientBalance`` (object, optional): ``{minimum, maximum}``, decimal strings (or
    ``"-Infinity"``/``"Infinity"``) as in an account's ``balance``
    Per-client limits, from the connector's point of view (positive: the client owes us). A
    Prepare *from* a client is refused with a ``T04`` Reject (``exceeded maximum balance.``)
    when ``balance + incoming reserved + amount`` would pass ``maximum``; a Prepare *to* a
    client errbacks with :class:`~ilptx.errors.InsufficientLiquidityError` (T04) when
    ``balance − outgoing reserved − amount`` would fall under ``minimum``. Amounts are
    reserved while in flight, committed on Fulfill, released otherwise — the rules of
    :mod:`ilptx.core.balances` that every store applies (reservations never go below 0) —
    so one client cannot run up the credit the others share. Balances are kept in memory:
    they restart from 0 with the process.
``debugHostIldcpInfo`` (object, optional): ``{clientAddress, assetScale, assetCode}``
    The account's IL-DCP information, instead of asking the connector (the reference's option).
``authTimeout``, ``responseTimeout`` (ms, default 35000), ``pingInterval`` / ``pingTimeout``
    (ms, default 10000), ``maxMessageSize`` (bytes, default 1048576), ``maxUnsentBytes``
    (bytes, default 4194304: a client that does not read is dropped): as for ``btp``.

Packets
-------

* From a client: a Prepare to ``peer.config`` is answered by the plugin (IL-DCP: the
  client's address, the account's asset scale and code). Every other ILP packet goes to the
  single data handler: the connector sees it as coming from this account.
* :meth:`~MiniAccountsPlugin.send_data`: the Prepare goes to the client named by the segment
  after the account's address (``acct.alice`` gets ``acct.alice`` and ``acct.alice.x``, never
  ``acct.alicebob.x``), over its newest connection. A destination outside the account's
  address errbacks with :class:`~ilptx.errors.UnreachableError` (F02); a client that is not
  connected with :class:`~ilptx.errors.PeerUnreachableError` (T01). The client's answer is
  passed on as it is; it moves the client's balance only when it is a Fulfill whose
  fulfillment matches the condition (:func:`~ilptx.codec.ilp.fulfillment_matches`). A wrong
  Fulfill becomes ``F05`` and a late one ``R00`` in the connector's ``validateFulfillment``
  and ``expire`` middlewares, as for every account.
* Money: a BTP Transfer from a client proves nothing (BTP has no ledger): it goes through
  :meth:`~MiniAccountsPlugin.verify_transfer`, which a settling subclass overrides; here it
  refuses every Transfer with BTP Error ``F00 NotAcceptedError`` ("No sendMoney functionality
  is included in this module", as the reference) and no balance moves. A verified amount
  lowers that client's balance and goes to the money handler.
  :meth:`~MiniAccountsPlugin.send_money` does nothing (the reference's base plugin's
  ``sendMoney`` is empty too): there is no single counterparty to pay.

Differences from the reference
------------------------------

* A Prepare to an unconnected client errbacks with T01 (the reference throws, which its
  connector turns into F02).
* ``send_data`` sends to one connection of the client (the newest); the reference sends
  the Prepare on every connection of the client and takes the first answer.
* Origins not allowed are refused at the handshake (HTTP 403); the reference completes the
  handshake and then closes.
* A client name must be a valid ILP address segment (``[A-Za-z0-9_~-]+``); the reference
  accepts anything. A connection counts for its client only once its token checked out
  (the reference adds it before the check).
* Answers for ``peer.config`` Prepares *we* send (``send_data``) are a proper IL-DCP Fulfill
  with the account's own information (the reference returns the bare IL-DCP data).
* No expiry timer in ``send_data``: the caller cancels the Deferred (the ILedgerPlugin
  contract).
* ``clientBalance`` is ours.
* A wrong or late Fulfill is turned into a Reject by the connector's middlewares
  (``triggeredBy`` the connector's address), not by the plugin (the account's address).
* Failed logins are slowed down per IP address and client name; ``maxUnsentBytes``.

What this plugin does not do: settle with clients, persist client balances (both are the settling
subclass's, :class:`ilptx.settlement.server.SettlingServerPlugin`, through the per-client balance
hooks ``_reserve_incoming`` / ``_reserve_outgoing`` / ``_settle`` / ``_outgoing_answered`` and
:attr:`MiniAccountsPlugin.connection_owner`), or forget registered tokens (delete the store key to
release a name).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Optional

from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred, DeferredLock, fail, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.address import is_valid_address, is_valid_segment
from ilptx.codec.btp import CONTENT_OCTET_STREAM, Message, ProtocolDataEntry, find_entry
from ilptx.codec.ildcp import (
    ILDCP_DESTINATION,
    PEER_PROTOCOL_CONDITION,
    IldcpResponse,
    response_fulfill,
)
from ilptx.codec.ilp import (
    ErrorCode,
    Fulfill,
    Prepare,
    Reject,
    decode_packet,
    decode_prepare,
    decode_response,
    encode_packet,
    fulfillment_matches,
)
from ilptx.codec.oer import DecodeError
from ilptx.core.balances import (
    BalanceState,
    apply_reserve_incoming,
    apply_reserve_outgoing,
    apply_settle,
    parse_limit,
)
from ilptx.errors import (
    ConfigError,
    InsufficientLiquidityError,
    InvalidPacketError,
    PeerUnreachableError,
    UnreachableError,
)
from ilptx.interfaces import IAccountAddressAware, ILedgerPlugin
from ilptx.plugins.btp import (
    DEFAULT_AUTH_TIMEOUT_MS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL_MS,
    DEFAULT_PING_TIMEOUT_MS,
    DEFAULT_RESPONSE_TIMEOUT_MS,
    NO_SETTLEMENT_MESSAGE,
    ListenerOptions,
    bytes_option,
    ms_option as _ms,
    parse_listener,
)
from ilptx.core.ildcp import fetch_config
from ilptx.plugins.base import PluginHandlers, PluginServices, resolve_all
from ilptx.stores.memory import MemoryStore
from ilptx.plugins.hookspecs import hookimpl
from ilptx.transport.auth_backoff import AuthBackoff
from ilptx.transport.btp_session import AuthRefused, BtpSession, NotAcceptedError, Role
from ilptx.transport.btp_ws import DEFAULT_MAX_UNSENT_BYTES, BtpServerFactory, BtpServerProtocol, peer_host
from ilptx.transport.endpoints import listen_endpoint, server_tls_options

__all__ = [
    "MiniAccountsPlugin",
    "MiniAccountsOptions",
    "parse_options",
    "token_to_account",
    "hashed_token",
    "token_key",
    "mini_accounts_factory",
    "ilptx_ledger_plugins",
]

DEFAULT_PORT = 3000  # the reference's default
ILDCP_TIMEOUT_MS = 60000  # the reference's PEER_PROTOCOL_EXPIRY_DURATION
_UTC = timezone.utc
_ZERO = BalanceState()


def hashed_token(token: bytes) -> str:
    """:returns: ``base64url(sha256(token))`` without padding (the reference's ``sha256``).

    The token is read as UTF-8 first (invalid bytes become U+FFFD), as the reference's
    ``Buffer.toString()`` does, so the hash is the reference's for any token bytes.
    """
    text = bytes(token).decode("utf-8", "replace").encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(text).digest()).rstrip(b"=").decode("ascii")


#: The client name of a login without ``auth_username`` (the reference's ``tokenToAccount``).
token_to_account = hashed_token


def token_key(account_id: str, client: str) -> str:
    """:returns: the store key of ``client``'s hashed token on account ``account_id``."""
    return f"mini-accounts:{account_id}:{client}:hashed-token"


# -- options ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MiniAccountsOptions:
    """Validated options (see the module docstring); times in seconds, limits ``int`` or
    ``None`` (no limit)."""

    listener: ListenerOptions
    allowed_origins: tuple = ()
    generate_account: Optional[bool] = None
    client_minimum: Optional[int] = None
    client_maximum: Optional[int] = None
    host_ildcp: Optional[IldcpResponse] = None
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT_MS / 1000
    ping_interval: float = DEFAULT_PING_INTERVAL_MS / 1000
    ping_timeout: float = DEFAULT_PING_TIMEOUT_MS / 1000
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT_MS / 1000
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES


def _port(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(key, "must be an integer 0..65535")
    return value


def _limit(raw: dict, name: str, where) -> Optional[int]:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(where(name), 'must be a decimal string, "Infinity" or "-Infinity"')
    try:
        return parse_limit(value)
    except ValueError:
        raise ConfigError(where(name), f"not an integer: {value!r}") from None


def parse_options(options: dict, account_id: str = "") -> MiniAccountsOptions:
    """Validate a mini-accounts plugin's ``options`` (see the module docstring).

    :raises ConfigError: with the key path ``accounts.<account_id>.options.<key>``.
    """
    def where(name: str, _prefix=f"accounts.{account_id}.options.") -> str:
        return _prefix + name

    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(where("")[:-1], "must be an object")

    raw = options.get("listener") or {}
    if not isinstance(raw, dict):
        raise ConfigError(where("listener"), "must be an object")

    def lwhere(name: str) -> str:
        return where("listener." + name)

    if "port" in raw and "port" in options:
        raise ConfigError(where("port"), "give the port once: listener.port or port")
    port = _port(raw["port"], lwhere("port")) if "port" in raw else \
        _port(options.get("port", DEFAULT_PORT), where("port"))
    listener = parse_listener(raw, lwhere, port=port, secret_required=False)

    origins = options.get("allowedOrigins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError(where("allowedOrigins"), "must be a list of regular expressions")
    try:
        allowed = tuple(re.compile(o) for o in origins)
    except re.error as e:
        raise ConfigError(where("allowedOrigins"), f"not a regular expression: {e}") from None

    generate = options.get("generateAccount")
    if generate is not None and not isinstance(generate, bool):
        raise ConfigError(where("generateAccount"), "must be true or false")

    balance = options.get("clientBalance") or {}
    if not isinstance(balance, dict):
        raise ConfigError(where("clientBalance"), "must be an object {minimum, maximum}")

    def bwhere(name: str) -> str:
        return where("clientBalance." + name)

    minimum, maximum = _limit(balance, "minimum", bwhere), _limit(balance, "maximum", bwhere)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ConfigError(bwhere("minimum"), "must not be above maximum")

    host_ildcp = None
    info = options.get("debugHostIldcpInfo")
    if info is not None:
        if not isinstance(info, dict):
            raise ConfigError(where("debugHostIldcpInfo"), "must be {clientAddress, assetScale, assetCode}")
        address, scale, code = info.get("clientAddress"), info.get("assetScale"), info.get("assetCode")
        if not isinstance(address, str) or not is_valid_address(address):
            raise ConfigError(where("debugHostIldcpInfo.clientAddress"), "must be an ILP address")
        if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 255:
            raise ConfigError(where("debugHostIldcpInfo.assetScale"), "must be an integer 0..255")
        if not isinstance(code, str):
            raise ConfigError(where("debugHostIldcpInfo.assetCode"), "must be a string")
        host_ildcp = IldcpResponse(address, scale, code)

    return MiniAccountsOptions(
        listener=listener,
        allowed_origins=allowed,
        generate_account=generate,
        client_minimum=minimum,
        client_maximum=maximum,
        host_ildcp=host_ildcp,
        response_timeout=_ms(options, "responseTimeout", DEFAULT_RESPONSE_TIMEOUT_MS, where),
        ping_interval=_ms(options, "pingInterval", DEFAULT_PING_INTERVAL_MS, where),
        ping_timeout=_ms(options, "pingTimeout", DEFAULT_PING_TIMEOUT_MS, where),
        auth_timeout=_ms(options, "authTimeout", DEFAULT_AUTH_TIMEOUT_MS, where),
        max_message_size=bytes_option(options, "maxMessageSize", DEFAULT_MAX_MESSAGE_SIZE, where),
        max_unsent_bytes=bytes_option(options, "maxUnsentBytes", DEFAULT_MAX_UNSENT_BYTES, where),
    )


# -- helpers ------------------------------------------------------------------------------


def _ilp_message(data: bytes, request_id: int) -> Message:
    return Message(request_id, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, data),))


def _fulfill_of(reply) -> Optional[Fulfill]:
    """:returns: ``reply`` decoded when it is a well-formed ILP Fulfill, else ``None``."""
    if not isinstance(reply, (bytes, bytearray)):
        return None
    try:
        response = decode_response(bytes(reply))
    except DecodeError:
        return None
    return response if type(response) is Fulfill else None


def _ilp_of(response) -> bytes:
    entry = find_entry(response.protocol_data, "ilp")
    return entry.data if entry is not None else b""


class _MiniAccountsServerProtocol(BtpServerProtocol):
    """A BTP server connection that refuses browser handshakes from origins not allowed."""

    def onConnect(self, request):
        origin = request.headers.get("origin")
        if origin is not None and not self.factory.origin_allowed(origin):
            self.factory.origin_refused(origin, self.peer)
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "origin not allowed")
        return None


class _MiniAccountsServerFactory(BtpServerFactory):
    protocol = _MiniAccountsServerProtocol

    def __init__(self, *, origin_allowed: Callable[[str], bool], origin_refused: Callable, **kwargs) -> None:
        super().__init__(**kwargs)
        self.origin_allowed = origin_allowed
        self.origin_refused = origin_refused


# -- one client connection ----------------------------------------------------------------

class _ClientConnection:
    """The :class:`BtpSession` owner of one accepted connection: once the session has
    authenticated (its ``username`` is the client name), hands the client's packets and money
    to the plugin under that name."""

    __slots__ = ("plugin", "client")

    def __init__(self, plugin: "MiniAccountsPlugin") -> None:
        self.plugin = plugin
        self.client: Optional[str] = None

    @property
    def data_handler(self):
        return self._handle_data

    @property
    def money_handler(self):
        return self._handle_money

    def session_open(self, session: BtpSession) -> None:
        self.client = session.username
        self.plugin._client_open(session)

    def session_auth_failed(self, session, error) -> None:  # pragma: no cover - server role only
        pass

    def session_closed(self, session: BtpSession, reason) -> None:
        self.plugin._client_closed(session)

    def _handle_data(self, data: bytes):
        return self.plugin._incoming_data(self.client, data)

    def verify_transfer(self, transfer):
        return self.plugin.verify_transfer(self.client, transfer)

    def _handle_money(self, amount: int):
        return self.plugin._incoming_money(self.client, amount)


# -- the plugin ---------------------------------------------------------------------------

@implementer(ILedgerPlugin, IAccountAddressAware)
class MiniAccountsPlugin(PluginHandlers):
    """Many BTP clients behind one account: :class:`~ilptx.interfaces.ILedgerPlugin`.

    :param options: the account's plugin ``options`` (see the module docstring).
    :param account_id: the account's id (log events, store keys).
    :param reactor: ``IReactorTCP``, ``IReactorSSL`` and ``IReactorTime``.
    :param log: where events go (default: namespace ``ilptx.plugins.mini_accounts``).
    :param store: where registered (hashed) tokens live: anything with the
        :class:`~ilptx.interfaces.IStore` ``get``/``put`` methods; default an in-memory dict.
    :raises ConfigError: invalid options.

    :ivar listening_port: the ``IListeningPort`` once :meth:`connect` fired, else ``None``.
    :ivar account_address: the account's ILP address once known, else ``None``.
    :cvar connection_owner: the class of each connection's :class:`BtpSession` owner (called
        with the plugin); a settling subclass gives one with ``handle_message``.
    """

    connection_owner = _ClientConnection

    def __init__(self, options: dict, *, account_id: str, reactor, log: Optional[Logger] = None,
                 store=None) -> None:
        self.account_id = account_id
        self.options = parse_options(options, account_id)
        self._reactor = reactor
        self._log = log if log is not None else Logger(namespace="ilptx.plugins.mini_accounts")
        self._store = store if store is not None else MemoryStore()
        self._auth_lock = DeferredLock()  # one token check at a time: no double registration
        self._auth_backoff = AuthBackoff(reactor)  # failed logins per (IP address, client name)
        self._init_handlers()
        self.listening_port = None
        self.account_address: Optional[str] = None
        self.asset_code = ""
        self.asset_scale = 9  # the reference's currencyScale default, until told
        self._sessions: set[BtpSession] = set()  # every accepted connection
        self._clients: dict[str, list[BtpSession]] = {}  # client → open sessions, newest last
        self._balances: dict[str, BalanceState] = {}  # client → its balance (clientBalance)
        self._starting: Optional[Deferred] = None
        self._waiters: list[Deferred] = []
        self._running = False
        if self.options.listener.secret:
            self._log.warn("{account}: listener.secret is ignored by mini-accounts: every client "
                           "registers its own token", account=account_id)
        if self.options.host_ildcp is not None:
            info = self.options.host_ildcp
            self.set_account_address(info.client_address, info.asset_code, info.asset_scale)

    def __repr__(self) -> str:
        return (f"<MiniAccountsPlugin {self.account_id!r} {self.account_address!r} "
                f"clients={len(self._clients)} listening={self.is_connected()}>")

    @property
    def port(self) -> Optional[int]:
        """The bound TCP port once listening, else ``None``."""
        return self.listening_port.getHost().port if self.listening_port is not None else None

    def set_account_address(self, address: str, asset_code: Optional[str] = None,
                            asset_scale: Optional[int] = None) -> None:
        """Tell the plugin the account's ILP address (and asset): clients get
        ``<address>.<client>``; IL-DCP answers carry ``asset_code``/``asset_scale``.

        The connector calls it before :meth:`connect` with ``f"{connector}.{segment}"``. May
        be called again (a new connector address): clients' addresses follow at once.

        :raises ValueError: not a valid ILP address.
        """
        if not is_valid_address(address):
            raise ValueError(f"not an ILP address: {address!r}")
        self.account_address = address
        if asset_code is not None:
            self.asset_code = asset_code
        if asset_scale is not None:
            self.asset_scale = asset_scale

    def client_address(self, client: str) -> str:
        """:returns: ``<account address>.<client>``."""
        return f"{self.account_address}.{client}"

    def clients(self) -> list[str]:
        """:returns: the names of the clients connected now, sorted."""
        return sorted(self._clients)

    def client_balance(self, client: str) -> BalanceState:
        """:returns: ``client``'s balance and reservations (zeros for an unknown client)."""
        return self._balances.get(client, _ZERO)

    # -- ILedgerPlugin --------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Learn the account's address if needed (IL-DCP through the data handler), then listen.

        :returns: ``Deferred[None]`` once the port is bound; errbacks when the address
            cannot be learned (no data handler, IL-DCP Reject) or the port cannot be bound.
        """
        if self.listening_port is not None:
            return succeed(None)
        d = Deferred()
        self._waiters.append(d)
        if not self._running:
            self._running = True
            if self.account_address is not None:
                start = succeed(None)
            elif self.data_handler is not None:
                start = self._fetch_ildcp()
            else:
                start = fail(RuntimeError("no request handler registered"))
            start.addCallback(lambda _: self._listen()).addCallbacks(self._listening, self._not_listening)
        return d

    def disconnect(self) -> Deferred:
        """Stop listening, close every client connection (requests in flight fail with T01).

        :returns: ``Deferred[None]`` once the connections are closed and the port released.
        """
        self._running = False
        self._fire(Failure(PeerUnreachableError("mini-accounts plugin disconnected before it listened")))
        waits = []
        for session in list(self._sessions):
            waits.append(session.when_closed())
            session.close(1000)
        self._sessions.clear()
        self._clients.clear()
        if self.listening_port is not None:
            port, self.listening_port = self.listening_port, None
            waits.append(maybeDeferred(port.stopListening))
            self._notify_connection(False)
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def is_connected(self) -> bool:
        """:returns: whether the plugin is listening (as the reference: not whether any
        client is connected)."""
        return self.listening_port is not None

    def send_data(self, data: bytes) -> Deferred:
        """Send a Prepare to the client its destination names (see the module docstring).

        :returns: ``Deferred[bytes]``: the client's Fulfill or Reject, unchanged (only a
            Fulfill matching the condition commits the client's balance). Errbacks:
            :class:`InvalidPacketError` (F01) not a Prepare; :class:`UnreachableError` (F02)
            not under the account's address;
            :class:`PeerUnreachableError` (T01) client not connected or gone before answering;
            :class:`InsufficientLiquidityError` (T04) under the client's minimum; the
            session's BTP errors (F02). Cancelling it forgets the request.
        """
        try:
            prepare = decode_prepare(data)
        except DecodeError as e:
            return fail(InvalidPacketError(f"can't route packet that's not a PREPARE. {e}"))
        address = self.account_address
        if address is None:
            return fail(PeerUnreachableError(f"mini-accounts account {self.account_id} has no address yet"))
        if prepare.destination == ILDCP_DESTINATION:
            return succeed(encode_packet(response_fulfill(
                IldcpResponse(address, self.asset_scale, self.asset_code))))
        prefix = address + "."
        if not prepare.destination.startswith(prefix):
            return fail(UnreachableError(
                "can't route packet that is not meant for one of my clients. "
                f"destination={prepare.destination} prefix={prefix}"))
        client = prepare.destination[len(prefix):].split(".", 1)[0]
        sessions = self._clients.get(client)
        if not sessions:
            return fail(PeerUnreachableError(f"No clients connected for account {client}"))
        amount = prepare.amount

        def answered(result):
            if amount:
                fulfill = _fulfill_of(result)
                return self._outgoing_answered(client, amount, fulfill is not None and fulfillment_matches(
                    fulfill.fulfillment, prepare.execution_condition), result)
            return result

        def send(reserved):
            if not reserved:
                raise InsufficientLiquidityError(f"insufficient funds. account={client} amount={amount}")
            return sessions[-1].request(lambda rid: _ilp_message(bytes(data), rid)).addCallback(
                _ilp_of).addBoth(answered)

        reserved = self._reserve_outgoing(client, amount) if amount else True
        if isinstance(reserved, Deferred):
            return reserved.addCallback(send)
        if not reserved:
            return fail(InsufficientLiquidityError(f"insufficient funds. account={client} amount={amount}"))
        return send(True)

    def send_money(self, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Do nothing, as the reference (its ``sendMoney`` is empty): the account has many
        clients and no one counterparty to pay. :returns: ``Deferred[None]``."""
        self._log.warn("{account}: send_money({amount}) ignored: mini-accounts does not settle",
                       account=self.account_id, amount=amount)
        return succeed(None)

    # -- starting -------------------------------------------------------------------------

    def _fetch_ildcp(self) -> Deferred:
        """Ask the connector (through the data handler) for the account's address (RFC 31)."""

        def answered(info: IldcpResponse) -> None:
            self._log.info("{account}: IL-DCP: account address {address}, {code} scale {scale}",
                           account=self.account_id, address=info.client_address,
                           code=info.asset_code, scale=info.asset_scale)
            self.set_account_address(info.client_address, info.asset_code, info.asset_scale)

        return fetch_config(self.data_handler, self._reactor, ILDCP_TIMEOUT_MS).addCallback(answered)

    def _listen(self) -> Deferred:
        if not self._running:
            raise PeerUnreachableError("disconnected")
        listener = self.options.listener
        tls = server_tls_options(listener.cert, listener.key, listener.ca) if listener.cert else None
        factory = _MiniAccountsServerFactory(
            reactor=self._reactor,
            on_open=self._ws_open,
            on_failed=None,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.ping_timeout,
            max_message_size=self.options.max_message_size,
            max_unsent_bytes=self.options.max_unsent_bytes,
            log=self._log,
            account_id=self.account_id,
            origin_allowed=self.origin_allowed,
            origin_refused=self._origin_refused,
        )
        self._scheme = "wss" if tls is not None else "ws"
        return listen_endpoint(self._reactor, listener.port, listener.host, tls).listen(factory)

    def _listening(self, port) -> None:
        if not self._running:  # disconnect() came first
            port.stopListening()
            return
        self.listening_port = port
        self._log.info("{account}: mini-accounts listening on {address} ({scheme}) for clients "
                       "under {prefix}", account=self.account_id, address=port.getHost(),
                       scheme=self._scheme, prefix=self.account_address)
        self._notify_connection(True)
        self._fire(None)

    def _not_listening(self, failure: Failure) -> None:
        self._running = False
        # the caller of connect() gets the failure (the connector stops start-up with it)
        self._log.error("{account}: mini-accounts cannot start: {error}", account=self.account_id,
                        error=failure.getErrorMessage())
        self._fire(failure)

    def _fire(self, result) -> None:
        waiters, self._waiters = self._waiters, []
        resolve_all(waiters, result)

    # -- connections and logins -----------------------------------------------------------

    def origin_allowed(self, origin: str) -> bool:
        """:returns: whether a browser's ``Origin`` matches one of ``allowedOrigins``."""
        return any(pattern.search(origin) for pattern in self.options.allowed_origins)

    def _origin_refused(self, origin: str, peer: str) -> None:
        self._log.info("{account}: refused a WebSocket from {peer}: origin {origin!r} is not in "
                       "allowedOrigins", account=self.account_id, peer=peer, origin=origin)

    def _ws_open(self, protocol) -> BtpSession:
        session = BtpSession(
            role=Role.SERVER,
            send=protocol.send_frame,
            close=protocol.close_connection,
            clock=self._reactor,
            owner=self.connection_owner(self),
            log=self._log,
            account_id=self.account_id,
            response_timeout=self.options.response_timeout,
            authenticate=self._login,
            auth_timeout=self.options.auth_timeout or None,
            auth_backoff=self._auth_backoff,
            auth_backoff_by_name=True,
            peer=protocol.peer or "",
            source=peer_host(protocol),
        )
        if not self._running:
            session.close(1000)
        else:
            self._sessions.add(session)
        return session

    def _login(self, username: str, token: bytes) -> Deferred:
        """The sessions' authenticator (see the module docstring).

        :returns: ``Deferred[str]``, the client name; errbacks with
            :class:`~ilptx.transport.btp_session.AuthRefused`.
        """
        client = self._client_name(username, token)
        return self._auth_lock.run(self._check_token, client, hashed_token(token)).addCallback(lambda _: client)

    def _client_name(self, username: str, token: bytes) -> str:
        mode = self.options.generate_account
        derived = token_to_account(token)
        if mode is True and username and username != derived:
            raise AuthRefused("auth_username subprotocol is not available")
        if mode is False and not username:
            raise AuthRefused("auth_username subprotocol is required")
        client = username or derived
        if not is_valid_segment(client):
            raise AuthRefused(f"auth_username must be an ILP address segment ([A-Za-z0-9_~-]+): {client!r}")
        return client

    def _check_token(self, client: str, hashed: str) -> Deferred:
        key = token_key(self.account_id, client)

        def loaded(stored: Optional[str]):
            if stored is None:
                self._log.info("{account}: registered client {client!r}", account=self.account_id,
                               client=client)
                return self._store.put(key, hashed)
            if not hmac.compare_digest(stored.encode("ascii", "replace"), hashed.encode("ascii")):
                raise AuthRefused(f"incorrect token for account. account={client}")
            return None

        return maybeDeferred(self._store.get, key).addCallback(loaded)

    def _client_open(self, session: BtpSession) -> None:
        if not self._running:
            session.close(1000)
            return
        client = session.username
        self._clients.setdefault(client, []).append(session)
        self._log.info("{account}: client {client!r} connected from {peer} as {address}",
                       account=self.account_id, client=client, peer=session.peer,
                       address=self.client_address(client))

    def _client_closed(self, session: BtpSession) -> None:
        self._sessions.discard(session)
        client = session.username if session.authenticated else None
        sessions = self._clients.get(client) if client is not None else None
        if sessions and session in sessions:
            sessions.remove(session)
            if not sessions:
                del self._clients[client]
            self._log.info("{account}: a connection of client {client!r} closed",
                           account=self.account_id, client=client)

    # -- packets and money from clients ---------------------------------------------------

    # The per-client balance hooks: a settling subclass (:mod:`ilptx.settlement.server`) keeps
    # its clients' balances in the store instead; each may then return a Deferred.

    def _reserve_incoming(self, client: str, amount: int):
        """Reserve a Prepare of ``amount`` from ``client`` against ``clientBalance.maximum``.
        :returns: ``bool`` (or ``Deferred[bool]``): ``False`` refuses it (T04)."""
        reserved = apply_reserve_incoming(self._balances.get(client, _ZERO), amount, self.options.client_maximum)
        if reserved is None:
            return False
        self._balances[client] = reserved
        return True

    def _reserve_outgoing(self, client: str, amount: int):
        """Reserve a Prepare of ``amount`` to ``client`` against ``clientBalance.minimum``.
        :returns: ``bool`` (or ``Deferred[bool]``): ``False`` refuses it (T04)."""
        reserved = apply_reserve_outgoing(self._balances.get(client, _ZERO), amount, self.options.client_minimum)
        if reserved is None:
            return False
        self._balances[client] = reserved
        return True

    def _settle(self, client: str, amount: int, fulfilled: bool, incoming: bool):
        """End a reservation of ``client`` (commit on Fulfill), by :func:`apply_settle`.
        :returns: ``None`` (or a ``Deferred``)."""
        self._balances[client] = apply_settle(self._balances.get(client, _ZERO), amount, fulfilled, incoming)

    def _outgoing_answered(self, client: str, amount: int, fulfilled: bool, result):
        """``client`` answered our Prepare of ``amount`` with ``result`` (the ILP reply bytes,
        or a Failure): end the reservation. :returns: ``result`` (or a Deferred of it)."""
        self._settle(client, amount, fulfilled, False)
        return result

    def _reject(self, code: str, message: str) -> bytes:
        return encode_packet(Reject(code, self.account_address or "", message, b""))

    def _incoming_data(self, client: str, data: bytes):
        try:
            packet = decode_packet(data)
        except DecodeError as e:
            raise InvalidPacketError(f"invalid ILP packet: {e}") from None
        if type(packet) is Prepare and packet.destination == ILDCP_DESTINATION:
            return self._serve_ildcp(client, packet)
        handler = self.data_handler
        if handler is None:
            raise RuntimeError("no request handler registered")
        if type(packet) is not Prepare or not packet.amount:
            return maybeDeferred(handler, data)
        amount = packet.amount
        reserved = self._reserve_incoming(client, amount)
        if isinstance(reserved, Deferred):
            return reserved.addCallback(self._forward_incoming, client, handler, data, amount)
        return self._forward_incoming(reserved, client, handler, data, amount)

    def _forward_incoming(self, reserved: bool, client: str, handler, data: bytes, amount: int):
        if not reserved:
            # the reference's text: peers' alert middlewares look for it
            return self._reject(ErrorCode.T04_INSUFFICIENT_LIQUIDITY, "exceeded maximum balance.")

        def answered(result):
            settled = self._settle(client, amount, _fulfill_of(result) is not None, True)
            return settled.addCallback(lambda _: result) if isinstance(settled, Deferred) else result

        return maybeDeferred(handler, data).addBoth(answered)

    def _serve_ildcp(self, client: str, prepare: Prepare) -> bytes:
        """Answer a client's IL-DCP request as the reference's ``ILDCP.serve`` does."""
        now = datetime.fromtimestamp(self._reactor.seconds(), _UTC)
        if prepare.execution_condition != PEER_PROTOCOL_CONDITION:
            return self._reject(ErrorCode.F00_BAD_REQUEST,
                                "packet does not contain correct condition for a peer protocol request.")
        if now > prepare.expires_at:
            return self._reject(ErrorCode.F00_BAD_REQUEST, "IL-DCP request packet is expired.")
        address = self.client_address(client)
        self._log.debug("{account}: IL-DCP: client {client!r} is {address}", account=self.account_id,
                        client=client, address=address)
        return encode_packet(response_fulfill(IldcpResponse(address, self.asset_scale, self.asset_code)))

    def verify_transfer(self, client: str, transfer):
        """Check a BTP Transfer from ``client``; the override point of settling plugins.

        As :meth:`ilptx.plugins.btp.BtpPlugin.verify_transfer`, for the client that sent it:
        :returns: the verified amount (``int`` >= 0, or a Deferred of it), which lowers the
        client's balance and goes to the money handler.
        :raises NotAcceptedError: always, here (BTP proves no payment).
        """
        raise NotAcceptedError(NO_SETTLEMENT_MESSAGE)

    def _incoming_money(self, client: str, amount: int):
        handler = self.money_handler
        if handler is None:
            raise RuntimeError("no money handler registered")

        def paid(_):
            state = self._balances.get(client, _ZERO)  # the client owes us that much less
            state = self._balances[client] = replace(state, balance=state.balance - amount)
            minimum = self.options.client_minimum
            if minimum is not None and state.balance < minimum:  # verified money: kept, but loudly
                self._log.error("{account}: a verified settlement of {amount} took client {client!r} to "
                                "{balance}, below clientBalance.minimum {minimum}", account=self.account_id,
                                amount=amount, client=client, balance=state.balance, minimum=minimum)
            return None

        return maybeDeferred(handler, amount).addCallback(paid)


def mini_accounts_factory(options: dict, *, account_id: str, services: PluginServices) -> MiniAccountsPlugin:
    """The ``mini-accounts`` ledger plugin factory: a :class:`MiniAccountsPlugin` on
    ``services.reactor``/``.log`` that keeps its clients' tokens in ``services.store``.

    :raises ConfigError: invalid options.
    """
    return MiniAccountsPlugin(options, account_id=account_id, reactor=services.reactor, log=services.log,
                              store=services.store)


@hookimpl
def ilptx_ledger_plugins():
    """Register :func:`mini_accounts_factory` as ``mini-accounts`` and ``ilp-plugin-mini-accounts``."""
    return {"mini-accounts": mini_accounts_factory, "ilp-plugin-mini-accounts": mini_accounts_factory}
