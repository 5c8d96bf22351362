"""The composition root: builds a connector from a validated config, top to bottom.

Read :func:`build_connector` as the one place that says what a running ilptx is made of.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Callable, Optional

from twisted.application.service import MultiService, Service
from twisted.internet.defer import (CancelledError, Deferred, DeferredList, DeferredLock, fail, inlineCallbacks,
                                    maybeDeferred, succeed)
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from ilptx.config import AccountConfig, ConnectorConfig, parse_config
from ilptx.core.accounts import Account, Accounts
from ilptx.core.alerts import Alerts
from ilptx.core.ccp import RouteManager
from ilptx.core.ildcp import AddressInheritance
from ilptx.core.middleware import MiddlewareServices, builtin_factories
from ilptx.core.pipeline import make_middlewares
from ilptx.core.routing import RoutingTable
from ilptx.core.settlement import SettlementManager
from ilptx.core.switch import PacketSwitch
from ilptx.errors import ConfigError
from ilptx.interfaces import IAccountAddressAware, IStore
from ilptx.metrics import PrometheusStats
from ilptx.plugins.base import PluginServices
from ilptx.plugins.manager import ledger_plugin_factories, make_ledger_plugin, make_plugin_manager, middleware_factories

__all__ = ["AccountStartError", "Connector", "OrderedMultiService", "StartupError", "Step", "build_connector",
           "runtime_account_config", "RUNTIME_ACCOUNT_PREFIX", "UNKNOWN_ADDRESS"]

#: The connector's address until a parent tells it (IL-DCP), as in the reference.
UNKNOWN_ADDRESS = "unknown"

_log = Logger(namespace="ilptx.node")
_NOT_STARTED, _STARTING = object(), object()


class StartupError(Exception):
    """A part of the connector could not start; ``str(error)`` is one line,
    ``"<key>: <problem>"``, e.g. ``"storePath: /x is read-only (sqlite: attempt to write a readonly
    database)"`` or ``"accounts.alice: plugin btp failed to start: Couldn't listen on ..."``.

    :param key: the config key whose setting could not be brought up.
    :param problem: what went wrong (the cause's message).
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class OrderedMultiService(MultiService):
    """A :class:`~twisted.application.service.MultiService` whose children start one after
    another, each once the previous one's ``startService`` (which may return a Deferred)
    has fired, and stop one after another in reverse.

    When a child fails to start, no later child starts, the children already started are
    stopped (in reverse), and :meth:`when_started` errbacks with the child's failure: what to
    do then (report it, stop the process) is the parent's decision. ``stopService`` during
    start-up cancels the step under way (:meth:`when_started` errbacks with ``CancelledError``).

    (Twisted's own ``MultiService`` starts children without waiting and stops them all at
    once; a connector must not listen before its store is open, nor close the store while a
    plugin may still write to it.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._starting: Optional[Deferred] = None
        self._outcome = _NOT_STARTED  # then _STARTING, then None (started) or the Failure
        self._observers: list[Deferred] = []
        self._serial = DeferredLock()  # one stop sequence at a time

    def startService(self) -> Deferred:
        """Start the children in order. :returns: :meth:`when_started`."""
        Service.startService(self)
        self._outcome = _STARTING
        self._starting = self._start_children()
        self._starting.addBoth(self._started)
        return self.when_started()

    def when_started(self) -> Optional[Deferred]:
        """:returns: ``None`` before ``startService``; else a new ``Deferred[None]`` (one per
        call, so each caller handles its own) that fires once every child started, or errbacks
        with the failure that stopped start-up."""
        if self._outcome is _NOT_STARTED:
            return None
        if self._outcome is _STARTING:
            d = Deferred()
            self._observers.append(d)
            return d
        return succeed(None) if self._outcome is None else fail(self._outcome)

    @inlineCallbacks
    def _start_children(self):
        for child in list(self):
            if not self.running:
                break
            try:
                yield maybeDeferred(child.startService)
            except BaseException:
                failure = Failure()
                yield self._serial.run(self._stop_children)
                failure.raiseException()

    def _started(self, result) -> None:
        self._outcome = result if isinstance(result, Failure) else None
        observers, self._observers = self._observers, []
        for d in observers:
            if self._outcome is None:
                d.callback(None)
            else:
                d.errback(self._outcome)

    def stopService(self) -> Deferred:
        """Cancel a start-up under way, then stop every running child, last started first.

        :returns: ``Deferred[None]`` once all stopped (a child's failure to stop is logged).
        """
        Service.stopService(self)
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        return self._serial.run(self._stop_children)

    @inlineCallbacks
    def _stop_children(self):
        for child in reversed(list(self)):
            if child.running:
                try:
                    yield maybeDeferred(child.stopService)
                except Exception:
                    _log.failure("stopping {service} failed", service=child.name or child)


class Step(Service):
    """One child of the :class:`Connector`: a named start-up step.

    :param name: the service name (``connector.getServiceNamed(name)``).
    :param key: the config key a failure of ``start`` is reported under, unless it names its
        own (a :class:`StartupError` or :class:`~ilptx.errors.ConfigError`).
    :param start: ``callable() -> Deferred | None``. :param stop: the same, undoing it.
    """

    def __init__(self, name: str, key: str, start: Callable, stop: Callable) -> None:
        self.setName(name)
        self.key = key
        self._start = start
        self._stop = stop

    def startService(self) -> Deferred:
        """Run ``start``; :returns: its Deferred, failing with a :class:`StartupError`."""
        super().startService()
        return maybeDeferred(self._start).addErrback(self._named)

    def _named(self, failure: Failure):
        if failure.check(StartupError, ConfigError):
            raise StartupError(failure.value.key, failure.value.problem)
        if failure.check(CancelledError):
            return failure
        raise StartupError(self.key, failure.getErrorMessage() or failure.type.__name__)

    def stopService(self) -> Deferred:
        """Run ``stop``. :returns: its Deferred."""
        super().stopService()
        return maybeDeferred(self._stop)


class Connector(OrderedMultiService):
    """A running connector: accounts (with plugins), routing table, switch, store, settlement.

    A :class:`OrderedMultiService` of six named steps, started in this order and stopped in
    reverse:

    ``store``
        open the store (bounded: Redis by ``storeConfig.connectTimeout``; an SQLite file that
        cannot be opened or is locked by another process fails at once), recover reservations
        left by a crash, add the accounts stored by the admin API / close it.
    ``rates``
        connect the rate backend (the first fetch of ``ecb``/``http`` is bounded by its
        ``timeout``) / disconnect it.
    ``middlewares``
        start every account's middlewares (timers) / stop them.
    ``settlement``
        resume the settlements left in the outbox / stop retrying.
    ``routing``
        CCP route broadcasting, when enabled / stop it.
    ``plugins``
        connect every ledger plugin and wait until all are up, or ``initialConnectTimeout``
        ms, whichever is first (plugins still dialling keep retrying in the background); with
        no ``ilpAddress``, also the parent's IL-DCP answer / disconnect every plugin.

    A step that fails stops start-up: :attr:`ready` errbacks with a :class:`StartupError`
    naming the key (e.g. ``storePath``, ``accounts.<id>`` for a listener that cannot bind, or
    a client whose credentials the server refuses) and the steps already started are stopped.
    Stopping refuses new Prepares, waits until those in flight are answered (at most
    ``maxHoldTime``), then stops the steps in reverse.
    """

    log = Logger()

    def __init__(self, *, config: ConnectorConfig, accounts: Accounts, routing_table: RoutingTable,
                 switch: PacketSwitch, rate_backend, store, stats, alerts: Alerts,
                 settlement: SettlementManager, reactor, account_builder: Callable) -> None:
        super().__init__()
        self.config = config
        self.accounts = accounts
        self.routing_table = routing_table
        self.switch = switch
        self.rate_backend = rate_backend
        self.store = store
        self.stats = stats
        self.alerts = alerts
        self.settlement = settlement
        self.reactor = reactor
        self._account_builder = account_builder
        #: takes our address from a parent when ``ilpAddress`` is not configured
        self.inheritance: Optional[AddressInheritance] = None
        raw = config.raw  # the key a store that cannot open is reported under
        store_key = ("store" if raw["store"] in ("memory", "memdown") else
                     "storeConfig" if raw["store"] == "redis" and not raw["storePath"] else "storePath")
        for step in (Step("store", store_key, self._open_store, lambda: self.store.close()),
                     Step("rates", "backend", lambda: self.rate_backend.connect(),
                          lambda: self.rate_backend.disconnect()),
                     Step("middlewares", "middlewares", self._start_middlewares, self._stop_middlewares),
                     Step("settlement", "store", lambda: self.settlement.resume(), lambda: self.settlement.stop()),
                     Step("routing", "routeBroadcastEnabled", self._start_routing, self._stop_routing),
                     Step("plugins", "accounts", self._connect_plugins, self._disconnect_plugins)):
            step.setServiceParent(self)

    @property
    def address(self) -> str:
        """The connector's ILP address."""
        return self.switch.address

    @property
    def ready(self) -> Optional[Deferred]:
        """``None`` before ``startService``; then a new ``Deferred[None]`` at each access,
        firing once every step started (the plugins are up, or ``initialConnectTimeout``
        passed), or errbacking with the :class:`StartupError` that stopped start-up."""
        return self.when_started()

    def startService(self) -> Deferred:
        """Start the steps in order. :returns: :attr:`ready`."""
        self.log.info("ilptx connector {address} starting with {count} accounts (store: {store})",
                      address=self.address, count=len(self.accounts), store=getattr(self.store, "name", "?"))
        ready = super().startService()
        self.when_started().addCallbacks(
            lambda _: self.log.info("ilptx connector {address} ready", address=self.address), lambda _: None)
        return ready

    # -- the steps -----------------------------------------------------------------------------

    @inlineCallbacks
    def _open_store(self):
        yield self.store.open()
        recovered = yield self.store.recover()
        for account_id, state in recovered.items():
            self.log.warn("account {account}: reservations left by a previous run were settled; "
                          "balance now {balance}", account=account_id, balance=state.balance)
        # accounts added through the admin API in an earlier run, before any plugin connects
        yield self._load_runtime_accounts()
        balances = yield self.store.all_balances()
        for account in self.accounts:  # the balance gauge starts from the stored balances
            if account.id in balances:
                self.stats.balance(account, balances[account.id].balance)

    def _start_middlewares(self) -> None:
        for pipelines in self.switch.pipelines.values():
            pipelines.start()

    def _stop_middlewares(self) -> None:
        for pipelines in self.switch.pipelines.values():
            pipelines.stop()

    def _start_routing(self) -> None:
        manager = self.switch.route_manager
        if manager is not None:
            if self.switch.address != UNKNOWN_ADDRESS:
                manager.start()
            for account in self.accounts:
                self._track_routes(account)

    def _stop_routing(self) -> None:
        if self.switch.route_manager is not None:
            self.switch.route_manager.stop()

    def _connect_plugins(self) -> Deferred:
        """Connect every plugin (and ask the parent for our address, when we have none).

        :returns: ``Deferred[None]`` once every plugin connected, or after
            ``initialConnectTimeout`` ms, whichever is first, as the reference waits before
            it starts its other services; errbacks with :class:`StartupError`
            (``accounts.<id>``) when a plugin's ``connect`` fails before then, as the
            reference stops when one does. A plugin still connecting after the timeout keeps
            trying; its later failure is only logged.
        """
        _warn_open_listeners(self.accounts, self.log)
        # cancelled when the connector stops during start-up: no timer is left behind
        ready = Deferred(lambda _: timer.cancel() if timer.active() else None)

        def failed(failure: Failure, account: Account):
            if ready.called:  # after initialConnectTimeout: it keeps running without this account
                return self._connect_failed(failure, account)
            raise StartupError(f"accounts.{account.id}", f"plugin {account.plugin_name} failed to start: "
                                                         f"{failure.getErrorMessage()}")

        connecting = [maybeDeferred(account.plugin.connect).addCallbacks(
            self._connected, failed, callbackArgs=(account,), errbackArgs=(account,)) for account in self.accounts]
        if self.config.inherit_address_from is not None:
            # IL-DCP from the parent (RFC 31): ready also waits for our address
            self.inheritance = AddressInheritance(self.accounts.get(self.config.inherit_address_from),
                                                  self.reactor, self._apply_parent_config)
            self.inheritance.start()
            connecting.append(self.inheritance.first)
        timeout_ms = self.config.raw["initialConnectTimeout"]

        def give_up() -> None:
            waiting = [a.id for a in self.accounts if not a.plugin.is_connected()]
            self.log.warn("initialConnectTimeout ({ms} ms): still connecting {accounts}",
                          ms=timeout_ms, accounts=waiting)
            ready.callback(None)

        timer = self.reactor.callLater(timeout_ms / 1000.0, give_up)

        def done(result) -> None:
            if timer.active():
                timer.cancel()
                if isinstance(result, Failure):
                    ready.errback(result.value.subFailure)
                else:
                    ready.callback(None)

        DeferredList(connecting, fireOnOneErrback=True, consumeErrors=True).addBoth(done)
        return ready

    @inlineCallbacks
    def _disconnect_plugins(self) -> Deferred:
        if self.inheritance is not None:
            self.inheritance.stop()
        results = yield DeferredList(
            [maybeDeferred(account.plugin.disconnect) for account in self.accounts], consumeErrors=True)
        for account, (ok, result) in zip(self.accounts, results):  # one result per account
            if not ok:
                self.log.failure("account {account}: plugin failed to disconnect", result, account=account.id)

    def _track_routes(self, account: Account) -> None:
        """Exchange CCP routes with ``account`` while its plugin is connected."""
        manager = self.switch.route_manager

        def changed(connected: bool) -> None:
            if connected:
                manager.add_peer(account)
            else:
                manager.remove_peer(account.id)

        account.plugin.add_connection_listener(changed)
        if account.plugin.is_connected():
            manager.add_peer(account)

    def _connect(self, account: Account) -> Deferred:
        d = maybeDeferred(account.plugin.connect)
        return d.addCallbacks(self._connected, self._connect_failed, callbackArgs=(account,),
                              errbackArgs=(account,))

    def _connected(self, _, account: Account) -> bool:
        self.log.info("account {account} ({relation}) plugin {plugin} started",
                      account=account.id, relation=account.relation, plugin=account.plugin_name)
        return True

    def _connect_failed(self, failure, account: Account) -> bool:
        self.log.failure("account {account}: plugin {plugin} failed to start", failure,
                         account=account.id, plugin=account.plugin_name)
        return False

    # -- our address ---------------------------------------------------------------------------

    def set_address(self, address: str) -> None:
        """Change the connector's ILP address and move every child's route under it."""
        old = self.switch.address
        if address == old:
            return
        for account in self.accounts.by_relation("child"):
            if old != UNKNOWN_ADDRESS:
                self.routing_table.remove(f"{old}.{account.segment}")
            self.routing_table.add(f"{address}.{account.segment}", account.id)
        self.switch.address = address
        for account in self.accounts.by_relation("child"):
            _tell_plugin_address(account, address)
        self.log.info("our ILP address is now {address} (was {old})", address=address, old=old)
        manager = self.switch.route_manager
        if manager is not None and self.running:
            manager.start()  # (re)loads our own and the children's routes under the new address

    def _apply_parent_config(self, config) -> None:
        parent = self.accounts.get(self.config.inherit_address_from)
        if (parent.asset_code, parent.asset_scale) != (config.asset_code, config.asset_scale):
            self.log.warn("account {account}: the parent says {code}/{scale}, the config {ccode}/{cscale}; "
                          "using the parent's", account=parent.id, code=config.asset_code,
                          scale=config.asset_scale, ccode=parent.asset_code, cscale=parent.asset_scale)
            parent.asset_code, parent.asset_scale = config.asset_code, config.asset_scale
        self.set_address(config.client_address)

    # -- accounts at run time (admin API) ----------------------------------------------------

    def add_account(self, account_config: AccountConfig) -> Deferred:
        """Add an account while running: plugin, pipelines, child route; start its plugin and,
        only once it has started, remember the account in the store (``account:<id>``, see
        :meth:`_load_runtime_accounts`), so that what is stored starts again at the next run.

        A plugin whose ``connect()`` fails (a listener on a host it cannot bind, a port in use,
        a server that refuses us) or has not fired within ``initialConnectTimeout`` ms is
        disconnected and the account removed again; nothing is stored. Before
        :meth:`startService` the account is only built and stored (start-up connects it).

        :raises ConfigError: the id is taken, the plugin is unknown or refuses its options.
        :returns: ``Deferred[Account]``; once the account is gone again it fails with
            :class:`AccountStartError` (``accounts.<id>.options: the btp plugin did not start:
            Couldn't listen on 127.0.0.1:7768: [Errno 98] Address already in use.``), or with
            the store's failure to write.
        """
        if account_config.id in self.accounts:
            raise ConfigError(f"accounts.{account_config.id}", "an account with this id exists")
        account = self._account_builder(account_config)
        remember = json.dumps(_thaw(account_config.settings))
        if not self.running:
            return self.store.put(RUNTIME_ACCOUNT_PREFIX + account.id, remember).addCallback(lambda _: account)
        self.switch.pipelines[account.id].start()
        timeout_ms = self.config.raw["initialConnectTimeout"]
        d = maybeDeferred(account.plugin.connect).addTimeout(timeout_ms / 1000.0, self.reactor)

        def undo(failure):  # remove the account again, then fail with ``failure``
            removed = self.remove_account(account.id)
            removed.addErrback(lambda f: self.log.failure("account {account}: plugin failed to disconnect", f,
                                                          account=account.id))
            return removed.addCallback(lambda _: failure)

        def started(_):
            self._connected(None, account)
            if self.switch.route_manager is not None:  # exchange CCP routes as start-up's accounts do
                self._track_routes(account)
            stored = self.store.put(RUNTIME_ACCOUNT_PREFIX + account.id, remember)
            return stored.addCallbacks(lambda _: account, undo)

        def not_started(failure):
            cause = (f"not connected within initialConnectTimeout ({timeout_ms} ms)"
                     if failure.check(DeferredTimeoutError) else failure.getErrorMessage())
            error = AccountStartError(f"accounts.{account.id}.options",
                                      f"the {account.plugin_name} plugin did not start: {cause}")
            self.log.error("{error}; account removed", error=error)
            return undo(Failure(error))

        return d.addCallbacks(started, not_started)

    def remove_account(self, account_id: str) -> Deferred:
        """Remove an account while running: routes, pipelines, then disconnect its plugin and
        forget it in the store (its balance stays there).

        :raises KeyError: no such account. :returns: ``Deferred[None]``.
        """
        account = self.accounts.get(account_id)
        for prefix, hop in list(self.routing_table):
            if hop == account_id:
                self.routing_table.remove(prefix)
        self.switch.detach(account_id)
        self.accounts.remove(account_id)
        if self.switch.route_manager is not None:
            self.switch.route_manager.remove_peer(account_id)
        forget = RUNTIME_ACCOUNT_PREFIX + account_id
        # forgotten even when the plugin fails to disconnect; that failure is still returned
        return maybeDeferred(account.plugin.disconnect).addBoth(
            lambda result: self.store.delete(forget).addCallback(lambda _: result))

    @inlineCallbacks
    def _load_runtime_accounts(self):
        """Add the accounts stored by :meth:`add_account` in an earlier run (not yet connected).

        One whose id the config file now defines is skipped (the file wins); one that no
        longer validates (e.g. its plugin was uninstalled) is skipped with an error logged.
        """
        for key in sorted((yield self.store.keys(RUNTIME_ACCOUNT_PREFIX))):
            account_id = key[len(RUNTIME_ACCOUNT_PREFIX):]
            if account_id in self.accounts:
                self.log.warn("account {account}: the config file defines it; ignoring the one stored "
                              "by the admin API", account=account_id)
                continue
            try:
                settings = json.loads((yield self.store.get(key)))
                self._account_builder(runtime_account_config(account_id, settings, self.address))
            except (ConfigError, ValueError, TypeError) as exc:
                self.log.error("account {account} stored by the admin API not added: {error}",
                               account=account_id, error=exc)
            else:
                self.log.info("account {account} added (stored by the admin API)", account=account_id)

    # -- stopping ------------------------------------------------------------------------------

    @inlineCallbacks
    def stopService(self):
        """Refuse new Prepares, answer those in flight, then stop the steps in reverse
        (plugins, routing, settlement, middlewares, rates, store).

        :returns: ``Deferred[None]`` (twistd waits for it before exiting).
        """
        Service.stopService(self)  # running = 0 at once: runtime accounts added now do not connect
        in_flight = self.switch.in_flight()
        if in_flight:
            self.log.info("stopping: waiting for {count} Prepares in flight", count=in_flight)
        yield self.switch.stop()
        yield super().stopService()
        self.log.info("ilptx connector {address} stopped", address=self.address)


#: store key prefix of accounts added at run time: ``account:<id>`` → the account's settings as JSON
RUNTIME_ACCOUNT_PREFIX = "account:"


class AccountStartError(ConfigError):
    """An account added at run time whose plugin did not start (:meth:`Connector.add_account`
    removed it again): ``"accounts.<id>.options: the <plugin> plugin did not start: <cause>"``."""


def runtime_account_config(account_id: str, settings, ilp_address: str) -> AccountConfig:
    """Validate one account's settings (an ``accounts.<id>`` entry) as the config file's are.

    A listener of an account added at run time binds the loopback interface unless it names
    its ``host``: ``options.listener.host`` defaults to ``127.0.0.1`` (for ``mini-accounts``,
    which listens without a ``listener`` object too, one is added), where the config file's
    default is every interface, as in the reference.

    :raises ConfigError: e.g. ``accounts.carol.assetScale: must be an integer 0..255``.
    """
    if isinstance(settings, dict) and isinstance(settings.get("options", {}), dict):
        options = dict(settings.get("options", {}))
        listener = options.get("listener")
        if listener is None and settings.get("plugin") in ("mini-accounts", "ilp-plugin-mini-accounts"):
            listener = {}
        if isinstance(listener, dict) and "host" not in listener:
            options["listener"] = {**listener, "host": "127.0.0.1"}
            settings = {**settings, "options": options}
    if ilp_address == UNKNOWN_ADDRESS:  # not yet told by the parent: any address validates the account
        ilp_address = "test.unknown"
    return parse_config({"ilpAddress": ilp_address, "accounts": {account_id: settings}}, env={}).accounts[0]


def _make_rate_backend(config: ConnectorConfig, reactor):
    # config validation admits only known backends; ecb/http fetch on the reactor, never
    # blocking start-up (ilptx.rates.http)
    from ilptx.rates import make_rate_backend

    return make_rate_backend(config, reactor)


def _make_store(config: ConnectorConfig, reactor):
    from ilptx.stores import make_store

    return make_store(config.raw["store"], config.raw["storePath"], _thaw(config.raw["storeConfig"]), reactor)


def build_connector(config: ConnectorConfig, *, reactor, plugin_factories: Optional[dict[str, Callable]] = None,
                    store=None, stats=None, custom_middleware_factories: Optional[dict[str, Callable]] = None
                    ) -> Connector:
    """Assemble a connector.

    :param config: validated config (:func:`ilptx.config.load_config_file`).
    :param reactor: provides ``IReactorTime`` and the network interfaces the plugins use.
    :param plugin_factories: name → ledger plugin factory; default: everything the pluggy
        hooks declare (built-ins and the ``ilptx`` entry points).
    :param store: an ``IStore``; default: the one ``store``/``storePath``/``storeConfig`` name.
    :param stats: an ``IStats``; default: Prometheus metrics (:mod:`ilptx.metrics`).
    :param custom_middleware_factories: type → middleware factory; default: the
        ``ilptx_middlewares`` hooks.
    :raises ConfigError: an account names a plugin that is not installed, a custom
        middleware names an unknown type, or a plugin's options are invalid.
    """
    # 1. Find the ledger plugins and middleware types: built-ins and installed
    #    distributions, through the same hooks.
    if plugin_factories is None or custom_middleware_factories is None:
        pm = make_plugin_manager()
        if plugin_factories is None:
            plugin_factories = ledger_plugin_factories(pm)
        if custom_middleware_factories is None:
            custom_middleware_factories = middleware_factories(pm)
    custom = []
    for name, entry in config.raw["middlewares"].items():
        factory = custom_middleware_factories.get(entry["type"])
        if factory is None:
            raise ConfigError(f"middlewares.{name}.type",
                              f"unknown middleware type {entry['type']!r}; installed: "
                              f"{', '.join(sorted(custom_middleware_factories)) or 'none'}")
        custom.append((name, factory, _thaw(entry.get("options", {}))))

    # 2. State and reporting: the store (balances, outbox), stats, alerts.
    if store is None:
        store = _make_store(config, reactor)
    verifyObject(IStore, store)
    stats = stats if stats is not None else PrometheusStats(default_metrics=config.raw["collectDefaultMetrics"])
    alerts = Alerts(reactor)

    # 3. The switch, with an empty routing table and the rate backend.
    table = RoutingTable()
    accounts = Accounts()
    rate_backend = _make_rate_backend(config, reactor)
    switch = PacketSwitch(
        address=config.ilp_address or UNKNOWN_ADDRESS, accounts=accounts, routing_table=table,
        rate_backend=rate_backend,
        clock=reactor, min_message_window_ms=config.min_message_window, max_hold_time_ms=config.max_hold_time,
        reflect_payments=config.reflect_payments,
    )

    # 4. Settlement: the outbox manager sends through each account's outgoing money pipeline.
    settlement = SettlementManager(store, reactor, switch.send_money,
                                   lambda account_id: accounts.get(account_id) if account_id in accounts else None,
                                   stats)
    services = MiddlewareServices(clock=reactor, address=lambda: switch.address, store=store, stats=stats,
                                  alerts=alerts, settlement=settlement)
    builtins = builtin_factories()
    log = Logger(namespace="ilptx.node")

    def add_account(ac: AccountConfig) -> Account:
        """Plugin (unknown name stops start-up), middlewares, pipelines, child route."""
        factory = plugin_factories.get(ac.plugin)
        if factory is None:
            raise ConfigError(f"accounts.{ac.id}.plugin",
                              f"unknown plugin {ac.plugin!r}; installed: {', '.join(sorted(plugin_factories))}")
        account = Account(ac.id, ac.relation, ac.asset_code, ac.asset_scale, plugin_name=ac.plugin,
                          ilp_address_segment=ac.ilp_address_segment, options=_thaw(ac.options),
                          settings=_thaw(ac.settings))
        # one services object for every plugin; the result is verified (ConfigError if not a plugin)
        plugin = make_ledger_plugin(ac.plugin, factory, _thaw(ac.options), account_id=ac.id, services=PluginServices(
            reactor=reactor, log=Logger(namespace=f"ilptx.account.{ac.id}"), store=store))
        account.plugin = plugin
        # Middleware order decides which error wins (see ilptx.core.middleware).
        middlewares = make_middlewares(account, builtins, config.disable_middleware, custom, services)
        switch.attach(account, middlewares)
        accounts.add(account)
        plugin.register_data_handler(switch.data_handler(account))
        plugin.register_money_handler(switch.money_handler(account))
        if account.relation == "child" and switch.address != UNKNOWN_ADDRESS:
            table.add(f"{switch.address}.{account.segment}", account.id)
            _tell_plugin_address(account, switch.address)
        if account.settings.get("balance") is None:
            log.warn("account {account} has no balance settings: it can spend unlimited funds", account=ac.id)
        return account

    # 5. Accounts, then static routes (which win over local routes for the same prefix, as
    #    in the reference), then the default route.
    for ac in config.accounts:
        add_account(ac)
    for prefix, peer_id in config.routes:
        table.add(prefix, peer_id)
    default = config.default_route
    if default == "auto":
        parents = accounts.by_relation("parent")
        default = parents[0].id if parents else ""
    if default:
        table.set_default(default)

    # 6. CCP route broadcasting: learn and announce routes with peers (off: static routes only).
    if config.raw["routeBroadcastEnabled"]:
        switch.route_manager = RouteManager(
            accounts, table, lambda: switch.address, reactor, configured=config.routes,
            routing_secret=config.raw["routingSecret"],
            global_prefix="g" if config.raw["env"] == "production" else "test",
            broadcast_interval_ms=config.raw["routeBroadcastInterval"], route_expiry_ms=config.raw["routeExpiry"],
            cleanup_interval_ms=config.raw["routeCleanupInterval"])

    return Connector(config=config, accounts=accounts, routing_table=table, switch=switch,
                     rate_backend=rate_backend, store=store, stats=stats, alerts=alerts, settlement=settlement,
                     reactor=reactor, account_builder=add_account)


#: plugin names that serve their clients on one listener (``listener`` or the reference's ``port``)
_MINI_ACCOUNTS = ("mini-accounts", "ilp-plugin-mini-accounts")


def _warn_open_listeners(accounts: Accounts, log: Logger) -> None:
    """Warn about each BTP listener that will accept plain ``ws`` on every interface: one with
    no ``listener.host`` (the reference binds every interface then, and so do we) and no
    ``listener.cert``."""
    for account in accounts:
        listener = account.options.get("listener")
        if not isinstance(listener, Mapping):
            if account.plugin_name not in _MINI_ACCOUNTS or "server" in account.options:
                continue
            listener = {}
        if not listener.get("host") and not listener.get("cert"):
            log.warn("account {account}: its BTP listener has no host, so it accepts plain ws (no TLS) on "
                     "every interface; set options.listener.host (e.g. 127.0.0.1) or listener.cert and key",
                     account=account.id)


def _tell_plugin_address(account: Account, connector_address: str) -> None:
    """A plugin that declares :class:`~ilptx.interfaces.IAccountAddressAware` (one that serves
    many clients under its account, e.g. mini-accounts) learns the account's address and asset."""
    if IAccountAddressAware.providedBy(account.plugin):
        account.plugin.set_account_address(f"{connector_address}.{account.segment}", account.asset_code,
                                           account.asset_scale)


def _thaw(value):
    """Read-only config mappings → plain dicts/lists for plugin constructors."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
