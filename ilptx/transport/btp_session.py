"""One BTP connection's request/response engine (RFC 23), independent of WebSocket and sockets.

A :class:`BtpSession` is fed whole BTP frames (one WebSocket binary message each) through
:meth:`BtpSession.data_received` and writes frames through a ``send(bytes)`` callable; it asks
for the connection to be closed through a ``close(code, reason)`` callable and is told that it
is gone through :meth:`BtpSession.connection_lost`. Timers run on an injected
:class:`~twisted.internet.interfaces.IReactorTime`. The Autobahn protocols in
:mod:`ilptx.transport.btp_ws` are thin adapters around it; unit tests drive it directly.

Wire behaviour follows ``ilp-plugin-btp`` 1.5.0, the JavaScript reference:

* **Authentication** (server role). The first frame must be the auth Message. One that is
  not well formed is answered with a BTP Error ``F00 NotAcceptedError`` whose ``data`` is the
  reason as plain UTF-8 text (``"First message sent over BTP connection must be auth
  packet"``, ...), then the connection is closed. An unreadable first frame is not answered
  (there is no request to answer), the connection is just closed. The credentials
  (``auth_username``, ``auth_token``) of a well-formed one go to the *authenticator*: by
  default the token is compared with the session's ``secret`` in constant time
  (:func:`hmac.compare_digest`, refusal text ``"invalid auth_token"``); a listener with many
  users (mini-accounts) passes its own ``authenticate`` callable, which may answer later (a
  store lookup) and names the user. Accepted: an empty Response, the session is open.
  Refused (:class:`AuthRefused`): the same F00 Error with the refusal's text, then the close.
  Frames that arrive while the credentials are being checked are dropped (as the reference).
  With an :class:`~ilptx.transport.auth_backoff.AuthBackoff`, each refusal makes the next
  check from the same source wait longer (see that module).
* **Authentication** (client role): :meth:`BtpSession.start_auth` sends the auth Message
  (entries ``auth``, ``auth_username``, ``auth_token``, then any extra entries); a Response
  opens the session, an Error or no answer within the response timeout closes it.
* **Requests we answer.** A Message is handed to the owner's data handler when it has an
  ``ilp`` entry (the reply travels back as the Response's ``ilp`` entry); a Message without an
  ``ilp`` entry gets an empty Response. No data handler, or a handler that fails, gives a BTP
  Error: code from the reference's name table (:data:`BTP_ERROR_CODES`), ``F00
  NotAcceptedError`` for anything else, ``data`` = ``{"message": "..."}`` as compact JSON
  (exactly what the reference's ``jsErrorToBtpError`` produces).
* **A Transfer proves nothing by itself**: BTP carries no ledger. It is handed to
  ``owner.verify_transfer(transfer)``, the one point where a settling plugin checks the
  Transfer's protocol data (a claim, a payment proof) against its ledger; only the amount it
  returns (``int`` >= 0, possibly through a Deferred) goes to the money handler, and an empty
  Response follows once the handler is done. The plain plugins' ``verify_transfer`` raises
  :class:`NotAcceptedError`, so a Transfer gets ``F00 NotAcceptedError`` (logged as a warning,
  no money moves), as ``ilp-plugin-btp`` 1.5.0's ``_handleMoney`` throws ``"No sendMoney
  functionality is included in this module"``. No money handler: ``F00`` before verifying.
* **Unreadable frames** on an open session. The reference closes the WebSocket; we keep the
  session up instead and answer a request-type frame with ``F01 InvalidFieldsError`` (RFC 23's
  code for structurally invalid data) under the request id we can still read (0 if under 5
  bytes). An unreadable *response*-type frame (type 1 or 2) is not answered (RFC 23 forbids
  answering responses: feedback loops); the request it answers, if still pending, fails at once.
* **Requests we send** get a random 32-bit request id not already in flight. A Response fires
  the request's Deferred; an Error errbacks it with :class:`BtpRemoteError`; no answer within
  the response timeout errbacks it with :class:`BtpTimeoutError`; a closed connection errbacks
  it with :class:`~ilptx.errors.PeerUnreachableError`. Cancelling the Deferred forgets the
  request (a late answer is then ignored, as RFC 23 asks for unexpected responses).
  :meth:`BtpSession.request_ilp` is the ILP case in one Deferred: it fires with the
  Response's ``ilp`` entry.

This module does not know about accounts, balances, ILP packets' contents or reconnecting;
the owner (the ledger plugin) does.
"""

from __future__ import annotations

import enum
import hmac
import json
import random
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ilptx.codec.btp import (
    CONTENT_OCTET_STREAM,
    MAX_ERROR_DATA_LENGTH,
    Error,
    Message,
    ProtocolDataEntry,
    Response,
    Transfer,
    auth_message,
    decode_frame,
    encode_frame,
    find_entry,
    generalized_time,
    parse_auth,
    peek_request_id,
)
from ilptx.codec.oer import DecodeError
from ilptx.core.timer_wheel import wheel_for
from ilptx.errors import IlpError, PeerUnreachableError, UnreachableError

__all__ = [
    "BTP_ERROR_CODES",
    "BtpSession",
    "Role",
    "State",
    "BtpRemoteError",
    "BtpTimeoutError",
    "BtpAuthError",
    "NotAcceptedError",
    "AuthRefused",
    "btp_error_for_exception",
]

#: BTP error name → code, the table ``ilp-plugin-btp`` 1.5.0 uses (RFC 23, "Error Codes").
#: An exception whose class name is one of these keys is sent with that code; anything else
#: is sent as ``F00 NotAcceptedError``.
BTP_ERROR_CODES = {
    "UnreachableError": "T00",
    "NotAcceptedError": "F00",
    "InvalidFieldsError": "F01",
    "TransferNotFoundError": "F03",
    "InvalidFulfillmentError": "F04",
    "DuplicateIdError": "F05",
    "AlreadyRolledBackError": "F06",
    "AlreadyFulfilledError": "F07",
    "InsufficientBalanceError": "F08",
}

_UINT32_MAX = 0xFFFFFFFF
_MAX_MESSAGE_CHARS = 2000  # keeps the JSON error data far below 8192 bytes


class Role(enum.Enum):
    """Which side of the WebSocket this session is: who authenticates whom."""

    SERVER = "server"  #: waits for the peer's auth Message
    CLIENT = "client"  #: sends the auth Message (:meth:`BtpSession.start_auth`)


class State(enum.Enum):
    """Life cycle of a session."""

    AWAITING_AUTH = "awaiting-auth"  #: server: nothing received yet
    CHECKING_AUTH = "checking-auth"  #: server: auth Message received, credentials being checked
    AUTHENTICATING = "authenticating"  #: client: auth Message sent, no answer yet
    OPEN = "open"  #: authenticated, requests flow both ways
    CLOSING = "closing"  #: we asked the transport to close
    CLOSED = "closed"  #: the transport is gone


class BtpRemoteError(UnreachableError):
    """The peer answered our request with a BTP Error.

    ILP code ``F02`` (Unreachable): the reference connector gives every failed
    ``plugin.sendData`` that carries no ILP code ``F02``. The message is what the reference
    plugin puts in its ``Error``: the JSON of the decoded BTP Error, e.g.
    ``{"code":"F00","name":"NotAcceptedError","triggeredAt":"2018-...Z","data":"...","protocolData":[]}``.

    :ivar btp_error: the :class:`ilptx.codec.btp.Error` frame received.
    """

    def __init__(self, btp_error: Error) -> None:
        super().__init__(_reference_error_json(btp_error))
        self.btp_error = btp_error


class BtpTimeoutError(UnreachableError):
    """No Response or Error arrived within the response timeout (``F02``, message
    ``"<requestId> timed out"`` as in the reference)."""


class BtpAuthError(Exception):
    """The server refused our authentication; ``error`` is its BTP Error frame."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"BTP authentication refused: {error.code} {error.name}: "
                         f"{error.data.decode('utf-8', 'replace')}")
        self.error = error


class NotAcceptedError(Exception):
    """Raise it from a request handler (``verify_transfer``, a data handler) to refuse the
    request: the peer gets BTP Error ``F00 NotAcceptedError`` with ``{"message": str(exc)}``,
    and it is logged as a warning, not as a failure (the name is looked up in
    :data:`BTP_ERROR_CODES`)."""


class AuthRefused(Exception):
    """A login is refused: raised (or errbacked) by an authenticator, and for auth Messages
    that are not well formed. ``str()`` is the text sent back as the ``data`` of the BTP
    Error ``F00 NotAcceptedError`` (the reference's wording where it has one)."""


#: What a source whose queue of login attempts is full gets (see :mod:`ilptx.transport.auth_backoff`).
TOO_MANY_FAILURES = "too many failed logins from {source}; try again later"


def _js_date_iso(triggered_at: str) -> Optional[str]:
    """What ``JSON.stringify(new Date(...))`` gives for a BTP GeneralizedTime (``None`` when
    the reference's parser would make an Invalid Date)."""
    try:
        when = datetime.strptime(triggered_at, "%Y%m%d%H%M%S.%fZ")
    except ValueError:
        return None
    if len(triggered_at) != 19:  # the reference's regex wants exactly 3 fraction digits
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


def _reference_error_json(error: Error) -> str:
    """The message of the reference plugin's rejection: ``JSON.stringify`` of the decoded
    BTP Error (Buffers render as ``{"type":"Buffer","data":[...]}``)."""
    body = {
        "code": error.code,
        "name": error.name,
        "triggeredAt": _js_date_iso(error.triggered_at),
        "data": error.data.decode("utf-8", "replace"),
        "protocolData": [
            {"protocolName": e.protocol_name, "contentType": e.content_type,
             "data": {"type": "Buffer", "data": list(e.data)}}
            for e in error.protocol_data
        ],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def btp_error_for_exception(exc: BaseException) -> tuple[str, str, bytes]:
    """Map a handler's exception to a BTP Error's ``(code, name, data)``.

    As ``jsErrorToBtpError`` in ilp-plugin-btp 1.5.0: the name is looked up in
    :data:`BTP_ERROR_CODES`; unknown names become ``F00 NotAcceptedError`` (the reference
    would put the JS class name, usually ``"Error"``, next to ``F00``; we keep the code/name
    pair of RFC 23). ``data`` is ``{"message": ...}`` as compact UTF-8 JSON.
    """
    name = type(exc).__name__
    code = BTP_ERROR_CODES.get(name)
    if code is None:
        code, name = "F00", "NotAcceptedError"
    message = exc.message if isinstance(exc, IlpError) else str(exc)
    return code, name, _json_message(message)


def _json_message(message: str) -> bytes:
    return json.dumps({"message": message[:_MAX_MESSAGE_CHARS]}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


class _IlpRequest(Deferred):
    """The Deferred of a :meth:`BtpSession.request_ilp`: fired with the Response's ``ilp`` entry."""


class BtpSession:
    """The BTP state machine of one connection.

    :param role: :attr:`Role.SERVER` (expects an auth Message first) or :attr:`Role.CLIENT`.
    :param send: ``callable(bytes)`` writing one frame (one WebSocket binary message).
    :param close: ``callable(code: int, reason: str | None)`` asking the transport to close;
        :meth:`connection_lost` must follow eventually.
    :param clock: :class:`~twisted.internet.interfaces.IReactorTime` for timeouts.
    :param owner: the ledger plugin. Reads ``owner.data_handler`` and ``owner.money_handler``
        (callables or ``None``) per request, asks ``owner.verify_transfer(transfer)`` for the
        verified amount of each Transfer, and is told ``owner.session_open(session)``,
        ``owner.session_auth_failed(session, BtpAuthError)`` and
        ``owner.session_closed(session, reason: Failure | None)``. An owner with a
        ``handle_message(message) -> None | Deferred[tuple[ProtocolDataEntry, ...]]`` method
        (a settling plugin's sub-protocols, :mod:`ilptx.settlement.plugin`) sees each Message
        first: ``None`` leaves it to the data handler, a Deferred's entries are the Response.
    :param log: the plugin's :class:`~twisted.logger.Logger`.
    :param account_id: put in every log event as ``account``.
    :param response_timeout: seconds to wait for the answer to each request we send (on the
        clock's timer wheel, :mod:`ilptx.core.timer_wheel`: at most 1/64 s late, never early).
    :param secret: server role: the expected ``auth_token`` (``bytes``), checked by the
        default authenticator.
    :param authenticate: server role, instead of ``secret``: ``callable(username: str,
        token: bytes) -> str | Deferred[str]`` returning the name the session is known by
        (:attr:`username`), raising (or errbacking with) :class:`AuthRefused` to refuse.
        Any other exception refuses the login with ``"authentication failed"``, is logged, and
        does not count as a failed login.
    :param auth_timeout: server role: seconds the peer has to authenticate (``None``: forever).
    :param auth_backoff: server role: the listener's
        :class:`~ilptx.transport.auth_backoff.AuthBackoff`, or ``None`` (no backoff).
    :param auth_backoff_by_name: key the backoff by source *and* username (a listener with
        one account per user) instead of by source alone.
    :param peer: a description of the remote end for log events.
    :param source: the remote IP address (the backoff's key).

    :ivar username: server role: the name the authenticator returned (the ``auth_username``
        with the default one), once open; client role: the username we sent.
    :ivar authenticated: whether the session has opened.
    """

    def __init__(
        self,
        *,
        role: Role,
        send: Callable[[bytes], Any],
        close: Callable[[int, Optional[str]], Any],
        clock,
        owner,
        log: Optional[Logger] = None,
        account_id: str = "",
        response_timeout: float = 35.0,
        secret: Optional[bytes] = None,
        authenticate: Optional[Callable[[str, bytes], Any]] = None,
        auth_timeout: Optional[float] = None,
        auth_backoff=None,
        auth_backoff_by_name: bool = False,
        peer: str = "",
        source: str = "",
    ) -> None:
        if role is Role.SERVER and secret is None and authenticate is None:
            raise ValueError("a server-role BTP session needs the secret or an authenticator")
        self.role = role
        self.peer = peer
        self.source = source
        self._authenticate = authenticate if authenticate is not None else self._check_secret
        self._auth_backoff = auth_backoff
        self._auth_backoff_by_name = auth_backoff_by_name
        self.username: Optional[str] = None
        self._send = send
        self._close = close
        self._clock = clock
        self._wheel = wheel_for(clock)  # response timeouts (one wheel tick = 1/64 s)
        self._owner = owner
        self._sub_protocols = getattr(owner, "handle_message", None)
        self._log = log if log is not None else Logger()
        self._account_id = account_id
        self._response_timeout = response_timeout
        self._secret = secret
        self._pending: dict[int, tuple[Deferred, Any]] = {}
        self._closed_waiters: list[Deferred] = []
        self._auth_timer = None
        self.authenticated = False
        self.state = State.AWAITING_AUTH if role is Role.SERVER else State.AUTHENTICATING
        if role is Role.SERVER and auth_timeout is not None:
            self._auth_timer = clock.callLater(auth_timeout, self._auth_timed_out)

    def __repr__(self) -> str:
        return f"<BtpSession {self.role.value} {self.state.value} peer={self.peer!r}>"

    # -- the transport calls these --------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Process one BTP frame received from the peer."""
        state = self.state
        if state is State.OPEN or state is State.AUTHENTICATING:
            try:
                frame = decode_frame(data)
            except DecodeError as e:
                self._on_unreadable(data, e)
                return
            kind = type(frame)
            if kind is Response or kind is Error:
                self._on_answer(frame)
            elif kind is Message:
                self._on_message(frame)
            else:
                self._on_transfer(frame)
        elif state is State.AWAITING_AUTH:
            self._on_auth(data)
        # CLOSING / CLOSED: the connection is going away; drop whatever still arrives.

    def connection_lost(self, reason: Optional[Failure] = None) -> None:
        """The transport is gone: fail every pending request with T01 and tell the owner."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._cancel_auth_timer()
        self._fail_pending("BTP connection closed")
        self._owner.session_closed(self, reason)
        waiters, self._closed_waiters = self._closed_waiters, []
        for d in waiters:
            d.callback(None)

    # -- the owner calls these ------------------------------------------------------------

    def start_auth(self, username: str, token: str, extra_entries: tuple = ()) -> None:
        """Client role: send the auth Message; :meth:`owner.session_open` follows its Response.

        :param extra_entries: further :class:`~ilptx.codec.btp.ProtocolDataEntry` values
            (the reference's ``btpAuthFlags``) appended after ``auth_token``.
        """
        if self.role is not Role.CLIENT or self.state is not State.AUTHENTICATING:
            raise RuntimeError(f"cannot start authentication on {self!r}")
        self.username = username
        d = self._request(lambda rid: Message(
            rid, auth_message(rid, token, username).protocol_data + tuple(extra_entries)))
        d.addCallbacks(self._auth_accepted, self._auth_not_accepted)

    def request(self, build: Callable[[int], Any]) -> Deferred:
        """Send a request frame and wait for its answer.

        :param build: ``callable(request_id) -> Message | Transfer``.
        :returns: ``Deferred[Response]``; errbacks with :class:`BtpRemoteError`,
            :class:`BtpTimeoutError` or :class:`~ilptx.errors.PeerUnreachableError` (the
            session is not open or closes first). Cancelling it forgets the request.
        """
        return self._open_request(build, Deferred)

    def request_ilp(self, data: bytes) -> Deferred:
        """Send ``data`` (an OER ILP packet) as the single ``ilp`` entry of a BTP Message.

        As :meth:`request`, but the Deferred fires with the ``ilp`` entry of the Response
        (``bytes``; ``b""`` if it has none, as the reference's empty Buffer) instead of the
        Response frame: one Deferred per request, no unwrapping callback.
        """
        return self._open_request(lambda rid: Message(rid, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, data),)),
                                  _IlpRequest)

    def close(self, code: int = 1000, reason: Optional[str] = None) -> None:
        """Fail pending requests (T01) and ask the transport to close (idempotent)."""
        if self.state is State.CLOSING or self.state is State.CLOSED:
            return
        self.state = State.CLOSING
        self._cancel_auth_timer()
        self._fail_pending("BTP connection closed")
        self._close(code, reason)

    def when_closed(self) -> Deferred:
        """:returns: ``Deferred[None]`` firing once :meth:`connection_lost` has run."""
        d = Deferred()
        if self.state is State.CLOSED:
            d.callback(None)
        else:
            self._closed_waiters.append(d)
        return d

    @property
    def pending_count(self) -> int:
        """Number of our requests still waiting for an answer."""
        return len(self._pending)

    # -- sending requests -----------------------------------------------------------------

    def _open_request(self, build: Callable[[int], Any], kind: type) -> Deferred:
        if self.state is not State.OPEN:
            d = kind()
            d.errback(PeerUnreachableError("BTP connection is not open"))
            return d
        return self._request(build, kind)

    def _request(self, build: Callable[[int], Any], kind: type = Deferred) -> Deferred:
        pending = self._pending
        rid = random.getrandbits(32)
        while rid in pending:  # never two requests in flight with one id (RFC 23, "Flow")
            rid = random.getrandbits(32)
        frame = encode_frame(build(rid))

        def forget(_d: Deferred) -> None:
            entry = pending.pop(rid, None)
            if entry is not None:
                entry[1].cancel()

        d = kind(forget)
        pending[rid] = (d, self._wheel.call_later(self._response_timeout, self._timed_out, rid))
        self._send(frame)
        return d

    def _timed_out(self, rid: int) -> None:
        entry = self._pending.pop(rid, None)
        if entry is not None:
            entry[0].errback(BtpTimeoutError(f"{rid} timed out"))

    def _on_answer(self, frame) -> None:
        entry = self._pending.pop(frame.request_id, None)
        if entry is None:  # RFC 23: an unexpected response gets no answer
            self._log.debug("{account}: ignoring BTP answer to unknown request {request_id}",
                            account=self._account_id, request_id=frame.request_id)
            return
        d, timer = entry
        timer.cancel()
        if type(frame) is Response:
            if type(d) is _IlpRequest:
                ilp = find_entry(frame.protocol_data, "ilp")
                d.callback(ilp.data if ilp is not None else b"")
            else:
                d.callback(frame)
        else:
            d.errback(BtpRemoteError(frame))

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            timer.cancel()
            d.errback(PeerUnreachableError(why))

    # -- answering requests ---------------------------------------------------------------

    def _on_message(self, frame: Message) -> None:
        rid = frame.request_id
        answer = self._sub_protocols(frame) if self._sub_protocols is not None else None
        if answer is not None:
            answer.addCallbacks(lambda entries: self._answer(Response(rid, tuple(entries))), self._answer_failure,
                                errbackArgs=(rid, "sub-protocol"))
            return
        handler = self._owner.data_handler
        if handler is None:
            self._send_error(rid, "F00", "NotAcceptedError", _json_message("no request handler registered"))
            return
        ilp = find_entry(frame.protocol_data, "ilp")
        if ilp is None:  # another sub-protocol: acknowledged, nothing to hand over
            self._answer(Response(rid))
            return
        try:
            result = handler(ilp.data)
        except Exception:
            self._answer_failure(Failure(), rid, "data")
            return
        if isinstance(result, Deferred):
            result.addCallbacks(self._answer_ilp, self._answer_failure,
                                callbackArgs=(rid,), errbackArgs=(rid, "data"))
        else:
            self._answer_ilp(result, rid)

    def _answer_ilp(self, reply, rid: int) -> None:
        if reply is None:
            self._answer(Response(rid))
        elif isinstance(reply, (bytes, bytearray)):
            self._answer(Response(rid, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, bytes(reply)),)))
        else:
            self._answer_failure(Failure(TypeError(
                f"data handler returned {type(reply).__name__}, not bytes")), rid, "data")

    def _on_transfer(self, frame: Transfer) -> None:
        rid = frame.request_id
        if self._owner.money_handler is None:
            self._send_error(rid, "F00", "NotAcceptedError", _json_message("no money handler registered"))
            return
        d = maybeDeferred(self._owner.verify_transfer, frame)
        d.addCallback(self._verified, frame)
        d.addCallbacks(lambda _: self._answer(Response(rid)), self._answer_failure, errbackArgs=(rid, "money"))

    def _verified(self, amount, frame: Transfer):
        """Pass what ``verify_transfer`` vouched for, and only that, to the money handler."""
        if type(amount) is not int or amount < 0:
            raise TypeError(f"verify_transfer returned {amount!r}, not a verified amount (int >= 0)")
        self._log.info("{account}: BTP Transfer of {amount} verified as {verified}",
                       account=self._account_id, amount=frame.amount, verified=amount)
        handler = self._owner.money_handler
        if amount == 0:
            return None
        if handler is None:
            raise NotAcceptedError("no money handler registered")
        return handler(amount)

    def _answer_failure(self, failure: Failure, rid: int, which: str) -> None:
        if failure.check(NotAcceptedError):
            self._log.warn("{account}: BTP request {request_id} from {peer} not accepted: {why}",
                           account=self._account_id, request_id=rid, peer=self.peer, why=str(failure.value))
        else:
            self._log.failure("{account}: {which} handler failed on BTP request {request_id}",
                              failure, LogLevel.error, account=self._account_id, which=which, request_id=rid)
        code, name, data = btp_error_for_exception(failure.value)
        self._send_error(rid, code, name, data)

    def _answer(self, frame) -> None:
        if self.state is State.OPEN or self.state is State.AUTHENTICATING:
            self._send(encode_frame(frame))

    def _send_error(self, rid: int, code: str, name: str, data: bytes) -> None:
        self._answer(self._error_frame(rid, code, name, data))

    def _error_frame(self, rid: int, code: str, name: str, data: bytes) -> Error:
        now = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        return Error(rid, code, name, generalized_time(now), data[:MAX_ERROR_DATA_LENGTH])

    def _on_unreadable(self, data: bytes, error: DecodeError) -> None:
        rid = peek_request_id(data)
        self._log.warn("{account}: unreadable BTP frame from {peer} (request id {request_id}): {error}",
                       account=self._account_id, peer=self.peer, request_id=rid, error=str(error))
        if data[:1] in (b"\x01", b"\x02"):  # an answer: never answer it; fail what it answers
            entry = self._pending.pop(rid, None) if rid is not None else None
            if entry is not None:
                entry[1].cancel()
                entry[0].errback(UnreachableError(f"unreadable BTP answer: {error}"))
            return
        self._send_error(rid or 0, "F01", "InvalidFieldsError", _json_message(str(error)))

    # -- authentication -------------------------------------------------------------------

    def _on_auth(self, data: bytes) -> None:
        self._cancel_auth_timer()
        self.state = State.CHECKING_AUTH
        try:
            frame = decode_frame(data)
        except DecodeError as e:
            self._log.warn("{account}: unreadable BTP auth frame from {peer}: {error}",
                           account=self._account_id, peer=self.peer, error=str(e))
            self.close()
            return
        try:
            username, token = self._parse_auth(frame)
        except AuthRefused as e:
            self._refuse(frame.request_id, str(e))
            return
        backoff, key = self._auth_backoff, None
        if backoff is not None:
            key = backoff.key(self.source, username if self._auth_backoff_by_name else None)
            delay = backoff.wait(key)
            if delay is None:
                self._refuse(frame.request_id, TOO_MANY_FAILURES.format(source=self.source))
                return
            if delay:
                self._auth_timer = self._clock.callLater(
                    delay, self._check_credentials, frame.request_id, username, token, key)
                return
        self._check_credentials(frame.request_id, username, token, key)

    def _check_credentials(self, rid: int, username: str, token: bytes, key) -> None:
        self._auth_timer = None
        if self.state is State.CHECKING_AUTH:
            maybeDeferred(self._authenticate, username, token).addCallbacks(
                self._credentials_accepted, self._credentials_refused,
                callbackArgs=(rid, key), errbackArgs=(rid, key))

    def _credentials_accepted(self, name: str, rid: int, key) -> None:
        if self._auth_backoff is not None:
            self._auth_backoff.succeeded(key)
        if self.state is not State.CHECKING_AUTH:  # closed while we checked
            return
        self.username = name
        self.state = State.OPEN
        self.authenticated = True
        self._send(encode_frame(Response(rid)))
        self._owner.session_open(self)

    def _credentials_refused(self, failure: Failure, rid: int, key) -> None:
        if failure.check(AuthRefused):
            if self._auth_backoff is not None:
                self._auth_backoff.failed(key)
            why = str(failure.value)
        else:
            self._log.failure("{account}: checking the BTP login from {peer} failed", failure,
                              LogLevel.error, account=self._account_id, peer=self.peer)
            why = "authentication failed"
        if self.state is State.CHECKING_AUTH:
            self._refuse(rid, why)

    def _refuse(self, rid: int, why: str) -> None:
        self._log.warn("{account}: BTP authentication from {peer} refused: {why}",
                       account=self._account_id, peer=self.peer, why=why)
        self._send(encode_frame(self._error_frame(rid, "F00", "NotAcceptedError", why.encode("utf-8"))))
        self.close()

    @staticmethod
    def _parse_auth(frame) -> tuple[str, bytes]:
        """:returns: ``(username, token)``. :raises AuthRefused: with the reference's wording."""
        if type(frame) is not Message:
            raise AuthRefused("First message sent over BTP connection must be auth packet")
        pd = frame.protocol_data
        if len(pd) < 2:
            raise AuthRefused("Auth packet must have auth and auth_token subprotocols")
        if pd[0].protocol_name != "auth":
            raise AuthRefused("First subprotocol must be auth")
        if find_entry(pd, "auth_token") is None:
            raise AuthRefused("auth_token subprotocol is required")
        try:
            return parse_auth(frame)
        except DecodeError as e:
            raise AuthRefused(str(e)) from None

    def _check_secret(self, username: str, token: bytes) -> str:
        """The default authenticator: the token must be ``secret``."""
        # constant time in the token's content; compare_digest also accepts unequal lengths
        if not hmac.compare_digest(token, self._secret):
            raise AuthRefused("invalid auth_token")
        return username

    def _auth_timed_out(self) -> None:
        self._auth_timer = None
        if self.state is State.AWAITING_AUTH:
            self._log.warn("{account}: {peer} did not authenticate in time; closing",
                           account=self._account_id, peer=self.peer)
            self.close()

    def _cancel_auth_timer(self) -> None:
        if self._auth_timer is not None:
            timer, self._auth_timer = self._auth_timer, None
            if timer.active():
                timer.cancel()

    def _auth_accepted(self, _response: Response) -> None:
        if self.state is State.AUTHENTICATING:
            self.state = State.OPEN
            self.authenticated = True
            self._owner.session_open(self)

    def _auth_not_accepted(self, failure: Failure) -> None:
        if failure.check(BtpRemoteError):
            error = BtpAuthError(failure.value.btp_error)
            self._log.error("{account}: {error}", account=self._account_id, error=str(error))
            self._owner.session_auth_failed(self, error)
            self.close()
        elif failure.check(BtpTimeoutError):
            # RFC 23: neither Response nor Error to our auth: the client closes the connection
            self._log.warn("{account}: no answer to BTP authentication from {peer}; closing",
                           account=self._account_id, peer=self.peer)
            self.close()
        # PeerUnreachableError: the connection went away first; session_closed tells the owner
