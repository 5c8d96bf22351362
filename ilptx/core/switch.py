"""The packet switch: incoming pipeline → route → outgoing pipeline → next hop, and back.

Per packet, from the ledger plugin of the account it arrived on:

1. decode the ILP Prepare once (malformed → ``F01 Invalid Packet``);
2. the account's incoming pipeline (:mod:`ilptx.core.middleware`; outermost:
   ``errorHandler``, which turns what we raise into a Reject with our address as
   ``triggeredBy``);
3. ``peer.*`` destinations are peer protocols answered here (``peer.config``: IL-DCP,
   RFC 31); everything else is routed: longest-prefix match (``F02 Unreachable``),
   ``reflectPayments``, exchange rate with the amount floored, and expiry
   ``min(incoming − minMessageWindow, now + maxHoldTime)`` (``R02 Insufficient Timeout``
   when less than ``minMessageWindow`` would remain), next hop connected (``T01``);
4. the next hop's outgoing pipeline (``balance``, ``expire`` → ``R00`` at the outgoing
   expiry, ``validateFulfillment`` → ``F05``, ...), then the next hop's ledger plugin;
5. the Fulfill, or the downstream Reject unchanged, goes back, encoded once.

The switch owns no balances and no settlement; those are middlewares and the settlement
manager. Money received from a peer runs the account's incoming money pipeline;
:meth:`PacketSwitch.send_money` runs the outgoing one and ends in the plugin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional, Sequence

from twisted.internet.defer import CancelledError, Deferred, DeferredList, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ilptx.codec.ccp import (
    CCP_CONTROL_DESTINATION,
    CCP_UPDATE_DESTINATION,
    decode_route_control,
    decode_route_update,
)
from ilptx.codec.ildcp import ILDCP_DESTINATION, PEER_PROTOCOL_CONDITION, PEER_PROTOCOL_FULFILLMENT
from ilptx.codec.ilp import (
    ErrorCode,
    Fulfill,
    Prepare,
    Reject,
    decode_prepare,
    decode_response,
    encode_packet,
    timestamp_at,
    to_milliseconds,
)
from ilptx.codec.oer import DecodeError
from ilptx.core.accounts import Account, Accounts
from ilptx.core.ildcp import IldcpHost
from ilptx.core.pipeline import AccountPipelines, build_pipelines
from ilptx.core.rates import convert
from ilptx.core.routing import RoutingTable
from ilptx.errors import (
    BadRequestError,
    IlpError,
    InsufficientTimeoutError,
    InternalError,
    InvalidPacketError,
    PeerUnreachableError,
    UnreachableError,
)

__all__ = ["PacketSwitch"]

PEER_PROTOCOL_PREFIX = "peer."


class PacketSwitch:
    """Forwards ILP Prepares between accounts.

    :param address: the connector's ILP address (RFC 15).
    :param accounts: every account, each with its ``plugin`` set.
    :param routing_table: prefix → account id.
    :param rate_backend: an :class:`ilptx.interfaces.IRateBackend`.
    :param clock: ``IReactorTime``; all time comes from here.
    :param min_message_window_ms: ``minMessageWindow`` (ms), default 1000.
    :param max_hold_time_ms: ``maxHoldTime`` (ms), default 30000.
    :param reflect_payments: ``reflectPayments``: may a packet go back to its sender's account.
    """

    log = Logger()

    def __init__(
        self,
        *,
        address: str,
        accounts: Accounts,
        routing_table: RoutingTable,
        rate_backend,
        clock,
        min_message_window_ms: int = 1000,
        max_hold_time_ms: int = 30000,
        reflect_payments: bool = True,
    ) -> None:
        self.address = address
        self.accounts = accounts
        self.routing_table = routing_table
        self.rate_backend = rate_backend
        self.clock = clock
        self.min_message_window_ms = min_message_window_ms
        self.max_hold_time_ms = max_hold_time_ms
        self.reflect_payments = reflect_payments
        self.ildcp = IldcpHost(lambda: self.address)
        self.pipelines: dict[str, AccountPipelines] = {}
        #: :class:`ilptx.core.ccp.RouteManager` when route broadcasting is on (``peer.route.*``)
        self.route_manager = None
        #: Deferred of each Prepare waiting for an answer → (source account, Prepare)
        self._in_flight: dict[Deferred, tuple] = {}
        self._stopping = False

    def attach(self, account: Account, middlewares: Sequence) -> AccountPipelines:
        """Build ``account``'s pipelines from its middleware instances (outermost first per
        direction, see :mod:`ilptx.core.pipeline`) and route its plugin's packets and money here.

        :returns: the account's :class:`~ilptx.core.pipeline.AccountPipelines`.
        """
        pipelines = build_pipelines(middlewares, incoming=self._route, outgoing=self._send,
                                    incoming_money=_money_received)
        self.pipelines[account.id] = pipelines
        return pipelines

    def detach(self, account_id: str) -> None:
        """Forget an account's pipelines (its Prepares in flight still finish)."""
        pipelines = self.pipelines.pop(account_id, None)
        if pipelines is not None:
            pipelines.stop()

    # -- entry point from ledger plugins ---------------------------------------------------

    def data_handler(self, account: Account) -> Callable[[bytes], Deferred]:
        """:returns: the ``ILedgerPlugin`` data handler for packets arriving on ``account``."""

        def handle(data: bytes) -> Deferred:
            return self.handle_data(account, data)

        return handle

    def handle_data(self, account: Account, data: bytes) -> Deferred:
        """Process one OER-encoded Prepare from ``account``.

        :returns: ``Deferred[bytes]``: the OER Fulfill or Reject. Never errbacks.
        """
        if self._stopping:
            return succeed(encode_packet(Reject(
                ErrorCode.T03_CONNECTOR_BUSY, self.address, "connector is shutting down", b"")))
        try:
            prepare = decode_prepare(data)
        except DecodeError as exc:
            return succeed(encode_packet(Reject(
                ErrorCode.F01_INVALID_PACKET, self.address, f"invalid ILP Prepare: {exc}", b"")))
        d = self.pipelines[account.id].incoming(account, prepare)
        if d.called:
            return d.addCallback(encode_packet)
        in_flight = self._in_flight
        in_flight[d] = (account, prepare)

        def done(result):
            in_flight.pop(d, None)
            return encode_packet(result)

        return d.addCallback(done)

    # -- incoming terminal: peer protocols and routing ------------------------------------

    def _route(self, account: Account, prepare: Prepare) -> Deferred:
        destination = prepare.destination
        if destination.startswith(PEER_PROTOCOL_PREFIX):
            return succeed(self._peer_protocol(account, prepare))
        if not destination:
            raise InvalidPacketError("missing destination.")
        hop_id = self.routing_table.resolve(destination)
        if hop_id is None:
            raise UnreachableError(f"no route found. source={account.id} destination={destination}")
        if hop_id == account.id and not self.reflect_payments:
            raise UnreachableError(
                f"refusing to route payments back to sender. sourceAccount={account.id} destination={destination}")
        hop = self.accounts.get(hop_id)
        rate = self.rate_backend.rate(account.asset_code, account.asset_scale, hop.asset_code, hop.asset_scale)
        amount = prepare.amount if rate == 1 else convert(prepare.amount, rate)
        expires_at = self._next_expiry(prepare.expires_at)
        if not hop.plugin.is_connected():
            raise PeerUnreachableError(f"no connection to account. account={hop_id}")
        outgoing = Prepare(amount, expires_at, prepare.execution_condition, destination, prepare.data)
        return self.pipelines[hop_id].outgoing(hop, outgoing)

    def _peer_protocol(self, account: Account, prepare: Prepare):
        if prepare.execution_condition != PEER_PROTOCOL_CONDITION:
            raise InvalidPacketError("condition must be peer protocol condition.")
        destination = prepare.destination
        if destination == ILDCP_DESTINATION:
            return self.ildcp.handle(account, prepare)
        if destination in (CCP_CONTROL_DESTINATION, CCP_UPDATE_DESTINATION):
            manager = self.route_manager
            if manager is None:
                raise BadRequestError("route broadcasting is disabled on this connector.")
            try:
                if destination == CCP_CONTROL_DESTINATION:
                    manager.handle_route_control(account, decode_route_control(prepare.data))
                else:
                    manager.handle_route_update(account, decode_route_update(prepare.data))
            except DecodeError as exc:
                raise InvalidPacketError(f"invalid CCP message: {exc}") from None
            return Fulfill(PEER_PROTOCOL_FULFILLMENT, b"")
        raise InvalidPacketError(f"unknown peer protocol. destination={destination}")

    def _next_expiry(self, source_expiry: datetime) -> datetime:
        """``min(source − minMessageWindow, now + maxHoldTime)``, in whole ms.

        :raises InsufficientTimeoutError: (R02) already expired, or less than
            ``minMessageWindow`` would be left for the next hop.
        """
        now_ms = self.clock.seconds() * 1000.0
        source_ms = to_milliseconds(source_expiry)
        if source_ms < now_ms:
            raise InsufficientTimeoutError(
                f"source transfer has already expired. sourceExpiry={source_expiry.isoformat()}")
        window = self.min_message_window_ms
        next_ms = int(min(source_ms - window, now_ms + self.max_hold_time_ms))
        if next_ms - now_ms < window:
            raise InsufficientTimeoutError(
                f"source transfer expires too soon to complete payment. sourceExpiry={source_expiry.isoformat()}")
        return timestamp_at(0, next_ms)

    # -- money ---------------------------------------------------------------------------------

    def money_handler(self, account: Account) -> Callable[[int], Deferred]:
        """:returns: the ``ILedgerPlugin`` money handler for settlements received on ``account``."""

        def handle(amount: int) -> Deferred:
            return self.pipelines[account.id].incoming_money(account, amount)

        return handle

    def send_money(self, account: Account, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Settle ``amount`` with ``account``'s peer through its outgoing money pipeline.

        :returns: ``Deferred[None]`` from the plugin's ``send_money``.
        """

        def terminal(acct: Account, value: int) -> Deferred:
            return maybeDeferred(acct.plugin.send_money, value, idempotency_key=idempotency_key)

        return self.pipelines[account.id].send_money(account, amount, terminal)

    # -- outgoing terminal: the next hop's ledger plugin -----------------------------------

    def _send(self, account: Account, prepare: Prepare) -> Deferred:
        d = account.plugin.send_data(encode_packet(prepare))
        return d.addCallbacks(_decode_response, _send_failed, errbackArgs=(account,))

    # -- lifecycle ---------------------------------------------------------------------------

    def in_flight(self) -> int:
        """:returns: how many Prepares are waiting for an answer from a next hop."""
        return len(self._in_flight)

    def stop(self) -> Deferred:
        """Refuse new Prepares (``T03``) and wait until every Prepare in flight is answered.

        Each in-flight Prepare is answered at the latest at its outgoing expiry (``expire``),
        so this finishes within ``maxHoldTime``.

        :returns: ``Deferred[None]``.
        """
        self._stopping = True
        for account, prepare in self._in_flight.values():
            self.log.info("waiting for Prepare from {account} to {destination} (expires {expires_at})",
                          account=account.id, destination=prepare.destination,
                          expires_at=prepare.expires_at.isoformat())
        pending = list(self._in_flight)
        return DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)


def _money_received(account: Account, amount: int) -> Deferred:
    return succeed(None)


def _decode_response(data: bytes):
    try:
        return decode_response(data)
    except DecodeError as exc:
        raise InternalError(f"invalid response from next hop: {exc}") from None


def _send_failed(failure: Failure, account: Account):
    """The next hop's plugin failed to deliver: keep its ILP code (T01 not connected, F02 for a
    BTP Error or plugin timeout, as the reference), with the reference's wording."""
    if failure.check(CancelledError):
        return failure  # our own expiry timer: the expire middleware reports R00
    exc = failure.value
    if isinstance(exc, IlpError):
        raise IlpError(f"failed to send packet: {exc.message}", exc.data, code=exc.code)
    raise PeerUnreachableError(f"failed to send packet to account {account.id}: {failure.getErrorMessage()}")
