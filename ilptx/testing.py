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

Settling plugins without a chain (:mod:`ilptx.settlement`)

* :class:`FakeLedger` -- an honest in-memory ledger: Ed25519 accounts, payment channels whose
  claims are checked (signature, deposit, cumulative value), plain payments idempotent by id.
* :func:`linked_settling_plugins` -- two :class:`~ilptx.settlement.plugin.SettlingPlugin` plugins
  over BTP on a :class:`FakeNetwork`, each on its own memory store.
* :class:`SettlingModuleContract` -- the tests every settlement module must pass.

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
           "SettlingPluginContract", "result_of", "failure_of", "FakeLedger", "FakeChannel", "LedgerError",
           "linked_settling_plugins", "SettlingModuleContract", "SETTLING_LISTENER", "SETTLING_DIALLER",
           "SETTLING_SERVER", "SERVER_FULFILLMENT", "server_prepare", "SettlingServerSetup", "linked_settling_server",
           "SettlingServerModuleContract"]


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


# -- settling plugins without a chain ------------------------------------------------------------

class LedgerError(Exception):
    """:class:`FakeLedger` refused an action (bad signature, funds, channel); nothing moved."""


@dataclass
class FakeChannel:
    """A unidirectional payment channel on a :class:`FakeLedger` (amounts in ledger units).

    :ivar id: hex ``str``. :ivar sender: / :ivar receiver: addresses (hex Ed25519 public keys).
    :ivar amount: ``int`` deposited in all. :ivar claimed: ``int`` paid out to the receiver so far.
    :ivar closed: no more claims or deposits; the rest went back to the sender.
    """

    id: str
    sender: str
    receiver: str
    amount: int
    claimed: int = 0
    closed: bool = False


class FakeLedger:
    """An honest in-memory ledger for testing settlement modules without a chain.

    Accounts are Ed25519 keys (``cryptography``); an address is the hex of the raw public key.
    Balances move only on valid actions, each authorised by the acting account's private key:

    * :meth:`open_channel` / :meth:`deposit`: the sender's balance → the channel;
    * :meth:`claim`: the receiver presents a claim ``(channel, cumulative value)`` signed by the
      sender (:meth:`claim_digest`, Ed25519); the channel pays ``value − claimed`` to the
      receiver. A value above the deposit, not above what was claimed, or a signature that
      does not verify against the channel's sender is refused with :class:`LedgerError`;
    * :meth:`close`: the sender takes back what was not claimed;
    * :meth:`transfer`: a plain payment, idempotent by ``payment_id`` (the same id again
      returns the first transaction and moves nothing).

    :ivar balances: address → ``int`` (ledger units). :ivar channels: id → :class:`FakeChannel`.
    :ivar transactions: ``list`` of ``(kind, details)`` of every applied action, in order.
    """

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.transactions: list[tuple[str, dict]] = []
        self._payments: dict[str, str] = {}

    @staticmethod
    def new_key():
        """:returns: a new ``cryptography`` ``Ed25519PrivateKey``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.generate()

    @staticmethod
    def address_of(key) -> str:
        """:returns: the address (hex raw public key) of a private or public Ed25519 key."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = key.public_key() if hasattr(key, "public_key") else key
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    @staticmethod
    def claim_digest(channel_id: str, value: int) -> bytes:
        """:returns: the bytes a claim signs: ``b"fake-ledger-claim\\0"`` ‖ channel id ‖ u256BE(value)."""
        return b"fake-ledger-claim\0" + bytes.fromhex(channel_id) + value.to_bytes(32, "big")

    @classmethod
    def sign_claim(cls, key, channel_id: str, value: int) -> bytes:
        """:returns: the 64-byte Ed25519 signature of :meth:`claim_digest` by ``key``."""
        return key.sign(cls.claim_digest(channel_id, value))

    def verify_claim(self, channel_id: str, value: int, signature: bytes) -> bool:
        """:returns: whether ``signature`` is the channel's sender's over ``(channel_id, value)``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        channel = self.channels.get(channel_id)
        if channel is None:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(channel.sender)).verify(
                signature, self.claim_digest(channel_id, value))
        except (InvalidSignature, ValueError):
            return False
        return True

    def fund(self, address: str, amount: int) -> None:
        """Give ``address`` ``amount`` ledger units (the test's faucet)."""
        self.balances[address] = self.balances.get(address, 0) + amount

    def balance(self, address: str) -> int:
        """:returns: ``int``, the address's balance (0 if unknown)."""
        return self.balances.get(address, 0)

    def channel(self, channel_id: str) -> Optional[FakeChannel]:
        """:returns: a copy of the channel, or ``None``."""
        channel = self.channels.get(channel_id)
        return None if channel is None else FakeChannel(**vars(channel))

    def _debit(self, address: str, amount: int) -> None:
        if type(amount) is not int or amount <= 0:
            raise LedgerError(f"amount must be an int > 0, not {amount!r}")
        if self.balance(address) < amount:
            raise LedgerError(f"{address[:8]}… has {self.balance(address)}, needs {amount}")
        self.balances[address] -= amount

    def _open(self, channel_id: str, sender: str) -> FakeChannel:
        channel = self.channels.get(channel_id)
        if channel is None or channel.closed:
            raise LedgerError(f"no open channel {channel_id}")
        if channel.sender != sender:
            raise LedgerError(f"channel {channel_id} is not {sender[:8]}…'s")
        return channel

    def open_channel(self, sender_key, receiver: str, amount: int) -> str:
        """Open a channel from ``sender_key``'s account to ``receiver`` holding ``amount``.
        :returns: the channel id. :raises LedgerError: insufficient funds, bad amount."""
        sender = self.address_of(sender_key)
        self._debit(sender, amount)
        channel_id = hashlib.sha256(f"{sender}:{receiver}:{len(self.channels)}".encode()).hexdigest()
        self.channels[channel_id] = FakeChannel(channel_id, sender, receiver, amount)
        self.transactions.append(("open", {"channel": channel_id, "amount": amount}))
        return channel_id

    def deposit(self, sender_key, channel_id: str, amount: int) -> None:
        """Add ``amount`` to the sender's open channel. :raises LedgerError: as :meth:`open_channel`."""
        channel = self._open(channel_id, self.address_of(sender_key))
        self._debit(channel.sender, amount)
        channel.amount += amount
        self.transactions.append(("deposit", {"channel": channel_id, "amount": amount}))

    def claim(self, receiver_key, channel_id: str, value: int, signature: bytes) -> int:
        """The receiver cashes a claim. :returns: ``int`` paid now (``value − claimed``).
        :raises LedgerError: not the receiver, a bad signature, ``value`` above the deposit or
            not above what was claimed."""
        channel = self.channels.get(channel_id)
        receiver = self.address_of(receiver_key)
        if channel is None or channel.closed or channel.receiver != receiver:
            raise LedgerError(f"no open channel {channel_id} to {receiver[:8]}…")
        if not self.verify_claim(channel_id, value, signature):
            raise LedgerError(f"claim on {channel_id}: signature is not the sender's")
        if value > channel.amount or value <= channel.claimed:
            raise LedgerError(f"claim of {value} on {channel_id}: not in ({channel.claimed}, {channel.amount}]")
        paid, channel.claimed = value - channel.claimed, value
        self.balances[receiver] = self.balance(receiver) + paid
        self.transactions.append(("claim", {"channel": channel_id, "value": value, "paid": paid}))
        return paid

    def close(self, sender_key, channel_id: str) -> int:
        """The sender closes its channel. :returns: ``int`` refunded (deposit − claimed)."""
        channel = self._open(channel_id, self.address_of(sender_key))
        channel.closed = True
        refund = channel.amount - channel.claimed
        self.balances[channel.sender] = self.balance(channel.sender) + refund
        self.transactions.append(("close", {"channel": channel_id, "refund": refund}))
        return refund

    def transfer(self, sender_key, receiver: str, amount: int, payment_id: str) -> str:
        """Pay ``amount`` to ``receiver`` once per ``payment_id``. :returns: the tx id (hex);
        the same id again returns the first tx id and moves nothing."""
        if payment_id in self._payments:
            return self._payments[payment_id]
        sender = self.address_of(sender_key)
        self._debit(sender, amount)
        self.balances[receiver] = self.balance(receiver) + amount
        tx = self._payments[payment_id] = hashlib.sha256(f"tx:{payment_id}".encode()).hexdigest()
        self.transactions.append(("transfer", {"tx": tx, "from": sender, "to": receiver, "amount": amount}))
        return tx

    def transfers_to(self, receiver: str) -> list[dict]:
        """:returns: the applied :meth:`transfer`\\ s to ``receiver`` (``{"tx", "from", "to", "amount"}``)."""
        return [details for kind, details in self.transactions if kind == "transfer" and details["to"] == receiver]


#: BTP options of the two sides :func:`linked_settling_plugins` links (listener / dialler).
SETTLING_LISTENER = {"listener": {"port": 7788, "host": "127.0.0.1", "secret": "settle"}}
SETTLING_DIALLER = {"server": "btp+ws://peer:settle@localhost:7788/"}


def linked_settling_plugins(factory: Callable, peer_factory: Optional[Callable] = None, *,
                            options: Optional[dict] = None, peer_options: Optional[dict] = None,
                            network: Optional[FakeNetwork] = None, store=None, peer_store=None,
                            account_id: str = "under-test", peer_account_id: str = "counterparty") -> LinkedPair:
    """Two settling plugins (:class:`ilptx.settlement.plugin.SettlingPlugin`) over BTP on a
    :class:`FakeNetwork`: ``plugin`` listens (:data:`SETTLING_LISTENER`), ``peer`` dials it
    (:data:`SETTLING_DIALLER`); not yet connected.

    :param factory: / :param peer_factory: ledger plugin factories (e.g.
        :func:`~ilptx.settlement.plugin.settling_plugin_factory`; ``peer_factory`` defaults to ``factory``).
    :param options: / :param peer_options: the module's options, merged over the BTP ones.
    :param store: / :param peer_store: each side's ``IStore`` (default a new ``MemoryStore``);
        pass the same store to a new plugin to "restart" it.
    :returns: :class:`LinkedPair` ``(plugin, peer, network.settle)``; the network is
        ``pair.network``.
    """
    from ilptx.stores.memory import MemoryStore

    net = network if network is not None else FakeNetwork()
    plugin = factory({**SETTLING_LISTENER, **(options or {})}, account_id=account_id,
                     services=plugin_services(net.reactor, account_id=account_id,
                                              store=store if store is not None else MemoryStore()))
    peer = (peer_factory or factory)({**SETTLING_DIALLER, **(peer_options or {})}, account_id=peer_account_id,
                                     services=plugin_services(net.reactor, account_id=peer_account_id,
                                                              store=peer_store if peer_store is not None
                                                              else MemoryStore()))
    pair = LinkedPair(plugin, peer, net.settle)
    pair.network = net  # type: ignore[attr-defined]
    return pair


class SettlingModuleContract(SettlingPluginContract):
    """The contract of a settlement module (:class:`~ilptx.settlement.interfaces.ISettlementModule`)
    inside the framework's plugin, as pytest tests; no chain needed (use :class:`FakeLedger`).

    Subclass it and define :meth:`make_factories` (a fresh ledger per call). Adds to
    :class:`SettlingPluginContract`:

    * ``send_money`` twice with one idempotency key pays once;
    * every sub-protocol MESSAGE the payer sent, replayed, credits nothing more;
    * a payout queued while the peer is away, then the payer "restarted" (a new plugin on the
      same store), is paid exactly once when the peer is back;
    * money paid in both directions is credited exactly (``int``, no loss, nothing doubled).
    """

    def make_factories(self) -> tuple[Callable, Callable, dict, dict]:
        """:returns: ``(factory, peer_factory, options, peer_options)`` for
        :func:`linked_settling_plugins`; override this."""
        raise NotImplementedError("define make_factories() in your contract test class")

    def make_pair(self) -> LinkedPair:
        from ilptx.stores.memory import MemoryStore

        factory, peer_factory, options, peer_options = self.make_factories()
        self._factories = (factory, options)
        self.store = MemoryStore()
        pair = linked_settling_plugins(factory, peer_factory, options=options, peer_options=peer_options,
                                       store=self.store)
        self.sent: list = []
        call = pair.plugin.settlement._call_peer

        def recording(entries):
            self.sent.append(tuple(entries))
            return call(entries)

        pair.plugin.settlement._call_peer = recording
        return pair

    def test_one_key_is_paid_once(self):
        """send_money twice with the same idempotency key: the counterparty is credited once."""
        pair = self.connected_pair()
        credited: list = []
        pair.peer.register_money_handler(credited.append)
        first = pair.plugin.send_money(500, "once")
        pair.settle()
        second = pair.plugin.send_money(500, "once")
        pair.settle()
        assert (result_of(first), result_of(second)) == (None, None)
        assert credited == [500]

    def test_replayed_messages_credit_nothing(self):
        """Every sub-protocol MESSAGE the payer sent, sent again, credits the counterparty nothing more."""
        pair = self.connected_pair()
        credited: list = []
        pair.peer.register_money_handler(credited.append)
        for amount in (300, 200):
            d = pair.plugin.send_money(amount)
            pair.settle()
            result_of(d)
        assert credited == [300, 200]
        for entries in list(self.sent):
            d = pair.plugin.settlement._call_peer(entries)
            pair.settle()
            d.addErrback(lambda f: None)
        assert credited == [300, 200]

    def test_restarted_payer_pays_a_queued_payout_once(self):
        """A payout queued while the peer is away, payer restarted on the same store: paid once when it is back."""
        pair = self.connected_pair()
        credited: list = []
        pair.peer.register_money_handler(credited.append)
        gone = pair.peer.disconnect()
        pair.settle()
        result_of(gone)
        queued = pair.plugin.send_money(700, "queued")
        pair.settle()
        failure_of(queued)
        stopped = pair.plugin.disconnect()
        pair.settle()
        result_of(stopped)
        factory, options = self._factories
        again = factory({**SETTLING_LISTENER, **(options or {})}, account_id=pair.plugin.account_id,
                        services=plugin_services(pair.network.reactor, account_id=pair.plugin.account_id,
                                                 store=self.store))
        connecting = [maybeDeferred(again.connect), maybeDeferred(pair.peer.connect)]
        pair.settle()
        for d in connecting:
            result_of(d)
        pair.settle(60)
        assert credited == [700]
        retry = again.send_money(700, "queued")
        pair.settle()
        assert result_of(retry) is None and credited == [700]


# -- the server role (one settlement account per client) ------------------------------------------

#: The server side of :func:`linked_settling_server`: mini-accounts listening, ``role: server``,
#: its address given (no IL-DCP from a connector).
SETTLING_SERVER = {"role": "server", "listener": {"port": 7799, "host": "127.0.0.1"},
                   "debugHostIldcpInfo": {"clientAddress": "test.server", "assetScale": 9, "assetCode": "XYZ"}}
#: the fulfillment every Prepare of :func:`server_prepare` is for
SERVER_FULFILLMENT = b"\x22" * 32


def server_prepare(destination: str, amount: int) -> bytes:
    """:returns: an ILP Prepare of ``amount`` to ``destination`` for :data:`SERVER_FULFILLMENT`."""
    return encode_packet(Prepare(amount, timestamp_at(2_000_000_000, 30_000), condition_for(SERVER_FULFILLMENT),
                                 destination, b""))


@dataclass
class SettlingServerSetup:
    """What :func:`linked_settling_server` made.

    :ivar server: the :class:`~ilptx.settlement.server.SettlingServerPlugin` (not yet connected).
    :ivar clients: client name → its :class:`~ilptx.settlement.plugin.SettlingPlugin` (client role,
        dialling the server as ``btp+ws://<name>:<name>-token@localhost:7799/``).
    :ivar network: the :class:`FakeNetwork`; :ivar store: the server's store.
    """

    server: Any
    clients: dict
    network: "FakeNetwork"
    store: Any
    factory: Callable
    options: dict

    def settle(self, seconds: float = 0.0) -> None:
        """Move every byte (and the clock by ``seconds``)."""
        self.network.settle(seconds)

    def connect(self, *plugins) -> None:
        """Connect ``plugins`` (default: the server, then every client) and settle."""
        plugins = plugins or (self.server, *self.clients.values())
        connecting = [maybeDeferred(p.connect) for p in plugins]
        self.settle()
        for d in connecting:
            result_of(d)

    def restart_server(self) -> Any:
        """Disconnect the server and start a new one on the same store (a process restart);
        the clients dial again (their BTP reconnect) and everything settles.
        :returns: the new server."""
        result_of(_settled(self, self.server.disconnect()))
        self.server = self.factory(dict(self.options), account_id=self.server.account_id,
                                   services=plugin_services(self.network.reactor, account_id=self.server.account_id,
                                                            store=self.store))
        return self.server

    def pay_server(self, client: str, amount: int) -> bytes:
        """Client ``client`` sends the server a Prepare of ``amount`` (the server's data handler
        answers). :returns: the ILP reply bytes."""
        return result_of(_settled(self, self.clients[client].send_data(server_prepare("test.server.x", amount))))

    def pay_client(self, client: str, amount: int) -> Deferred:
        """The server sends ``client`` a Prepare of ``amount`` (its data handler answers).
        :returns: the Deferred of the reply, after settling."""
        return _settled(self, self.server.send_data(server_prepare(f"test.server.{client}.x", amount)))


def _settled(setup: SettlingServerSetup, d: Deferred) -> Deferred:
    setup.settle()
    return d


def linked_settling_server(factory: Callable, client_factory: Optional[Callable] = None, *,
                           options: Optional[dict] = None, client_options: Optional[dict] = None,
                           network: Optional["FakeNetwork"] = None, store=None,
                           account_id: str = "clients") -> SettlingServerSetup:
    """A settling plugin in the server role and its clients, on a :class:`FakeNetwork`; not yet
    connected (:meth:`SettlingServerSetup.connect`).

    :param factory: the ledger plugin factory (e.g. :func:`~ilptx.settlement.plugin.settling_plugin_factory`);
        the server gets ``{**SETTLING_SERVER, **options}``.
    :param client_factory: the clients' factory (default ``factory``).
    :param client_options: client name → the module's options for it (each merged over the
        BTP client options).
    :param store: the server's ``IStore`` (default a new ``MemoryStore``; each client has its own).
    """
    from ilptx.stores.memory import MemoryStore

    net = network if network is not None else FakeNetwork()
    store = store if store is not None else MemoryStore()
    server_options = {**SETTLING_SERVER, **(options or {})}
    server = factory(dict(server_options), account_id=account_id,
                     services=plugin_services(net.reactor, account_id=account_id, store=store))
    port = server_options["listener"]["port"]
    clients = {}
    for name, opts in (client_options or {}).items():
        clients[name] = (client_factory or factory)(
            {**opts, "role": "client", "server": f"btp+ws://{name}:{name}-token@localhost:{port}/"},
            account_id=name, services=plugin_services(net.reactor, account_id=name, store=MemoryStore()))
    return SettlingServerSetup(server, clients, net, store, factory, server_options)


class SettlingServerModuleContract:
    """The contract of a settlement module in the *server* role
    (:class:`~ilptx.settlement.server.SettlingServerPlugin`), as pytest tests; no chain needed.

    Subclass it and define :meth:`make_setup`: a :func:`linked_settling_server` with (at least)
    two clients ``"alice"`` and ``"bob"``. It checks:

    * a client's payment (its ``send_money``) reaches the server's money handler once, and lowers
      that client's balance only;
    * a Fulfill from a client makes the server pay that client exactly its amount, once;
    * every sub-protocol MESSAGE a client sent, replayed, credits nothing more.
    """

    def make_setup(self) -> SettlingServerSetup:
        """:returns: a new :func:`linked_settling_server` with clients alice and bob; override this."""
        raise NotImplementedError("define make_setup() in your contract test class")

    def connected_setup(self) -> SettlingServerSetup:
        setup = self.make_setup()
        self.credited: list = []
        setup.server.register_money_handler(self.credited.append)
        setup.server.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.server"))
        for client in setup.clients.values():
            client.register_data_handler(fulfilling_handler([SERVER_FULFILLMENT], "test.client"))
        setup.connect()
        setup.settle(1)
        return setup

    def _balance(self, setup: SettlingServerSetup, client: str) -> int:
        return result_of(setup.store.get_balance(setup.server.client_account_id(client))).balance

    def test_client_payment_is_credited_once_to_that_client(self):
        """alice's send_money reaches the server's money handler once and lowers alice's balance, not bob's."""
        setup = self.connected_setup()
        d = setup.clients["alice"].send_money(1000)
        setup.settle()
        assert result_of(d) is None
        assert self.credited == [1000]
        assert (self._balance(setup, "alice"), self._balance(setup, "bob")) == (-1000, 0)

    def test_fulfill_from_a_client_pays_that_client_once(self):
        """A Fulfill from bob for 300 makes the server pay bob 300, once; alice gets nothing."""
        setup = self.connected_setup()
        got = {name: [] for name in setup.clients}
        for name, client in setup.clients.items():
            client.register_money_handler(got[name].append)
        reply = result_of(setup.pay_client("bob", 300))
        setup.settle(1)
        assert type(decode_response(reply)) is Fulfill
        assert got == {**{name: [] for name in setup.clients}, "bob": [300]}

    def test_replayed_client_messages_credit_nothing(self):
        """Every sub-protocol MESSAGE alice sent the server, sent again, credits nothing more."""
        setup = self.connected_setup()
        alice = setup.clients["alice"]
        sent: list = []
        call = alice.settlement._call_peer
        alice.settlement._call_peer = lambda entries: (sent.append(tuple(entries)), call(entries))[1]
        for amount in (400, 100):
            d = alice.send_money(amount)
            setup.settle()
            result_of(d)
        assert self.credited == [400, 100]
        for entries in sent:
            call(entries).addErrback(lambda f: None)
            setup.settle()
        assert self.credited == [400, 100] and self._balance(setup, "alice") == -500
