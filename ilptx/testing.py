"""Test helpers for plugin authors and for ilptx's own tests: no sockets, no global reactor.

Plugins in memory

* :class:`MemoryPlugin` -- an :class:`~ilptx.interfaces.ILedgerPlugin` that lives in memory.
  :func:`linked_plugins` returns two of them wired back to back, so that what one sends the
  other's handler receives (like a BTP link without the WebSocket).
* :class:`MemoryPluginFactory` -- a ledger plugin factory making MemoryPlugins, keeping each
  account's counterparty.
* :func:`fulfilling_handler` -- a data handler that fulfills every Prepare whose condition
  it knows the preimage of, and rejects the rest.

Plugins on a fake network

* :class:`FakeNetwork` -- one :class:`~twisted.internet.testing.MemoryReactorClock` for every
  plugin of a test, and the wire between them (:mod:`twisted.test.iosim`): a plugin that
  dials is connected to the one listening on that port.
* :func:`plugin_services` -- the :class:`~ilptx.plugins.base.PluginServices` a factory gets.

Your plugin in a connector, and the contract it must meet

* :class:`ConnectorHarness` -- a real connector (:func:`ilptx.node.build_connector`) on the
  fake network, with your plugin in one account and a memory plugin in another; send
  Prepares through it both ways.
* :class:`LedgerPluginContract` / :class:`SettlingPluginContract` -- mixins of pytest tests
  that every :class:`~ilptx.interfaces.ILedgerPlugin` (and every plugin that settles) must
  pass; subclass one and say how to make a linked pair (:class:`LinkedPair`).
* :func:`result_of` / :func:`failure_of` -- the outcome of a Deferred that has fired.

Example::

    from ilptx.testing import LedgerPluginContract, LinkedPair, FakeNetwork, plugin_services

    class TestMyLedgerContract(LedgerPluginContract):
        def make_pair(self):
            net = FakeNetwork()
            mine = my_factory({...}, account_id="a", services=plugin_services(net.reactor, account_id="a"))
            theirs = my_factory({...}, account_id="b", services=plugin_services(net.reactor, account_id="b"))
            return LinkedPair(mine, theirs, net.settle)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ilptx.codec.ilp import (
    ErrorCode,
    Fulfill,
    Prepare,
    Reject,
    decode_prepare,
    decode_response,
    encode_packet,
    timestamp_at,
)
from ilptx.errors import PeerUnreachableError
from ilptx.interfaces import LEDGER_PLUGIN_ABILITIES, ILedgerPlugin
from ilptx.plugins.base import PluginHandlers, PluginServices

__all__ = ["MemoryPlugin", "linked_plugins", "MemoryPluginFactory", "fulfilling_handler", "condition_for",
           "FakeNetwork", "plugin_services", "ConnectorHarness", "LinkedPair", "LedgerPluginContract",
           "SettlingPluginContract", "result_of", "failure_of"]


def result_of(d: Deferred):
    """:returns: the result of ``d``, which must have fired; re-raises its failure.

    :raises AssertionError: ``d`` has not fired yet.
    """
    results: list = []
    d.addBoth(results.append)
    assert results, f"expected {d!r} to have fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def failure_of(d: Deferred) -> Failure:
    """:returns: the :class:`~twisted.python.failure.Failure` ``d`` has failed with (consumed).

    :raises AssertionError: ``d`` has not fired, or succeeded.
    """
    outcome: list = []
    d.addBoth(outcome.append)
    assert outcome, f"expected {d!r} to have failed"
    assert isinstance(outcome[0], Failure), f"expected {d!r} to fail, it gave {outcome[0]!r}"
    return outcome[0]


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
        """Mark this side connected; both sides' listeners hear ``True`` once the link is up
        (once: connecting again changes nothing)."""
        was_up = self.is_connected()
        self.connected = True
        if self.is_connected() and not was_up:
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


class MemoryPluginFactory:
    """A ledger plugin factory (``factory(options, *, account_id, services)``) that makes a
    :class:`MemoryPlugin` per account, linked to a counterparty the test drives.

    :ivar plugins: account id → the plugin the connector got.
    :ivar clients: account id → its counterparty (not yet connected).
    :ivar options: account id → the ``options`` the factory was called with.
    """

    def __init__(self) -> None:
        self.plugins: dict[str, MemoryPlugin] = {}
        self.clients: dict[str, MemoryPlugin] = {}
        self.options: dict[str, dict] = {}

    def __call__(self, options: dict, *, account_id: str, services: PluginServices) -> MemoryPlugin:
        """:returns: the connector's side of a new linked pair (see :func:`linked_plugins`)."""
        plugin, client = linked_plugins(account_id, account_id + "-client")
        self.plugins[account_id], self.clients[account_id], self.options[account_id] = plugin, client, options
        return plugin


def plugin_services(reactor=None, *, account_id: str = "test", store=None) -> PluginServices:
    """The services object a factory gets from the connector, for calling a factory in a test.

    :param reactor: default a new :class:`~twisted.internet.testing.MemoryReactorClock`.
    :param store: an :class:`~ilptx.interfaces.IStore`; default a new
        :class:`ilptx.stores.memory.MemoryStore`.
    """
    from ilptx.stores.memory import MemoryStore

    return PluginServices(reactor=reactor if reactor is not None else MemoryReactorClock(),
                          log=Logger(namespace=f"ilptx.account.{account_id}"),
                          store=store if store is not None else MemoryStore())


class FakeNetwork:
    """Plugins that listen and dial over TCP, linked in memory.

    Every plugin of the test uses :attr:`reactor`; :meth:`settle` connects each TCP dial
    (``connectTCP``, e.g. from ``HostnameEndpoint``) to the server listening on its port
    (``listenTCP``) through :func:`twisted.test.iosim.connect`, and moves bytes until nothing
    moves. A dial to a port nobody listens on stays pending. (A listener that stopped still
    accepts: ``MemoryReactorClock`` keeps it in ``tcpServers``.)

    :ivar reactor: the shared :class:`~twisted.internet.testing.MemoryReactorClock`.
    :ivar pumps: one :class:`twisted.test.iosim.IOPump` per connection made.
    """

    def __init__(self, reactor: Optional[MemoryReactorClock] = None) -> None:
        self.reactor = reactor if reactor is not None else MemoryReactorClock()
        self.pumps: list = []
        self._dials_done = 0

    def connect_pending(self) -> int:
        """Connect every dial made since the last call whose port has a listener.

        :returns: how many connections were made.
        """
        made = 0
        while self._dials_done < len(self.reactor.tcpClients):
            host, port, client_factory, _timeout, _bind = self.reactor.tcpClients[self._dials_done]
            servers = [factory for (listen_port, factory, _backlog, _interface) in self.reactor.tcpServers
                       if listen_port == port]
            if not servers:
                break
            self._dials_done += 1
            client_address = IPv4Address("TCP", "127.0.0.1", 40000 + len(self.pumps))
            server_address = IPv4Address("TCP", host, port)
            client = client_factory.buildProtocol(server_address)
            server = servers[-1].buildProtocol(client_address)
            client_io = iosim.FakeTransport(client, isServer=False, hostAddress=client_address,
                                            peerAddress=server_address)
            server_io = iosim.FakeTransport(server, isServer=True, hostAddress=server_address,
                                            peerAddress=client_address)
            self.pumps.append(iosim.connect(server, server_io, client, client_io, greet=False, clock=self.reactor))
            made += 1
        return made

    def settle(self, seconds: float = 0.0) -> None:
        """Connect pending dials and move bytes until quiet; then let ``seconds`` of fake time
        pass (timers fire) and do it again."""
        self._quiet()
        if seconds:
            self.reactor.advance(seconds)
            self._quiet()

    def _quiet(self) -> None:
        for _ in range(100):
            moved = self.connect_pending() > 0
            for pump in self.pumps:
                moved = pump.flush() or moved
            self.reactor.advance(0)
            if not moved:
                return
        raise AssertionError("the fake network did not settle in 100 rounds")


class ConnectorHarness:
    """A connector (:func:`ilptx.node.build_connector`, memory store) on a :class:`FakeNetwork`
    with two accounts:

    * ``"plugin"``: the plugin under test, made by ``factory(options, *, account_id, services)``
      exactly as the connector makes it in production (and verified the same way). A ``child``
      is reached at ``test.harness.plugin``; another relation at ``plugin_prefix`` (a static
      route).
    * ``"memory"``: a child at ``test.harness.memory`` on a :class:`MemoryPlugin` whose
      counterparty is :attr:`memory_client`.

    Route broadcasting is on, as in production: a ``peer`` or ``parent`` plugin's counterparty
    receives CCP route control (a Prepare to ``peer.route.control``) once it connects.

    :param factory: the ledger plugin factory under test.
    :param options: the account's ``options`` for it.
    :param relation: ``"peer"`` (default), ``"parent"`` or ``"child"``.
    :param asset_code: / :param asset_scale: both accounts' asset (default USD, 9).
    :param plugin_prefix: the address prefix routed to a non-child plugin account.
    :param network: a :class:`FakeNetwork` to share (default a new one).
    :param config: more top-level config keys (e.g. ``{"routeBroadcastEnabled": False}``).
    :param settings: more keys of the plugin's account (e.g. ``{"balance": {...}}``).
    :ivar connector: the :class:`ilptx.node.Connector`.
    :ivar plugin: the plugin the factory made.
    :ivar memory_client: the :class:`MemoryPlugin` counterparty of the ``memory`` account.
    :ivar network: the :class:`FakeNetwork`; give its ``reactor`` to your plugin's counterparty.
    """

    ADDRESS = "test.harness"

    def __init__(self, factory: Callable, options: Optional[dict] = None, *, relation: str = "peer",
                 asset_code: str = "USD", asset_scale: int = 9, plugin_prefix: str = "test.peer",
                 network: Optional[FakeNetwork] = None, config: Optional[dict] = None,
                 settings: Optional[dict] = None) -> None:
        from ilptx.config import parse_config
        from ilptx.node import build_connector
        from ilptx.stores.memory import MemoryStore

        self.network = network if network is not None else FakeNetwork()
        self.memory = MemoryPluginFactory()
        self.plugin_prefix = f"{self.ADDRESS}.plugin" if relation == "child" else plugin_prefix
        account = {"relation": relation, "plugin": "under-test", "assetCode": asset_code, "assetScale": asset_scale,
                   "options": options or {}, **(settings or {})}
        data = {"ilpAddress": self.ADDRESS, "backend": "one-to-one", "spread": 0,
                "accounts": {"plugin": account,
                             "memory": {"relation": "child", "plugin": "memory", "assetCode": asset_code,
                                        "assetScale": asset_scale}},
                "routes": [] if relation == "child" else [{"targetPrefix": plugin_prefix, "peerId": "plugin"}],
                **(config or {})}
        self.store = MemoryStore()
        self.connector = build_connector(parse_config(data, env={}), reactor=self.network.reactor,
                                         plugin_factories={"under-test": factory, "memory": self.memory},
                                         store=self.store, custom_middleware_factories={})
        self.plugin = self.connector.accounts.get("plugin").plugin
        self.memory_client = self.memory.clients["memory"]

    def start(self) -> None:
        """Start the connector (plugins connect) and the memory counterparty; settle."""
        self.connector.startService()
        self.memory_client.connect()
        self.network.settle()

    def stop(self) -> None:
        """Stop the connector (waits for Prepares in flight, disconnects plugins); settle."""
        d = maybeDeferred(self.connector.stopService)
        self.network.settle()
        result_of(d)

    def prepare(self, amount: int, fulfillment: bytes, destination: Optional[str] = None, *,
                expires_in_ms: int = 10_000, data: bytes = b"") -> Prepare:
        """A Prepare of ``amount`` (base units) for ``fulfillment``'s condition, expiring
        ``expires_in_ms`` after the fake clock's now; default destination ``<plugin_prefix>.x``."""
        return Prepare(amount, timestamp_at(self.network.reactor.seconds(), expires_in_ms), condition_for(fulfillment),
                       destination or f"{self.plugin_prefix}.x", data)

    def send(self, prepare: Prepare, settle_seconds: float = 0.0) -> Deferred:
        """Send ``prepare`` from the memory account into the connector; settle.

        :returns: ``Deferred[Fulfill | Reject]`` (fired once the network settled, if the
            route's far end answered).
        """
        d = self.memory_client.send_data(encode_packet(prepare)).addCallback(decode_response)
        self.network.settle(settle_seconds)
        return d

    def receive(self, fulfillments: Iterable[bytes]) -> Callable[[bytes], bytes]:
        """Make the memory counterparty fulfill Prepares for these preimages (and reject the
        rest); :returns: its handler (``.received`` lists the Prepares it saw)."""
        handler = fulfilling_handler(fulfillments, address=f"{self.ADDRESS}.memory")
        self.memory_client.deregister_data_handler()
        self.memory_client.register_data_handler(handler)
        return handler

    def balance(self, account_id: str = "plugin") -> int:
        """:returns: the account's balance in the store (``int`` base units, connector's view)."""
        return result_of(self.store.get_balance(account_id)).balance


# -- the ILedgerPlugin contract ------------------------------------------------------------------

@dataclass
class LinkedPair:
    """A plugin under test and its counterparty, linked (not yet connected).

    :ivar plugin: the :class:`~ilptx.interfaces.ILedgerPlugin` under test.
    :ivar peer: what it talks to: another instance (e.g. the other role), or any plugin
        that speaks its protocol.
    :ivar settle: ``callable()`` that delivers what is in flight (e.g. :meth:`FakeNetwork.settle`).
    """

    plugin: Any
    peer: Any
    settle: Callable[[], None] = field(default=lambda: None)


_FULFILLMENT = b"\x11" * 32


def _contract_prepare(destination: str = "test.contract.x", data: bytes = b"contract") -> bytes:
    return encode_packet(Prepare(10, timestamp_at(2_000_000_000, 30_000), condition_for(_FULFILLMENT),
                                 destination, data))


_FULFILL = encode_packet(Fulfill(_FULFILLMENT, b"done"))
_REJECT = encode_packet(Reject(ErrorCode.F99_APPLICATION_ERROR, "test.contract", "no", b"why"))


class LedgerPluginContract:
    """The :class:`~ilptx.interfaces.ILedgerPlugin` contract as pytest tests.

    Subclass it in a test module (the class name must start with ``Test``) and define
    :meth:`make_pair`; pytest runs every ``test_*`` method against your plugin. Each test
    makes a fresh pair. Data travels as opaque ``bytes`` (the contract does not look into
    the ILP packets beyond their being valid OER). What it pins:

    * the object provides ``ILedgerPlugin`` and every optional interface it declares;
    * ``connect`` fires on both sides and each side's connection listeners hear ``True``
      once (connecting again is harmless); ``disconnect`` fires, both hear ``False``;
    * a Prepare sent either way reaches the other side's data handler byte for byte, and its
      Fulfill or Reject (returned at once or from a Deferred) comes back byte for byte;
    * a failing handler fails that request only: the link stays up;
    * cancelling ``send_data`` errbacks with ``CancelledError``; a late answer is dropped;
    * a second handler is refused with ``RuntimeError`` until the first is deregistered;
    * ``send_data`` when disconnected errbacks with
      :class:`~ilptx.errors.PeerUnreachableError` (T01).
    """

    def make_pair(self) -> LinkedPair:
        """:returns: a new :class:`LinkedPair`; override this."""
        raise NotImplementedError("define make_pair() in your contract test class")

    def connected_pair(self) -> LinkedPair:
        """:returns: a :class:`LinkedPair` both of whose sides have connected."""
        pair = self.make_pair()
        connecting = [maybeDeferred(pair.plugin.connect), maybeDeferred(pair.peer.connect)]
        pair.settle()
        for d in connecting:
            result_of(d)
        assert pair.plugin.is_connected() and pair.peer.is_connected()
        return pair

    def test_provides_ledger_plugin_and_declared_abilities(self):
        """The plugin provides ILedgerPlugin and every optional ability it declares (verifyObject)."""
        plugin = self.make_pair().plugin
        assert verifyObject(ILedgerPlugin, plugin)
        for ability in LEDGER_PLUGIN_ABILITIES:
            if ability.providedBy(plugin):
                assert verifyObject(ability, plugin)
        assert isinstance(plugin.account_id, str)

    def test_connect_fires_and_listeners_hear_true_once(self):
        """connect() fires on both sides; each side's listeners hear True once, even after a second connect()."""
        pair = self.make_pair()
        heard: dict = {"plugin": [], "peer": []}
        pair.plugin.add_connection_listener(heard["plugin"].append)
        pair.peer.add_connection_listener(heard["peer"].append)
        assert not pair.plugin.is_connected()
        connecting = [maybeDeferred(pair.plugin.connect), maybeDeferred(pair.peer.connect)]
        pair.settle()
        assert [result_of(d) for d in connecting] == [None, None]
        again = maybeDeferred(pair.plugin.connect)
        pair.settle()
        assert result_of(again) is None
        assert pair.plugin.is_connected() and pair.peer.is_connected()
        assert heard == {"plugin": [True], "peer": [True]}

    def _round_trip(self, sender, receiver, settle, answer) -> None:
        seen = []

        def handler(data):
            seen.append(data)
            return answer

        receiver.register_data_handler(handler)
        prepare = _contract_prepare()
        d = sender.send_data(prepare)
        settle()
        assert result_of(d) == (answer if isinstance(answer, bytes) else result_of(answer))
        assert seen == [prepare]

    def test_prepare_out_reaches_peer_and_fulfill_comes_back(self):
        """send_data: the Prepare reaches the counterparty's data handler unchanged; its Fulfill comes back so."""
        pair = self.connected_pair()
        self._round_trip(pair.plugin, pair.peer, pair.settle, _FULFILL)

    def test_prepare_in_reaches_our_data_handler(self):
        """A Prepare from the counterparty reaches the plugin's data handler; the Fulfill goes back unchanged."""
        pair = self.connected_pair()
        self._round_trip(pair.peer, pair.plugin, pair.settle, _FULFILL)

    def test_reject_comes_back_unchanged(self):
        """A Reject the counterparty answers is returned as the same bytes (a Reject is a value, not an error)."""
        pair = self.connected_pair()
        self._round_trip(pair.plugin, pair.peer, pair.settle, _REJECT)

    def test_handler_answering_later_with_a_deferred(self):
        """A data handler may answer with a Deferred: send_data waits for it and returns its bytes."""
        pair = self.connected_pair()
        later = Deferred()
        pair.peer.register_data_handler(lambda data: later)
        d = pair.plugin.send_data(_contract_prepare())
        pair.settle()
        assert not d.called
        later.callback(_FULFILL)
        pair.settle()
        assert result_of(d) == _FULFILL

    def test_failing_handler_fails_one_request_and_the_link_stays_up(self):
        """A data handler that raises fails that send_data only; the link stays up and the next request succeeds."""
        pair = self.connected_pair()
        calls = []

        def handler(data):
            calls.append(data)
            if len(calls) == 1:
                raise RuntimeError("handler broke")
            return _FULFILL

        pair.peer.register_data_handler(handler)
        first = pair.plugin.send_data(_contract_prepare())
        pair.settle()
        failure_of(first)
        assert pair.plugin.is_connected() and pair.peer.is_connected()
        second = pair.plugin.send_data(_contract_prepare())
        pair.settle()
        assert result_of(second) == _FULFILL

    def test_cancelled_request_errbacks_and_late_answer_is_dropped(self):
        """Cancelling send_data (the caller's timeout) errbacks with CancelledError; a later answer is dropped."""
        pair = self.connected_pair()
        pending = Deferred()
        pair.peer.register_data_handler(lambda data: pending)
        d = pair.plugin.send_data(_contract_prepare())
        pair.settle()
        d.cancel()
        assert failure_of(d).check(CancelledError)
        if not pending.called:
            pending.callback(_FULFILL)
        pair.settle()
        assert pair.plugin.is_connected()

    def test_second_handler_is_refused_until_deregistered(self):
        """register_data/money_handler refuse a second handler (RuntimeError); after deregistering, one is accepted."""
        plugin = self.make_pair().plugin
        for register, deregister in ((plugin.register_data_handler, plugin.deregister_data_handler),
                                     (plugin.register_money_handler, plugin.deregister_money_handler)):
            register(lambda *args: None)
            try:
                register(lambda *args: None)
            except RuntimeError:
                pass
            else:
                raise AssertionError(f"{register.__name__} accepted a second handler")
            deregister()
            register(lambda *args: None)

    def test_disconnect_tells_both_sides_and_then_send_fails_with_t01(self):
        """disconnect() fires, both sides' listeners hear False, then send_data errbacks with PeerUnreachableError."""
        pair = self.connected_pair()
        heard: dict = {"plugin": [], "peer": []}
        pair.plugin.add_connection_listener(heard["plugin"].append)
        pair.peer.add_connection_listener(heard["peer"].append)
        d = maybeDeferred(pair.plugin.disconnect)
        pair.settle()
        assert result_of(d) is None
        assert not pair.plugin.is_connected() and not pair.peer.is_connected()
        assert heard == {"plugin": [False], "peer": [False]}
        assert failure_of(pair.plugin.send_data(_contract_prepare())).check(PeerUnreachableError)


class SettlingPluginContract(LedgerPluginContract):
    """:class:`LedgerPluginContract` plus settlement, for a plugin whose ``send_money`` moves
    money (a settling plugin, or :class:`MemoryPlugin`). A plugin without a ledger, such as
    plain ``btp``, uses :class:`LedgerPluginContract` only. What it adds:

    * ``send_money(amount)`` fires and the counterparty's money handler is called once with
      exactly ``amount`` (``int``), both ways; with an idempotency key too.
    """

    def _money_round_trip(self, sender, receiver, settle, amount: int, key: Optional[str]) -> None:
        credited: list = []
        receiver.register_money_handler(credited.append)
        d = sender.send_money(amount, key) if key is not None else sender.send_money(amount)
        settle()
        assert result_of(d) is None
        assert credited == [amount] and type(credited[0]) is int

    def test_send_money_reaches_the_counterparty_once(self):
        """send_money(amount) fires and the counterparty's money handler gets exactly that int amount, once."""
        pair = self.connected_pair()
        self._money_round_trip(pair.plugin, pair.peer, pair.settle, 12345, None)

    def test_incoming_money_reaches_our_money_handler(self):
        """Money the counterparty sends (with an idempotency key) reaches the plugin's money handler once, as an int."""
        pair = self.connected_pair()
        self._money_round_trip(pair.peer, pair.plugin, pair.settle, 7, "settlement-1")
