"""Test helpers for plugin authors and for ilptx's own tests: no sockets, no global reactor.

* :class:`MemoryPlugin` -- an :class:`~ilptx.interfaces.ILedgerPlugin` that lives in memory.
  :func:`linked_plugins` returns two of them wired back to back, so that what one sends the
  other's handler receives (like a BTP link without the WebSocket).
* :func:`fulfilling_handler` -- a data handler that fulfills every Prepare whose condition
  it knows the preimage of, and rejects the rest.

Example::

    connector_side, client = linked_plugins()
    # give connector_side to the connector as an account's plugin; drive it via client:
    response_bytes = yield client.send_data(encode_packet(prepare))
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Optional

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ilptx.codec.ilp import ErrorCode, Fulfill, Reject, decode_prepare, encode_packet
from ilptx.errors import PeerUnreachableError
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.base import PluginHandlers

__all__ = ["MemoryPlugin", "linked_plugins", "fulfilling_handler", "condition_for"]


def condition_for(fulfillment: bytes) -> bytes:
    """:returns: SHA-256 of ``fulfillment`` (the execution condition it fulfills)."""
    return hashlib.sha256(fulfillment).digest()


@implementer(ILedgerPlugin)
class MemoryPlugin(PluginHandlers):
    """An in-memory ledger plugin. Pair two with :func:`linked_plugins`.

    :ivar sent_money: amounts passed to :meth:`send_money`, in order.
    :ivar received_money: amounts the peer sent to us (also passed to the money handler).
    """

    def __init__(self, account_id: str = "memory") -> None:
        self.account_id = account_id
        self.peer: Optional[MemoryPlugin] = None
        self.connected = False
        self._log = Logger()
        self._init_handlers()
        self.sent_money: list[int] = []
        self.received_money: list[int] = []
        self.money_keys: list[Optional[str]] = []
        self.fail_money: Optional[BaseException] = None

    def connect(self) -> Deferred:
        """Mark this side connected; both sides' listeners hear ``True`` once the link is up."""
        self.connected = True
        if self.is_connected():
            self._notify_connection(True)
            self.peer._notify_connection(True)
        return succeed(None)

    def disconnect(self) -> Deferred:
        """Mark this side disconnected; both sides' listeners hear ``False`` if the link was up."""
        was_up = self.is_connected()
        self.connected = False
        if was_up:
            self._notify_connection(False)
            self.peer._notify_connection(False)
        return succeed(None)

    def is_connected(self) -> bool:
        """Connected when both sides have called :meth:`connect`."""
        return self.connected and self.peer is not None and self.peer.connected

    def send_data(self, data: bytes) -> Deferred:
        """Hand ``data`` to the peer's data handler; T01 when not connected."""
        if not self.is_connected():
            return fail(PeerUnreachableError(f"{self.account_id} is not connected"))
        peer = self.peer
        if peer.data_handler is None:
            return fail(PeerUnreachableError(f"{peer.account_id} has no data handler"))
        return maybeDeferred(peer.data_handler, bytes(data))

    def send_money(self, amount: int, idempotency_key: Optional[str] = None) -> Deferred:
        """Record ``amount`` (and the key in :attr:`money_keys`), hand it to the peer's money
        handler. Set :attr:`fail_money` to an exception to make the next calls fail."""
        self.money_keys.append(idempotency_key)
        if self.fail_money is not None:
            return fail(self.fail_money)
        self.sent_money.append(amount)
        peer = self.peer
        peer.received_money.append(amount)
        if peer.money_handler is None:
            return succeed(None)
        return maybeDeferred(peer.money_handler, amount)


def linked_plugins(a_id: str = "a", b_id: str = "b") -> tuple[MemoryPlugin, MemoryPlugin]:
    """:returns: two :class:`MemoryPlugin` wired to each other (not yet connected)."""
    a, b = MemoryPlugin(a_id), MemoryPlugin(b_id)
    a.peer, b.peer = b, a
    return a, b


def fulfilling_handler(fulfillments: Iterable[bytes], address: str = "test.receiver") -> Callable[[bytes], bytes]:
    """A receiver's data handler: fulfills Prepares whose condition it can meet.

    :param fulfillments: preimages it knows.
    :returns: ``handler(bytes) -> bytes``; unknown conditions get ``F05`` from ``address``.
    :ivar received: (on the handler) the Prepares it saw, in order.
    """
    by_condition = {condition_for(f): f for f in fulfillments}
    received = []

    def handler(data: bytes) -> bytes:
        prepare = decode_prepare(data)
        received.append(prepare)
        fulfillment = by_condition.get(prepare.execution_condition)
        if fulfillment is None:
            return encode_packet(Reject(ErrorCode.F05_WRONG_CONDITION, address, "unknown condition", b""))
        return encode_packet(Fulfill(fulfillment, b""))

    handler.received = received  # type: ignore[attr-defined]
    return handler
