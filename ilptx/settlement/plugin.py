"""The settling ledger plugin: :class:`~ilptx.plugins.btp.BtpPlugin` + a ledger module.

A third-party settling plugin is a module (:class:`~ilptx.settlement.interfaces.ISettlementModule`)
and one line of factory::

    from ilptx.settlement.plugin import settling_plugin_factory

    my_factory = settling_plugin_factory(MyModule)   # MyModule(options, *, account_id, services)

    @hookimpl
    def ilptx_ledger_plugins():
        return {"my-ledger": my_factory}

Roles (the account's ``role`` option, as ``ilp-plugin-ethereum`` 3.0.0-beta.20; default
``client``), picked by :func:`settling_plugin_factory`:

* ``client`` -- :class:`SettlingPlugin` (this class): one account, one BTP peer, ``listener`` or
  ``server`` exactly as :mod:`ilptx.plugins.btp`; the connector's ``settleThreshold`` /
  ``settleTo`` drive :meth:`SettlingPlugin.send_money`.
* ``server`` -- :class:`~ilptx.settlement.server.SettlingServerPlugin`: one BTP listener
  (mini-accounts), the same engine with one module and one
  :class:`~ilptx.settlement.engine.SettlementAccount` per client, keyed
  ``<module>:<account>:<client>``; per-client balances in the store; each client is paid after
  its Fulfills (the JS server's rule), not by the connector. See that module.

Lifecycle of :meth:`SettlingPlugin.connect`: open the settlement state in the store → report
unconfirmed credits (:meth:`SettlementAccount.open`) → ``module.connect(ctx)`` (registers its
sub-protocols; no peer yet) → BTP connects (listen or dial) → start the channel watcher. Each
time the BTP peer connects: ``module.peer_connected()``, then the queued payouts are flushed.
:meth:`SettlingPlugin.disconnect`: stop the watcher and retries → ``module.disconnect()`` →
close BTP.

BTP: a MESSAGE whose entries include a registered sub-protocol (``info``, ``machinomy``,
``claim`` ...) goes to that handler and its entries are the Response; any other MESSAGE (the
``ilp`` entry) goes to the data handler as in ``btp``. A TRANSFER is refused as in ``btp`` (F00):
claims travel in MESSAGEs (``ilp-plugin-ethereum`` since PR #29); a module that needs Transfers
overrides :meth:`~ilptx.plugins.btp.BtpPlugin.verify_transfer` in a subclass.

Options, besides the BTP plugin's and the module's own:

``channelWatcherInterval`` (ms, default 60000; 0 disables)
    How often ``module.watch()`` runs (``ilp-plugin-ethereum``'s option name and default).
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, inlineCallbacks, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from ilptx.codec.btp import Message
from ilptx.codec.ilp import TYPE_REJECT, Reject, decode_response
from ilptx.codec.oer import DecodeError
from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.interfaces import IAdminInfoProvider, ILedgerPlugin
from ilptx.plugins.base import PluginServices
from ilptx.plugins.btp import BtpPlugin, ms_option
from ilptx.settlement.engine import SettlementAccount
from ilptx.settlement.interfaces import ISettlementModule

__all__ = ["SettlingPlugin", "settling_plugin_factory", "is_t04_reject", "DEFAULT_CHANNEL_WATCHER_INTERVAL_MS"]

DEFAULT_CHANNEL_WATCHER_INTERVAL_MS = 60000


class SettlementLifecycle:
    """What both roles share: start the settlement once, the channel watcher on the injected
    clock. Needs ``_reactor``, ``_watch_interval`` (s) and ``_watch()`` of the subclass."""

    _watcher: Optional[LoopingCall] = None
    _settlement_started = False

    def _start_settlement(self, steps: Callable[[], Deferred], then: Callable[[], Deferred]) -> Deferred:
        """Run ``steps()`` (open the state, start the module(s), connect) the first time, then
        start the watcher; later calls only ``then()`` (the transport's connect)."""
        if self._settlement_started:
            return then()
        self._settlement_started = True

        def failed(failure):
            self._settlement_started = False
            return failure

        return steps().addCallback(lambda _: self._start_watcher()).addErrback(failed)

    def _stop_settlement(self) -> bool:
        """Stop the watcher. :returns: whether the settlement had been started."""
        if self._watcher is not None and self._watcher.running:
            self._watcher.stop()
        self._watcher = None
        started, self._settlement_started = self._settlement_started, False
        return started

    def _start_watcher(self) -> None:
        if not self._watch_interval or self._watcher is not None:
            return
        watcher = self._watcher = LoopingCall(self._watch)
        watcher.clock = self._reactor
        watcher.start(self._watch_interval, now=False)


@implementer(ILedgerPlugin, IAdminInfoProvider)
class SettlingPlugin(SettlementLifecycle, BtpPlugin):
    """A BTP plugin whose ``send_money`` settles on a ledger through ``module``.

    :param options: the account's options (BTP's, ``channelWatcherInterval``, the module's).
    :param account_id: ``str``. :param services: the :class:`~ilptx.plugins.base.PluginServices`.
    :param module: an :class:`~ilptx.settlement.interfaces.ISettlementModule` provider.
    :raises ConfigError: invalid options, or ``module`` does not provide ISettlementModule.

    :ivar settlement: the account's :class:`~ilptx.settlement.engine.SettlementAccount` (the
        module's context).
    :ivar module: the module.
    """

    def __init__(self, options: dict, *, account_id: str, services: PluginServices, module) -> None:
        super().__init__(options, account_id=account_id, reactor=services.reactor, log=services.log)
        if not ISettlementModule.providedBy(module):
            raise ConfigError(f"accounts.{account_id}.plugin",
                              f"{type(module).__name__} does not provide ISettlementModule")
        self.module = module
        self._watch_interval = ms_option(options, "channelWatcherInterval", DEFAULT_CHANNEL_WATCHER_INTERVAL_MS,
                                         lambda name: f"accounts.{account_id}.options.{name}")
        self._state = services.settlement_state()
        self.settlement = SettlementAccount(
            module, account_id=account_id, state=self._state, store=services.store, clock=services.reactor,
            log=self._log, call_peer=self._send_message, money_handler=lambda: self.money_handler)
        self.add_connection_listener(self._peer_changed)

    # -- ILedgerPlugin ----------------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Open the settlement state, start the module, then connect BTP (see the module
        docstring). :returns: ``Deferred[None]``; errbacks as ``BtpPlugin.connect`` or with the
        module's or the store's failure."""
        @inlineCallbacks
        def start():
            yield self._state.open()
            yield self.settlement.open()
            yield maybeDeferred(self.module.connect, self.settlement)
            yield BtpPlugin.connect(self)

        return self._start_settlement(start, lambda: BtpPlugin.connect(self))

    def disconnect(self) -> Deferred:
        """Stop the watcher and retries, ``module.disconnect()``, close BTP. :returns: ``Deferred[None]``."""
        started = self._stop_settlement()
        self.settlement.stop()
        d = maybeDeferred(self.module.disconnect) if started else succeed(None)

        def module_failed(failure):
            self._log.failure("{account}: settlement module failed to disconnect", failure, account=self.account_id)

        return d.addErrback(module_failed).addCallback(lambda _: BtpPlugin.disconnect(self))

    def send_money(self, amount: int, idempotency_key=None) -> Deferred:
        """Settle ``amount`` (``int`` > 0, account units) through the payout queue
        (:meth:`SettlementAccount.send_money`): fires once the ledger module confirmed it;
        the same key is paid once. Errbacks: the attempt's failure (still queued, retried)."""
        return self.settlement.send_money(amount, idempotency_key)

    def send_data(self, data: bytes) -> Deferred:
        """As :meth:`BtpPlugin.send_data`; a ``T04`` Reject from the peer (it extends us no more
        credit) also starts :meth:`SettlementAccount.settle_now` (flush the payouts, re-send the
        best claim), as the JS settling plugins settle on T04. The answer is passed on as it is."""
        return BtpPlugin.send_data(self, data).addCallback(self._answered)

    def _answered(self, result):
        if is_t04_reject(result):
            self.settlement.settle_now()
        return result

    def get_admin_info(self) -> Deferred:
        """:returns: ``Deferred[dict]``: ``{"settlement": <SettlementAccount.admin_info>,
        "<module name>": <module.admin_info()>}``."""
        info = {}

        def module_info(settlement):
            info["settlement"] = settlement
            return maybeDeferred(self.module.admin_info)

        def done(mine):
            info[self.module.name] = mine
            return info

        return self.settlement.admin_info().addCallback(module_info).addCallback(done)

    # -- BTP --------------------------------------------------------------------------------------

    def handle_message(self, message):
        """For :class:`~ilptx.transport.btp_session.BtpSession`: a registered sub-protocol's
        answer (``Deferred[tuple[ProtocolDataEntry, ...]]``) or ``None`` (to the data handler)."""
        return self.settlement.handle_message(message)

    def _send_message(self, entries: tuple) -> Deferred:
        session = self._session
        if session is None:
            return fail(PeerUnreachableError(f"BTP peer of account {self.account_id} is not connected"))
        return session.request(lambda rid: Message(rid, tuple(entries))).addCallback(
            lambda response: tuple(response.protocol_data))

    def _peer_changed(self, connected: bool) -> None:
        if not connected:
            return

        def failed(failure):
            self._log.failure("{account}: settlement module failed on peer connect", failure, account=self.account_id)

        maybeDeferred(self.module.peer_connected).addCallbacks(
            lambda _: self.settlement.flush(), failed)

    def _watch(self) -> Deferred:
        def failed(failure):
            self._log.failure("{account}: channel watcher failed", failure, account=self.account_id)

        return maybeDeferred(self.module.watch).addErrback(failed)


def is_t04_reject(packet) -> bool:
    """:returns: whether ``packet`` (the ``bytes`` of an ILP answer) is a Reject with code ``T04``
    (Insufficient Liquidity, RFC 27 §3.3). Anything else, malformed bytes included, is ``False``.
    Only a Reject (type 14) is decoded."""
    if not isinstance(packet, (bytes, bytearray)) or not packet or packet[0] != TYPE_REJECT:
        return False
    try:
        reply = decode_response(bytes(packet))
    except DecodeError:
        return False
    return type(reply) is Reject and reply.code == "T04"


def settling_plugin_factory(module_factory: Callable, server_module_factory: Optional[Callable] = None) -> Callable:
    """:param module_factory: ``module_factory(options, *, account_id, services) -> ISettlementModule``.
    :param server_module_factory: ``server_module_factory(options, *, account_id, services) ->
        module_factory`` (optional): called once per ``role: server`` plugin, it returns the
        factory of that plugin's per-client modules (e.g. to share one chain client among
        them); default: ``module_factory`` itself.
    :returns: a ledger plugin factory (``factory(options, *, account_id, services) ->``
        :class:`SettlingPlugin` for ``role`` ``client`` (the default),
        :class:`~ilptx.settlement.server.SettlingServerPlugin` for ``server``) for the
        ``ilptx_ledger_plugins`` hook.
    :raises ConfigError: another ``role``."""

    def factory(options: dict, *, account_id: str, services: PluginServices):
        role = options.get("role", "client")
        if role == "server":
            from ilptx.settlement.server import SettlingServerPlugin

            per_client = module_factory if server_module_factory is None else server_module_factory(
                options, account_id=account_id, services=services)
            return SettlingServerPlugin(options, account_id=account_id, services=services, module_factory=per_client)
        if role != "client":
            raise ConfigError(f"accounts.{account_id}.options.role", f"must be 'client' or 'server', got {role!r}")
        module = module_factory(options, account_id=account_id, services=services)
        return SettlingPlugin(options, account_id=account_id, services=services, module=module)

    factory.__doc__ = f"A settling plugin on {getattr(module_factory, '__name__', module_factory)!s}."
    return factory
