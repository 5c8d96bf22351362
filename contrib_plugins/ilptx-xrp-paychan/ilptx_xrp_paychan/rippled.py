"""The rippled client: a narrow :class:`IXrpLedger` and :class:`RippledClient`, its
implementation over rippled's WebSocket API (https://xrpl.org/docs/references/http-websocket-apis)
with Autobahn on the injected Twisted reactor.

- One WebSocket connection, kept up by :class:`twisted.application.internet.ClientService`
  (exponential backoff between attempts, ``retry_initial`` … ``retry_max`` seconds). Requests
  carry an ``id``; each answer fires its :class:`~twisted.internet.defer.Deferred`. A request made
  while the ledger is down waits for the connection, and one whose connection drops is sent again
  on the next, until ``request_timeout`` seconds have passed (then
  :class:`LedgerUnavailableError`). Every command used here is safe to repeat: reads, and
  ``submit`` of one signed blob (one hash; rippled applies it at most once).
- After each (re)connection the client subscribes to the ``ledger`` stream and to every account
  given to :meth:`RippledClient.subscribe_account`.
- :meth:`RippledClient.submit` waits for the *validated* result: it looks the hash up with ``tx``
  after every ``ledgerClosed`` (and every ``poll_interval`` seconds, and after a reconnection), and
  gives up with :class:`TransactionExpiredError` once a validated ledger past the transaction's
  ``LastLedgerSequence`` does not hold it (https://xrpl.org/docs/concepts/transactions/reliable-transaction-submission).
- Transactions are built with xrpl-py models and signed offline with :func:`xrpl.transaction.sign`;
  :meth:`RippledClient.submit_transaction` sets ``Fee`` (the ``fee`` command's open-ledger cost),
  ``Sequence`` (``account_info`` on the current ledger) and ``LastLedgerSequence`` (current ledger
  + ``ledger_offset``) itself, one transaction per account at a time, so parallel submissions
  from one account never take the same sequence.

Amounts are ``int`` drops where this module converts them (rippled's JSON keeps them as strings);
times are seconds (Ripple epoch for ledger times, as rippled reports them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from hyperlink import URL
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from xrpl.core.binarycodec import decode
from xrpl.models.transactions import Transaction
from xrpl.transaction import sign
from xrpl.wallet import Wallet
from zope.interface import Interface, implementer

__all__ = [
    "IXrpLedger", "RippledClient", "TxResult", "LedgerError", "LedgerUnavailableError", "RippledError",
    "TransactionRejectedError", "TransactionFailedError", "TransactionExpiredError",
    "sign_transaction", "transaction_hash",
]

_log = Logger(namespace="ilptx_xrp_paychan.rippled")


class LedgerError(Exception):
    """Base of the rippled client's errors."""


class LedgerUnavailableError(LedgerError):
    """No answer from rippled within ``request_timeout`` seconds (down, unreachable, or slow)."""


class RippledError(LedgerError):
    """rippled answered ``status: error``: ``error`` is its token (``actNotFound``, ``txnNotFound``,
    ``invalidTransaction``…), ``response`` the whole answer."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.error = str(response.get("error"))
        self.response = response
        detail = response.get("error_exception") or response.get("error_message") or ""
        super().__init__(f"rippled error {self.error}: {detail}".rstrip(": "))


class TransactionRejectedError(LedgerError):
    """``submit``'s preliminary result says the transaction cannot be applied (``tem``, ``tef``,
    ``tel``…; https://xrpl.org/docs/references/protocol/transactions/transaction-results): no fee
    was charged and it will never be in a ledger. ``code`` is the result code."""

    def __init__(self, code: str, message: str, tx_hash: str) -> None:
        super().__init__(f"transaction {tx_hash} rejected: {code} ({message})")
        self.code, self.hash = code, tx_hash


class TransactionFailedError(LedgerError):
    """The transaction is in a validated ledger with a ``tec`` result: it failed, its fee was
    charged (https://xrpl.org/docs/references/protocol/transactions/transaction-results/tec-codes)."""

    def __init__(self, result: "TxResult") -> None:
        super().__init__(f"transaction {result.hash} failed in validated ledger {result.ledger_index}: {result.code}")
        self.code, self.hash, self.result = result.code, result.hash, result


class TransactionExpiredError(LedgerError):
    """A validated ledger past the transaction's ``LastLedgerSequence`` does not hold it: it can
    never be validated. ``last_result`` is the preliminary result ``submit`` gave."""

    def __init__(self, tx_hash: str, last_ledger_sequence: int, last_result: str) -> None:
        super().__init__(f"transaction {tx_hash} was not validated by LastLedgerSequence {last_ledger_sequence} "
                         f"(preliminary result {last_result})")
        self.hash, self.last_ledger_sequence, self.last_result = tx_hash, last_ledger_sequence, last_result


@dataclass(frozen=True)
class TxResult:
    """A validated transaction: ``hash`` (uppercase hex), ``ledger_index``, ``code``
    (``meta.TransactionResult``), ``tx`` (its JSON) and ``meta``."""

    hash: str
    ledger_index: int
    code: str
    tx: dict[str, Any]
    meta: dict[str, Any]


def transaction_hash(blob_hex: str) -> str:
    """SHA-512Half("TXN\\0" ‖ signed blob), uppercase hex: the id ``tx`` looks up
    (https://xrpl.org/docs/concepts/transactions#identifying-transactions)."""
    return hashlib.sha512(b"TXN\x00" + bytes.fromhex(blob_hex)).digest()[:32].hex().upper()


def sign_transaction(tx: Transaction, wallet: Wallet, *, fee: int, sequence: int,
                     last_ledger_sequence: int) -> tuple[str, str]:
    """Sign ``tx`` offline (xrpl-py) with ``Fee`` (drops), ``Sequence`` and ``LastLedgerSequence``
    set here; returns ``(blob_hex, hash)``."""
    prepared = dataclasses.replace(tx, fee=str(fee), sequence=sequence, last_ledger_sequence=last_ledger_sequence)
    signed = sign(prepared, wallet)
    blob = signed.blob()
    return blob, transaction_hash(blob)


class IXrpLedger(Interface):
    """What the XRP plugins need of the ledger. Every method returns a Deferred; errors are the
    :class:`LedgerError` subclasses of this module."""

    def start() -> None:
        """Connect (and keep reconnecting); returns at once."""

    def stop() -> defer.Deferred:
        """Disconnect for good; fails every waiting request with :class:`LedgerUnavailableError`."""

    def server_info() -> defer.Deferred:
        """rippled's ``server_info`` ``info`` object."""

    def fee() -> defer.Deferred:
        """The ``fee`` result (``drops.open_ledger_fee``, ``ledger_current_index``…)."""

    def account_info(address: str, ledger_index: str = "validated") -> defer.Deferred:
        """``account_data`` (AccountRoot JSON) of ``address``, or ``None`` if it does not exist."""

    def account_channels(address: str, destination: Optional[str] = None) -> defer.Deferred:
        """The validated ledger's channels from ``address`` (``account_channels`` entries)."""

    def channel(channel_id: str) -> defer.Deferred:
        """The validated PayChannel node (``ledger_entry``), or ``None`` (``entryNotFound``)."""

    def tx(tx_hash: str) -> defer.Deferred:
        """The ``tx`` result, or ``None`` (``txnNotFound``)."""

    def submit(blob: str) -> defer.Deferred:
        """Submit a signed blob; fires with its validated :class:`TxResult` (``tesSUCCESS``)."""

    def submit_transaction(wallet: Wallet, tx: Transaction) -> defer.Deferred:
        """Set fee, sequence and LastLedgerSequence, sign with ``wallet``, :meth:`submit`."""

    def subscribe_account(address: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with every validated ``transaction`` stream message affecting ``address``."""

    def on_ledger_closed(callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with every ``ledgerClosed`` stream message."""


class _Protocol(WebSocketClientProtocol):
    ws_open = False

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        #: Fires when the WebSocket handshake is done (made here: ClientService hands out a proxy,
        #: which forwards reads but not writes of attributes).
        self.ws_opened: defer.Deferred = defer.Deferred()
        super().connectionMade()

    def real(self) -> "_Protocol":
        """This protocol itself, also when called through the proxy ClientService gives to
        ``prepareConnection`` (``whenConnected`` gives the protocol itself)."""
        return self

    def onOpen(self) -> None:  # noqa: N802 - Autobahn's name
        self.ws_open = True
        if not self.ws_opened.called:
            self.ws_opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        try:
            message = json.loads(payload)
        except ValueError:
            _log.warn("rippled sent a frame that is not JSON; ignored")
            return
        if isinstance(message, dict):
            self.factory.client._on_message(message)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:  # noqa: N802, N803
        was_open, self.ws_open = self.ws_open, False
        if not self.ws_opened.called:
            self.ws_opened.errback(ConnectionDone(f"WebSocket handshake failed: {reason}"))
        self.factory.client._on_close(self, was_open)


@implementer(IXrpLedger)
class RippledClient:
    """rippled over WebSocket (``ws://`` or ``wss://`` ``url``) on ``reactor``.

    ``request_timeout``: seconds a request may take, waiting for a connection included;
    ``retry_initial``/``retry_max``: backoff between connection attempts (seconds, ×1.5 each);
    ``poll_interval``: seconds between ``tx`` look-ups of submitted transactions besides those
    after each ledger close; ``ledger_offset``: ledgers a transaction of
    :meth:`submit_transaction` may take to validate (its LastLedgerSequence); ``tls``: for
    ``wss://``, an ``IOpenSSLClientConnectionCreator`` (default: the host name checked against the
    system's trust roots, :func:`twisted.internet.ssl.optionsForClientTLS`).
    """

    def __init__(self, url: str, reactor: Any, *, request_timeout: float = 10.0, retry_initial: float = 0.5,
                 retry_max: float = 30.0, poll_interval: float = 4.0, ledger_offset: int = 20,
                 tls: Any = None) -> None:
        self.url = url
        self._reactor = reactor
        self._timeout = request_timeout
        self._ledger_offset = ledger_offset
        parsed = URL.from_text(url)
        secure = parsed.scheme == "wss"
        port = parsed.port or (443 if secure else 80)
        endpoint: Any = TCP4ClientEndpoint(reactor, parsed.host, port, timeout=max(1, int(request_timeout)))
        if secure:
            endpoint = wrapClientTLS(tls or optionsForClientTLS(parsed.host), endpoint)
        factory = WebSocketClientFactory(url, reactor=reactor)
        factory.protocol = _Protocol
        factory.client = self
        factory.setProtocolOptions(autoPingInterval=10, autoPingTimeout=10)
        self._service = ClientService(endpoint, factory, clock=reactor, prepareConnection=self._prepare,
                                      retryPolicy=backoffPolicy(retry_initial, retry_max, jitter=lambda: 0.0))
        self._ids = itertools.count(1)
        self._inflight: dict[int, tuple[defer.Deferred, _Protocol]] = {}
        self._accounts: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._ledger_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._pending: dict[str, tuple[defer.Deferred, int, str]] = {}
        self._locks: dict[str, defer.DeferredLock] = {}
        #: Index of the newest validated ledger seen (``subscribe`` result, ``ledgerClosed``).
        self.validated_index = 0
        self._poller = LoopingCall(self._check_all)
        self._poller.clock = reactor
        self._poll_interval = poll_interval
        self._stopped = False

    # -- connection ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect; reconnect with backoff whenever the connection is lost, until :meth:`stop`."""
        self._service.startService()
        self._poller.start(self._poll_interval, now=False)

    def stop(self) -> defer.Deferred:
        """Disconnect and stop reconnecting; fails waiting submissions with :class:`LedgerUnavailableError`."""
        self._stopped = True
        if self._poller.running:
            self._poller.stop()
        for waiter, _, _ in list(self._pending.values()):
            if not waiter.called:
                waiter.errback(LedgerUnavailableError("rippled client stopped"))
        self._pending.clear()
        return defer.maybeDeferred(self._service.stopService)

    def _prepare(self, proto: _Protocol) -> defer.Deferred:
        """ClientService's check of a new connection: the WebSocket handshake must finish; then
        subscribe again (streams do not survive a connection) and look up what is pending."""
        def opened(_: Any) -> None:
            _log.info("connected to rippled at {url}", url=self.url)
            defer.ensureDeferred(self._subscribe(proto.real())).addErrback(
                lambda f: _log.warn("subscribing at {url} failed: {e}", url=self.url, e=f.value))
            return None

        return proto.ws_opened.addCallback(opened)

    async def _subscribe(self, proto: _Protocol) -> None:
        result = await self._send(proto, {"command": "subscribe", "streams": ["ledger"],
                                          **({"accounts": sorted(self._accounts)} if self._accounts else {})}
                                  ).addTimeout(self._timeout, self._reactor)
        self._saw_validated(result.get("result", {}).get("ledger_index"))
        self._check_all()

    def _on_close(self, proto: _Protocol, was_open: bool) -> None:
        for request_id, (d, owner) in list(self._inflight.items()):
            if owner is proto:
                del self._inflight[request_id]
                # On the next turn: by then ClientService knows this connection is gone.
                self._reactor.callLater(0, d.errback, ConnectionDone("connection to rippled lost"))
        if was_open and not self._stopped:
            _log.warn("connection to rippled at {url} lost; reconnecting", url=self.url)

    # -- requests --------------------------------------------------------------------------

    def _send(self, proto: _Protocol, params: dict[str, Any]) -> defer.Deferred:
        request_id = next(self._ids)
        d: defer.Deferred = defer.Deferred()
        self._inflight[request_id] = (d, proto)
        proto.sendMessage(json.dumps(dict(params, id=request_id)).encode())

        def forget(result: Any) -> Any:
            self._inflight.pop(request_id, None)
            return result

        return d.addBoth(forget)

    def request(self, command: str, **params: Any) -> defer.Deferred:
        """Send ``command`` with ``params``; fires with rippled's ``result`` object. Waits for a
        connection and resends after a lost one, for at most ``request_timeout`` seconds
        (:class:`LedgerUnavailableError`); ``status: error`` → :class:`RippledError`."""
        return defer.ensureDeferred(self._request(dict(params, command=command)))

    async def _request(self, params: dict[str, Any]) -> dict[str, Any]:
        deadline = self._reactor.seconds() + self._timeout
        while True:
            left = deadline - self._reactor.seconds()
            if left <= 0 or self._stopped:
                break
            try:
                proto = await self._service.whenConnected().addTimeout(left, self._reactor)
                if not proto.ws_open:     # closing: ClientService has not seen the loss yet
                    await deferLater(self._reactor, 0.01)
                    continue
                left = deadline - self._reactor.seconds()
                response = await self._send(proto, params).addTimeout(max(left, 0.001), self._reactor)
            except (defer.TimeoutError, defer.CancelledError):
                break
            except ConnectionDone:
                continue
            if response.get("status") != "success":
                raise RippledError(response)
            result: dict[str, Any] = response.get("result", {})
            return result
        raise LedgerUnavailableError(f"rippled at {self.url} did not answer {params['command']} "
                                     f"within {self._timeout:g} s")

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "response" and message.get("id") in self._inflight:
            d, _ = self._inflight.pop(message["id"])
            d.callback(message)
        elif kind == "ledgerClosed":
            self._saw_validated(message.get("ledger_index"))
            for listener in list(self._ledger_listeners):
                _notify(listener, message)
            self._check_all()
        elif kind == "transaction" and message.get("validated"):
            tx = message.get("transaction", {})
            touched = {tx.get("Account"), tx.get("Destination")} | _accounts_in_meta(message.get("meta", {}))
            for address in touched & set(self._accounts):
                for callback in list(self._accounts[address]):
                    _notify(callback, message)
            if tx.get("hash") in self._pending:
                self._resolve(tx["hash"], dict(tx, meta=message.get("meta", {}), validated=True,
                                               ledger_index=message.get("ledger_index")))

    def _saw_validated(self, index: Any) -> None:
        if isinstance(index, int) and index > self.validated_index:
            self.validated_index = index

    # -- reads -----------------------------------------------------------------------------

    def server_info(self) -> defer.Deferred:
        return self.request("server_info").addCallback(lambda r: r["info"])

    def fee(self) -> defer.Deferred:
        return self.request("fee")

    def account_info(self, address: str, ledger_index: str = "validated") -> defer.Deferred:
        d = self.request("account_info", account=address, ledger_index=ledger_index)
        return d.addCallbacks(lambda r: r["account_data"], _none_if("actNotFound"))

    def account_channels(self, address: str, destination: Optional[str] = None) -> defer.Deferred:
        params: dict[str, Any] = {"account": address, "ledger_index": "validated"}
        if destination is not None:
            params["destination_account"] = destination
        return self.request("account_channels", **params).addCallback(lambda r: r["channels"])

    def channel(self, channel_id: str) -> defer.Deferred:
        d = self.request("ledger_entry", payment_channel=channel_id, ledger_index="validated")
        return d.addCallbacks(lambda r: r["node"], _none_if("entryNotFound"))

    def tx(self, tx_hash: str) -> defer.Deferred:
        return self.request("tx", transaction=tx_hash).addErrback(_none_if("txnNotFound"))

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe_account(self, address: str, callback: Callable[[dict[str, Any]], None]) -> None:
        first = address not in self._accounts
        self._accounts.setdefault(address, []).append(callback)
        if first:
            self.request("subscribe", accounts=[address]).addErrback(
                lambda f: _log.warn("subscribing to {a} failed ({e}); retried on reconnection", a=address, e=f.value))

    def on_ledger_closed(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._ledger_listeners.append(callback)

    # -- submission ------------------------------------------------------------------------

    def submit(self, blob: str) -> defer.Deferred:
        """Submit a signed blob (it must have ``LastLedgerSequence``) and wait for its validated
        result: :class:`TxResult` on ``tesSUCCESS``; :class:`TransactionFailedError` (``tec``),
        :class:`TransactionRejectedError` (never applied), :class:`TransactionExpiredError`."""
        return defer.ensureDeferred(self._wait(*self._start_submit(blob)))

    def _start_submit(self, blob: str) -> tuple[defer.Deferred, defer.Deferred]:
        tx = decode(blob)
        if "LastLedgerSequence" not in tx:
            raise ValueError("a transaction without LastLedgerSequence can never be known to have failed")
        digest = transaction_hash(blob)
        waiter: defer.Deferred = defer.Deferred()
        self._pending[digest] = (waiter, tx["LastLedgerSequence"], "(not answered)")
        return waiter, defer.ensureDeferred(self._send_submit(digest, blob))

    async def _send_submit(self, digest: str, blob: str) -> None:
        try:
            result = await self.request("submit", tx_blob=blob)
        except LedgerError as err:
            waiter = self._pending.pop(digest, (None,))[0]
            if waiter is not None and not waiter.called:
                waiter.errback(err)
            return
        code = result.get("engine_result", "")
        # tes/tec: in the open ledger; ter: held or queued, may still apply. Anything else is final.
        if code == "tesSUCCESS" or code[:3] in ("tec", "ter"):
            if digest in self._pending:
                waiter, lls, _ = self._pending[digest]
                self._pending[digest] = (waiter, lls, code)
                self._check(digest)
            return
        waiter = self._pending.pop(digest, (None,))[0]
        if waiter is not None and not waiter.called:
            waiter.errback(TransactionRejectedError(code, result.get("engine_result_message", ""), digest))

    @staticmethod
    async def _wait(waiter: defer.Deferred, sent: defer.Deferred) -> TxResult:
        await sent
        return await waiter

    def _check_all(self) -> None:
        for digest in list(self._pending):
            self._check(digest)

    def _check(self, digest: str) -> None:
        """Look ``digest`` up; resolve it if validated, expire it if it can no longer be."""
        if digest not in self._pending or self._pending[digest][2] == "(not answered)":
            return
        seen = self.validated_index

        def found(tx: Optional[dict[str, Any]]) -> None:
            if digest not in self._pending:
                return
            if tx is not None and tx.get("validated"):
                self._resolve(digest, tx)
                return
            waiter, lls, code = self._pending[digest]
            if seen >= lls:
                del self._pending[digest]
                waiter.errback(TransactionExpiredError(digest, lls, code))

        # Unavailable: the next ledger close, poll or reconnection checks again.
        self.tx(digest).addCallbacks(found, lambda failure: failure.trap(LedgerError) and None)

    def _resolve(self, digest: str, tx: dict[str, Any]) -> None:
        waiter = self._pending.pop(digest)[0]
        meta = tx.get("meta", {})
        result = TxResult(digest, int(tx.get("ledger_index", 0)), str(meta.get("TransactionResult")),
                          {k: v for k, v in tx.items() if k not in ("meta", "validated")}, meta)
        if result.code == "tesSUCCESS":
            waiter.callback(result)
        else:
            waiter.errback(TransactionFailedError(result))

    def submit_transaction(self, wallet: Wallet, tx: Transaction) -> defer.Deferred:
        """Fill in fee, sequence and LastLedgerSequence, sign with ``wallet`` and :meth:`submit`;
        one at a time per account (a :class:`~twisted.internet.defer.DeferredLock`) until rippled
        has answered ``submit``, so sequences never collide. Fires as :meth:`submit`."""
        return defer.ensureDeferred(self._submit_transaction(wallet, tx))

    async def _submit_transaction(self, wallet: Wallet, tx: Transaction) -> TxResult:
        lock = self._locks.setdefault(wallet.classic_address, defer.DeferredLock())
        await lock.acquire()
        try:
            info = await self.request("account_info", account=wallet.classic_address, ledger_index="current")
            fee = await self.fee()
            blob, _ = sign_transaction(
                tx, wallet, fee=int(fee["drops"]["open_ledger_fee"]), sequence=info["account_data"]["Sequence"],
                last_ledger_sequence=int(fee["ledger_current_index"]) + self._ledger_offset)
            waiter, sent = self._start_submit(blob)
            await sent
        finally:
            lock.release()
        return await self._wait(waiter, defer.succeed(None))


def _notify(callback: Callable[[dict[str, Any]], None], message: dict[str, Any]) -> None:
    """Call a stream listener; its failure is logged and does not reach the connection."""
    try:
        callback(message)
    except Exception:  # noqa: BLE001 - a listener's bug must not drop the other listeners or the link
        _log.failure("a rippled stream listener failed on a {type} message", type=message.get("type"))


def _none_if(error: str) -> Callable[[Any], None]:
    """An errback turning :class:`RippledError` ``error`` into ``None``; other failures pass on."""

    def errback(failure: Any) -> None:
        failure.trap(RippledError)
        if failure.value.error != error:
            failure.raiseException()
        return None

    return errback


def _accounts_in_meta(meta: dict[str, Any]) -> set[str]:
    """Accounts whose AccountRoot the transaction changed (``AffectedNodes``)."""
    out = set()
    for node in meta.get("AffectedNodes", []):
        for body in node.values():
            fields = body.get("FinalFields") or body.get("NewFields") or {}
            if body.get("LedgerEntryType") == "AccountRoot" and "Account" in fields:
                out.add(fields["Account"])
    return out
