"""The composition root: builds a connector from a validated config, top to bottom.

Read :func:`build_connector` as the one place that says what a running ilptx is made of.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, maybeDeferred
from twisted.logger import Logger
from zope.interface.verify import verifyObject

from ilptx.config import ConnectorConfig
from ilptx.core.accounts import Account, Accounts
from ilptx.core.middleware.error_handler import ErrorHandlerMiddleware
from ilptx.core.middleware.expire import ExpireMiddleware
from ilptx.core.middleware.validate_fulfillment import ValidateFulfillmentMiddleware
from ilptx.core.rates import OneToOneBackend
from ilptx.core.routing import RoutingTable
from ilptx.core.switch import PacketSwitch
from ilptx.errors import ConfigError
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager

__all__ = ["Connector", "build_connector"]


class Connector(Service):
    """A running connector: its accounts (with plugins), routing table and packet switch.

    Starting it connects every ledger plugin; stopping it refuses new Prepares, waits until
    those in flight are answered (at most ``maxHoldTime``), then disconnects the plugins.
    """

    log = Logger()

    def __init__(self, config: ConnectorConfig, accounts: Accounts, routing_table: RoutingTable,
                 switch: PacketSwitch, rate_backend, reactor) -> None:
        self.config = config
        self.reactor = reactor
        self.accounts = accounts
        self.routing_table = routing_table
        self.switch = switch
        self.rate_backend = rate_backend
        #: after startService: ``Deferred[None]``, see :meth:`_when_ready`
        self.ready: Optional[Deferred] = None

    @property
    def address(self) -> str:
        """The connector's ILP address."""
        return self.switch.address

    def startService(self) -> None:
        """Connect every ledger plugin; :attr:`ready` tells when they are up (or gave up waiting)."""
        super().startService()
        self.log.info("ilptx connector {address} starting with {count} accounts",
                      address=self.address, count=len(self.accounts))
        self.rate_backend.connect()
        connecting = []
        for account in self.accounts:
            d = maybeDeferred(account.plugin.connect)
            d.addCallbacks(self._connected, self._connect_failed, callbackArgs=(account,), errbackArgs=(account,))
            connecting.append(d)
        self.ready = self._when_ready(DeferredList(connecting))

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

    @inlineCallbacks
    def stopService(self):
        """Refuse new Prepares, answer those in flight, disconnect the plugins.

        :returns: ``Deferred[None]`` (twistd waits for it before exiting).
        """
        super().stopService()
        in_flight = self.switch.in_flight()
        if in_flight:
            self.log.info("stopping: waiting for {count} Prepares in flight", count=in_flight)
        yield self.switch.stop()
        results = yield DeferredList(
            [maybeDeferred(account.plugin.disconnect) for account in self.accounts], consumeErrors=True)
        for account, (ok, result) in zip(self.accounts, results):
            if not ok:
                self.log.failure("account {account}: plugin failed to disconnect", result, account=account.id)
        yield self.rate_backend.disconnect()
        self.log.info("ilptx connector {address} stopped", address=self.address)


def _make_rate_backend(config: ConnectorConfig):
    # config validation admits only known backends
    return OneToOneBackend(config.spread)


def build_connector(config: ConnectorConfig, *, reactor, plugin_factories: Optional[dict[str, Callable]] = None
                    ) -> Connector:
    """Assemble a connector.

    :param config: validated config (:func:`ilptx.config.load_config_file`).
    :param reactor: provides ``IReactorTime`` and the network interfaces the plugins use.
    :param plugin_factories: name → ledger plugin factory; default: everything the pluggy
        hooks declare (built-ins and the ``ilptx`` entry points).
    :raises ConfigError: an account names a plugin that is not installed, or a plugin's
        options are invalid.
    """
    log = Logger(namespace="ilptx.node")

    # 1. Find the ledger plugins: built-ins and installed distributions, through the same hook.
    if plugin_factories is None:
        plugin_factories = ledger_plugin_factories(make_plugin_manager())

    # 2. Accounts, each with its ledger plugin. Unknown plugin names stop start-up here.
    accounts = Accounts()
    for ac in config.accounts:
        factory = plugin_factories.get(ac.plugin)
        if factory is None:
            raise ConfigError(f"accounts.{ac.id}.plugin",
                              f"unknown plugin {ac.plugin!r}; installed: {', '.join(sorted(plugin_factories))}")
        account = Account(ac.id, ac.relation, ac.asset_code, ac.asset_scale, plugin_name=ac.plugin,
                          ilp_address_segment=ac.ilp_address_segment, options=_thaw(ac.options),
                          settings=_thaw(ac.settings))
        plugin = factory(_thaw(ac.options), account_id=ac.id, reactor=reactor,
                         log=Logger(namespace=f"ilptx.account.{ac.id}"))
        verifyObject(ILedgerPlugin, plugin)
        account.plugin = plugin
        accounts.add(account)

    # 3. Routing table: a local route per child, then static routes (which win over local
    #    routes for the same prefix, as in the reference), then the default route.
    table = RoutingTable()
    for account in accounts.by_relation("child"):
        table.add(f"{config.ilp_address}.{account.segment}", account.id)
    for prefix, peer_id in config.routes:
        table.add(prefix, peer_id)
    default = config.default_route
    if default == "auto":
        parents = accounts.by_relation("parent")
        default = parents[0].id if parents else ""
    if default:
        table.set_default(default)

    # 4. Rates.
    rate_backend = _make_rate_backend(config)

    # 5. Pipelines. Order decides which error wins: errorHandler is outermost so that every
    #    error raised inside becomes a Reject; expire wraps validateFulfillment so that a late
    #    (even invalid) answer after expiry still yields R00.
    disabled = config.disable_middleware
    incoming = [m for m in (ErrorHandlerMiddleware(lambda: switch.address),) if m.name not in disabled]
    outgoing = [m for m in (ExpireMiddleware(reactor), ValidateFulfillmentMiddleware()) if m.name not in disabled]

    # 6. The switch, and every plugin's handlers pointed at it.
    switch = PacketSwitch(
        address=config.ilp_address, accounts=accounts, routing_table=table, rate_backend=rate_backend,
        clock=reactor, incoming=incoming, outgoing=outgoing,
        min_message_window_ms=config.min_message_window, max_hold_time_ms=config.max_hold_time,
        reflect_payments=config.reflect_payments,
    )
    for account in accounts:
        account.plugin.register_data_handler(switch.data_handler(account))
        account.plugin.register_money_handler(_money_logger(log, account))

    return Connector(config, accounts, table, switch, rate_backend, reactor)


def _money_logger(log: Logger, account: Account) -> Callable[[int], None]:
    # Balances and settlement arrive with issue #3; until then a settlement is only logged.
    def on_money(amount: int) -> None:
        log.info("account {account}: received settlement of {amount}", account=account.id, amount=amount)

    return on_money


def _thaw(value):
    """Read-only config mappings → plain dicts/lists for plugin constructors."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
