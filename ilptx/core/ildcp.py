"""IL-DCP (RFC 31), both sides.

* :class:`IldcpHost` answers a child's ``peer.config`` request: the child's address is the
  connector's address, a period, and the account's ``ilpAddressSegment`` (default: the
  account id), as the reference connector assigns it.
* :func:`fetch_config` and :class:`AddressInheritance` ask a parent for our own address.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ilptx.codec.ildcp import IldcpResponse, request_prepare, response_fulfill
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet, timestamp_at
from ilptx.codec.oer import DecodeError
from ilptx.core.accounts import Account
from ilptx.errors import BadRequestError

__all__ = ["IldcpHost", "IldcpError", "fetch_config", "AddressInheritance", "IL_DCP_TIMEOUT_MS"]

#: How long one IL-DCP request may take (ms) before we retry.
IL_DCP_TIMEOUT_MS = 10000


class IldcpHost:
    """:param address: callable returning the connector's current ILP address."""

    def __init__(self, address: Callable[[], str]) -> None:
        self._address = address

    def child_address(self, account: Account) -> str:
        """:returns: ``<connector address>.<segment>`` for a child account.

        :raises BadRequestError: (F00) the account is not a child.
        """
        if account.relation != "child":
            raise BadRequestError(
                f"IL-DCP is only served to child accounts; account {account.id} is a {account.relation}"
            )
        return f"{self._address()}.{account.segment}"

    def handle(self, account: Account, prepare: Prepare) -> Fulfill:
        """:returns: the Fulfill carrying the child's address, asset scale and code."""
        return response_fulfill(IldcpResponse(self.child_address(account), account.asset_scale, account.asset_code))


class IldcpError(Exception):
    """The parent answered IL-DCP with a Reject or with data we cannot read."""


def fetch_config(send: Callable, clock, timeout_ms: int = IL_DCP_TIMEOUT_MS) -> Deferred:
    """Ask a parent for our address, asset code and scale (RFC 31, the child side).

    :param send: ``send(prepare_bytes) -> Deferred[bytes]`` (the parent account's plugin).
    :param clock: ``IReactorTime``.
    :param timeout_ms: the request's expiry and how long we wait, in ms.
    :returns: ``Deferred[IldcpResponse]``; errbacks with :class:`IldcpError` (Reject or bad
        data), ``TimeoutError`` (no answer in time) or the plugin's error.
    """
    expires = timestamp_at(clock.seconds(), timeout_ms)
    d = maybeDeferred(send, encode_packet(request_prepare(expires)))
    d.addTimeout(timeout_ms / 1000.0, clock)

    def answered(raw: bytes) -> IldcpResponse:
        try:
            response = decode_response(raw)
            if isinstance(response, Reject):
                raise IldcpError(f"parent rejected IL-DCP: {response.code} {response.message}")
            return IldcpResponse.decode(response.data)
        except DecodeError as exc:
            raise IldcpError(f"unreadable IL-DCP response: {exc}") from None

    return d.addCallback(answered)


class AddressInheritance:
    """Takes the connector's address from a parent with IL-DCP, and keeps it current.

    Unlike the reference, which waits forever, each request has a timeout and failures are
    retried after 1, 2, 5, 10, 30, then every 30 s, as long as the parent is connected; when
    the parent reconnects the address is fetched again (it may have changed).

    :param account: the parent :class:`~ilptx.core.accounts.Account` (its plugin is used).
    :param clock: ``IReactorTime``.
    :param on_config: ``callable(IldcpResponse)`` called with every answer.
    :ivar first: ``Deferred[IldcpResponse]`` firing with the first answer.
    """

    log = Logger()
    RETRY_DELAYS = (1, 2, 5, 10, 30)

    def __init__(self, account: Account, clock, on_config: Callable, timeout_ms: int = IL_DCP_TIMEOUT_MS) -> None:
        self.account = account
        self._clock = clock
        self._on_config = on_config
        self._timeout_ms = timeout_ms
        self._attempt = 0
        self._timer = None
        self._fetching = False
        self._stopped = False
        self.first: Deferred = Deferred()

    def start(self) -> None:
        """Fetch now if the parent is connected, and whenever it (re)connects."""
        self.account.plugin.add_connection_listener(self._connection_changed)
        if self.account.plugin.is_connected():
            self._fetch()

    def stop(self) -> None:
        """Stop retrying."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _connection_changed(self, connected: bool) -> None:
        if connected and not self._stopped:
            self._attempt = 0
            self._fetch()

    def _fetch(self) -> None:
        if self._fetching or self._stopped:
            return
        self._fetching = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        d = fetch_config(self.account.plugin.send_data, self._clock, self._timeout_ms)
        d.addCallbacks(self._got, self._failed)

    def _got(self, config: IldcpResponse) -> None:
        self._fetching = False
        self._attempt = 0
        self.log.info("IL-DCP from {account}: our address is {address} ({code}, scale {scale})",
                      account=self.account.id, address=config.client_address, code=config.asset_code,
                      scale=config.asset_scale)
        self._on_config(config)
        if not self.first.called:
            self.first.callback(config)

    def _failed(self, failure) -> None:
        self._fetching = False
        delay = self.RETRY_DELAYS[min(self._attempt, len(self.RETRY_DELAYS) - 1)]
        self._attempt += 1
        self.log.warn("IL-DCP from {account} failed ({error}); retrying in {delay} s",
                      account=self.account.id, error=failure.getErrorMessage(), delay=delay)
        if not self._stopped:
            self._timer = self._clock.callLater(delay, self._retry)

    def _retry(self) -> None:
        if self.account.plugin.is_connected():
            self._fetch()
