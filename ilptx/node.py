"""The composition root: builds a connector from a validated config, top to bottom.

Read :func:`build_connector` as the one place that says what a running ilptx is made of.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, maybeDeferred
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
from ilptx.core.rates import OneToOneBackend
from ilptx.core.routing import RoutingTable
from ilptx.core.settlement import SettlementManager
from ilptx.core.switch import PacketSwitch
from ilptx.errors import ConfigError
from ilptx.interfaces import ILedgerPlugin, IStore
from ilptx.metrics import PrometheusStats
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager, middleware_factories

__all__ = ["AccountStartError", "Connector", "build_connector", "runtime_account_config", "RUNTIME_ACCOUNT_PREFIX",
           "UNKNOWN_ADDRESS"]

#: The connector's address until a parent tells it (IL-DCP), as in the reference.
UNKNOWN_ADDRESS = "unknown"


class Connector(Service):
    """A running connector: accounts (with plugins), routing table, switch, store, settlement.

    Starting it opens the store, recovers reservations left by a crash, resumes unfinished
    settlements, starts the middlewares and connects every ledger plugin. Stopping it
    refuses new Prepares, waits until those in flight are answered (at most
    ``maxHoldTime``), disconnects the plugins and closes the store.
    """

    log = Logger()

    def __init__(self, *, config: ConnectorConfig, accounts: Accounts, routing_table: RoutingTable,
                 switch: PacketSwitch, rate_backend, store, stats, alerts: Alerts,
                 settlement: SettlementManager, reactor, account_builder: Callable) -> None:
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
        #: after startService: ``Deferred[None]``, see :meth:`_when_ready`
        self.ready: Optional[Deferred] = None
        #: takes our address from a parent when ``ilpAddress`` is not configured
        self.inheritance: Optional[AddressInheritance] = None

    @property
    def address(self) -> str:
        """The connector's ILP address."""
        return self.switch.address

    def startService(self) -> None:
        """Open the store, recover, connect every ledger plugin; :attr:`ready` tells when
        they are up (or gave up waiting after ``initialConnectTimeout``)."""
        super().startService()
        self.log.info("ilptx connector {address} starting with {count} accounts (store: {store})",
                      address=self.address, count=len(self.accounts), store=getattr(self.store, "name", "?"))
        self.ready = self._start()

    @inlineCallbacks
    def _start(self):
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
        yield self.rate_backend.connect()
        for pipelines in self.switch.pipelines.values():
            pipelines.start()
        yield self.settlement.resume()
        manager = self.switch.route_manager
        if manager is not None:
            if self.switch.address != UNKNOWN_ADDRESS:
                manager.start()
            for account in self.accounts:
                self._track_routes(account)
        connecting = []
        for account in self.accounts:
            connecting.append(self._connect(account))
        if self.config.inherit_address_from is not None:
            # IL-DCP from the parent (RFC 31): ready also waits for our address
            self.inheritance = AddressInheritance(self.accounts.get(self.config.inherit_address_from),
                                                  self.reactor, self._apply_parent_config)
            self.inheritance.start()
            connecting.append(self.inheritance.first)
        yield self._when_ready(DeferredList(connecting))

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

    def _when_ready(self, all_connected: Deferred) -> Deferred:
        """Fire once every plugin connected (or failed to), or after ``initialConnectTimeout``
        ms, whichever is first, as the reference waits before it starts its other services.
        Plugins still connecting keep trying in the background."""
        ready = Deferred()
        timeout_ms = self.config.raw["initialConnectTimeout"]

        def give_up() -> None:
            waiting = [a.id for a in self.accounts if not a.plugin.is_connected()]
            self.log.warn("initialConnectTimeout ({ms} ms): still connecting {accounts}",
                          ms=timeout_ms, accounts=waiting)
            ready.callback(None)

        timer = self.reactor.callLater(timeout_ms / 1000.0, give_up)

        def done(_):
            if timer.active():
                timer.cancel()
                ready.callback(None)

        all_connected.addCallback(done)
        return ready

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
        """Refuse new Prepares, answer those in flight, disconnect the plugins, close the store.

        :returns: ``Deferred[None]`` (twistd waits for it before exiting).
        """
        super().stopService()
        in_flight = self.switch.in_flight()
        if in_flight:
            self.log.info("stopping: waiting for {count} Prepares in flight", count=in_flight)
        yield self.switch.stop()
        if self.inheritance is not None:
            self.inheritance.stop()
        if self.switch.route_manager is not None:
            self.switch.route_manager.stop()
        self.settlement.stop()
        for pipelines in self.switch.pipelines.values():
            pipelines.stop()
        results = yield DeferredList(
            [maybeDeferred(account.plugin.disconnect) for account in self.accounts], consumeErrors=True)
        for account, (ok, result) in zip(self.accounts, results):
            if not ok:
                self.log.failure("account {account}: plugin failed to disconnect", result, account=account.id)
        yield self.rate_backend.disconnect()
        yield self.store.close()
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
        extra = {"store": store} if _accepts(factory, "store") else {}  # e.g. mini-accounts' tokens
        plugin = factory(_thaw(ac.options), account_id=ac.id, reactor=reactor,
                         log=Logger(namespace=f"ilptx.account.{ac.id}"), **extra)
        verifyObject(ILedgerPlugin, plugin)
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


def _accepts(factory: Callable, name: str) -> bool:
    """Whether a plugin factory takes the keyword ``name`` (optional extras such as ``store``)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _tell_plugin_address(account: Account, connector_address: str) -> None:
    """A plugin that serves many clients under its account (mini-accounts) needs the account's
    address, asset code and scale to answer their IL-DCP requests."""
    tell = getattr(account.plugin, "set_account_address", None)
    if tell is not None:
        tell(f"{connector_address}.{account.segment}", account.asset_code, account.asset_scale)


def _thaw(value):
    """Read-only config mappings → plain dicts/lists for plugin constructors."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
