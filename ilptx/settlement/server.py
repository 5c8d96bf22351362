"""The *server* role of a settling plugin: one BTP listener (mini-accounts), one settlement
account per client, as ``ilp-plugin-ethereum`` 3.0.0-beta.20 ``role: server`` (its
``EthereumServerPlugin`` extends ``ilp-plugin-mini-accounts``; ``src/account.ts`` keeps one
``EthereumAccount`` per client).

:class:`SettlingServerPlugin` is :class:`~ilptx.plugins.mini_accounts.MiniAccountsPlugin`
(logins, client addresses, IL-DCP, packets to and from clients) plus, per client ``C`` of
account ``A``:

* a module made by the plugin's module factory with ``account_id="A:C"`` and a
  :class:`~ilptx.settlement.engine.SettlementAccount` on it with the same id, so its state is
  keyed ``<module name>:A:C:...`` in the settlement state (a module that links ledger objects
  to an account, e.g. an incoming channel, so links them to one *client*);
* the client's sub-protocol MESSAGEs (``info``, ``machinomy`` ...) go to that settlement
  account; its ``call_peer`` sends on the client's newest connection (T01 when it has none);
* two balances in the connector's store (``IStore`` balance operations, so atomic, durable,
  and put right by ``store.recover()`` after a crash), in account units (e.g. gwei):

  ``A:C`` (*receivable*, the JS ``receivableBalance``; positive: the client owes us)
      a Prepare from the client reserves its amount against the maximum (below), a Fulfill
      commits it, a Reject releases it; every verified claim or payment from the client lowers
      it by what was credited (and goes to the plugin's money handler, i.e. the connector).
  ``A:C:payable`` (minus what we ever owed the client, the JS ``payableBalance`` before it is paid)
      a Prepare to the client reserves its amount, a Fulfill commits it: ``−balance`` is the
      total the client ever earned from us. After a crash ``recover()`` commits what was in
      flight (we never under-pay a client).

Settling towards a client is driven as the JS server drives it, by the client's Fulfills, not
by the connector (``send_money`` of the account errbacks, as the JS ``sendMoney is not
supported``): after each Fulfill of a Prepare to the client, what the client earned and was not
yet queued (``−payable balance − payouts queued or paid``) is queued as one payout under the key
``fulfilled:<total earned>`` (so a repeat, after a crash or not, is the same payout) and paid
through the engine (a claim for the lifetime total; retried until the client acknowledges).
The same reconciliation runs when a client is loaded, so a crash between the Fulfill and the
queue loses nothing. On a ``T04`` Reject from the client the best claim we signed it is sent
again (the JS ``handlePrepareResponse``: the client may have missed it).

Claims in BTP TRANSFERs (``ilp-plugin-xrp-asym-server`` 1.8.1): a module that takes claims as
TRANSFERs provides ``verify_claim_transfer(transfer) -> int | Deferred[int]`` (the amount to pass
on besides what it credited through ``ctx.credit_claim``, usually 0; raise
:class:`~ilptx.settlement.engine.ClaimRejectedError` to refuse: F00): a TRANSFER from client ``C``
goes to ``C``'s module (:meth:`SettlingServerPlugin.verify_transfer`); a module without it gets
mini-accounts' refusal. A module with a ``plugin`` attribute gets a :class:`ClientLink` there
when loaded: ``send_transfer`` / ``send_entries`` / ``ilp_address`` of *its* client.

Prefunding: with the JS default the maximum of ``A:C`` is 0, so a client must pay (send a claim)
before its Prepares are forwarded; a Prepare past it gets a ``T04`` Reject (``exceeded maximum
balance.``).

Options, besides mini-accounts' and the module's own (the JS server's ``maxPacketAmount`` is the
account's own ``maxPacketAmount`` in ilptx's config):

``role`` (``"server"``)
    picks this class in :func:`~ilptx.settlement.plugin.settling_plugin_factory`.
``clientBalance.maximum`` (decimal string, account units; default ``"0"`` here, the JS server's
    fixed ``maxBalance`` of 0)
    the most a client may owe us (``"Infinity"``: no limit). ``clientBalance.minimum`` is not
    used (the JS server has no such limit): what we owe a client is paid after each Fulfill.
``channelWatcherInterval`` (ms, default 60000; 0 disables)
    how often ``module.watch()`` runs for *every* client ever seen, connected or not (the
    list is kept in the store under ``settlement:A:clients``; JS ``accounts``, issue
    ilp-plugin-ethereum#20).

Crash analysis, besides the engine's (:mod:`ilptx.settlement.engine`):

* a Prepare *from* a client in flight: ``recover()`` releases its reservation on ``A:C`` (the
  connector's own rule for its accounts' incoming Prepares: the sender is assumed not to have
  seen the Fulfill);
* a Prepare *to* a client in flight: ``recover()`` commits it on ``A:C:payable`` and the client
  is paid it when loaded (we never under-pay a client);
* between the Fulfill's commit and the payout's record: the reconciliation at load queues it,
  under the same key as it would have had;
* a verified claim is recorded by the engine before either balance moves; the money handler is
  the connector's balance write, then the client's ``A:C`` write (a failure of the latter is
  logged as an error and not retried, so nothing is credited twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import (
    Deferred, DeferredLock, fail, gatherResults, inlineCallbacks, maybeDeferred, succeed,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ilptx.codec.btp import Message, Transfer
from ilptx.core.balances import parse_limit
from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.interfaces import IAccountAddressAware, IAdminInfoProvider, ILedgerPlugin
from ilptx.plugins.base import PluginServices
from ilptx.plugins.btp import ms_option
from ilptx.plugins.mini_accounts import MiniAccountsPlugin, _ClientConnection
from ilptx.settlement.engine import SettlementAccount
from ilptx.settlement.interfaces import ISettlementModule
from ilptx.settlement.plugin import DEFAULT_CHANNEL_WATCHER_INTERVAL_MS, SettlementLifecycle, is_t04_reject

__all__ = ["SettlingServerPlugin", "ClientAccount", "ClientLink", "DEFAULT_CLIENT_MAXIMUM"]

#: the most a client may owe us by default (account units): the JS server's ``maxBalance`` of 0
DEFAULT_CLIENT_MAXIMUM = 0


@dataclass
class ClientAccount:
    """One client of a :class:`SettlingServerPlugin`.

    :ivar client: the client name (an ILP address segment).
    :ivar settlement: its :class:`~ilptx.settlement.engine.SettlementAccount` (id ``A:C``).
    :ivar module: its :class:`~ilptx.settlement.interfaces.ISettlementModule`.
    """

    client: str
    settlement: SettlementAccount
    module: object


class ClientLink:
    """What a client's module may send to its client (set as ``module.plugin``, see the module
    docstring): the same calls a client-role module makes on its
    :class:`~ilptx.settlement.plugin.SettlingPlugin`, on the client's newest connection.

    :ivar client: the client name.
    """

    __slots__ = ("_plugin", "client")

    def __init__(self, plugin: "SettlingServerPlugin", client: str) -> None:
        self._plugin, self.client = plugin, client

    @property
    def ilp_address(self) -> str:
        """The client's ILP address (``<account address>.<client>``)."""
        return self._plugin.client_address(self.client)

    def send_entries(self, entries) -> Deferred:
        """Send one BTP MESSAGE of ``entries``. :returns: ``Deferred[tuple[ProtocolDataEntry, ...]]``
        of the Response; errbacks ``PeerUnreachableError`` (T01: not connected)."""
        return self._plugin._send_message(self.client, tuple(entries))

    def send_transfer(self, amount: int, entries) -> Deferred:
        """Send a BTP TRANSFER of ``amount`` (``int``, account units) with ``entries``.
        :returns: ``Deferred[None]`` on the Response; errbacks T01 (not connected) or the
        client's BTP Error."""
        return self._plugin._request(self.client, lambda rid: Transfer(rid, amount, tuple(entries))).addCallback(
            lambda _: None)


class _SettlingClientConnection(_ClientConnection):
    """A client connection whose sub-protocol MESSAGEs go to the client's settlement account."""

    __slots__ = ()

    def session_open(self, session) -> None:
        super().session_open(session)
        self.plugin._client_connected(self.client)

    def handle_message(self, message):
        return self.plugin._client_message(self.client, message)


@implementer(ILedgerPlugin, IAccountAddressAware, IAdminInfoProvider)
class SettlingServerPlugin(SettlementLifecycle, MiniAccountsPlugin):
    """Many BTP clients behind one account, each settled through its own module (see the module
    docstring).

    :param options: the account's options (mini-accounts', ``clientBalance``,
        ``channelWatcherInterval``, the module's).
    :param account_id: ``str``. :param services: the :class:`~ilptx.plugins.base.PluginServices`.
    :param module_factory: ``module_factory(options, *, account_id, services) ->
        ISettlementModule``, called once per client with ``account_id="<account>:<client>"`` (and
        once here with the account's id, its module dropped: so bad options stop start-up).
    :raises ConfigError: invalid options (mini-accounts' or the module's).

    :ivar accounts: ``dict[str, ClientAccount]``: the clients loaded (every client ever seen,
        once :meth:`connect` fired).
    """

    connection_owner = _SettlingClientConnection

    def __init__(self, options: dict, *, account_id: str, services: PluginServices, module_factory: Callable) -> None:
        super().__init__(options, account_id=account_id, reactor=services.reactor, log=services.log,
                         store=services.store)
        balance = options.get("clientBalance") or {}
        self._max_balance = parse_limit(balance.get("maximum")) if "maximum" in balance else DEFAULT_CLIENT_MAXIMUM
        self._watch_interval = ms_option(options, "channelWatcherInterval", DEFAULT_CHANNEL_WATCHER_INTERVAL_MS,
                                         lambda name: f"accounts.{account_id}.options.{name}")
        self._module_options = options
        self._services = services
        self._module_factory = module_factory
        module_factory(options, account_id=account_id, services=services)  # bad options: ConfigError at start-up
        self._state = services.settlement_state()
        self.accounts: dict[str, ClientAccount] = {}
        self._load_lock = DeferredLock()  # one client loaded at a time: one module per client
        self._owed_locks: dict[str, DeferredLock] = {}

    # -- keys -------------------------------------------------------------------------------------

    def client_account_id(self, client: str) -> str:
        """:returns: ``'<account>:<client>'``: the client's settlement account id and the store
        id of its receivable balance."""
        return f"{self.account_id}:{client}"

    def payable_id(self, client: str) -> str:
        """:returns: ``'<account>:<client>:payable'``, the store id of what the client earned."""
        return f"{self.account_id}:{client}:payable"

    @property
    def _clients_key(self) -> str:
        return f"settlement:{self.account_id}:clients"

    # -- ILedgerPlugin ----------------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Open the settlement state, load every client seen before (module + settlement account,
        their owed payouts reconciled), then listen (mini-accounts) and start the watcher.
        :returns: ``Deferred[None]``; errbacks as mini-accounts or with a client's module failure."""
        @inlineCallbacks
        def start():
            yield self._state.open()
            for client in (yield self._known_clients()):
                yield self.load_client(client)
            yield MiniAccountsPlugin.connect(self)

        return self._start_settlement(start, lambda: MiniAccountsPlugin.connect(self))

    @inlineCallbacks
    def disconnect(self):
        """Stop the watcher, every client's retries and module (``module.disconnect()``), then
        stop listening. :returns: ``Deferred[None]``."""
        self._stop_settlement()
        accounts, self.accounts = self.accounts, {}
        for account in accounts.values():
            account.settlement.stop()
        for account in accounts.values():
            try:
                yield maybeDeferred(account.module.disconnect)
            except Exception:
                self._log.failure("{account}: settlement module of client {client} failed to disconnect",
                                  account=self.account_id, client=account.client)
        yield MiniAccountsPlugin.disconnect(self)

    def send_money(self, amount: int, idempotency_key=None) -> Deferred:
        """Not supported, as the JS server: each client is paid after its Fulfills (see the
        module docstring). :returns: a failed ``Deferred`` (``NotImplementedError``; the
        connector keeps the settlement in its outbox, no balance moves)."""
        return fail(NotImplementedError(
            f"account {self.account_id}: sendMoney is not supported on a settling server: each client is settled "
            "after its Fulfills (do not give the account a settleThreshold)"))

    # -- clients ----------------------------------------------------------------------------------

    @inlineCallbacks
    def _known_clients(self):
        raw = yield self._store.get(self._clients_key)
        return json.loads(raw) if raw else []

    def load_client(self, client: str) -> Deferred:
        """Load ``client`` once: its module (``module.connect(ctx)``) and settlement account, the
        client remembered in the store, what it is owed queued. :returns:
        ``Deferred[ClientAccount]``."""
        return self._load_lock.run(self._load, client)

    @inlineCallbacks
    def _load(self, client: str):
        if client in self.accounts:
            return self.accounts[client]
        if not self._settlement_started:
            raise PeerUnreachableError(f"account {self.account_id} is disconnected: client {client} is not loaded")
        key = self.client_account_id(client)
        module = self._module_factory(self._module_options, account_id=key, services=self._services)
        if not ISettlementModule.providedBy(module):
            raise ConfigError(f"accounts.{self.account_id}.plugin",
                              f"{type(module).__name__} does not provide ISettlementModule")
        settlement = SettlementAccount(
            module, account_id=key, state=self._state, store=self._store, clock=self._reactor, log=self._log,
            call_peer=lambda entries: self._send_message(client, entries),
            money_handler=lambda: self._client_money_handler(client))
        if hasattr(module, "plugin"):
            module.plugin = ClientLink(self, client)
        yield settlement.open()
        yield maybeDeferred(module.connect, settlement)
        account = self.accounts[client] = ClientAccount(client, settlement, module)
        known = yield self._known_clients()
        if client not in known:
            yield self._store.put(self._clients_key, json.dumps(sorted({*known, client})))
        self._log.info("{account}: settlement of client {client!r} loaded", account=self.account_id, client=client)
        yield self._queue_owed(account)
        return account

    def _client_connected(self, client: str) -> None:
        def loaded(account: ClientAccount):
            return maybeDeferred(account.module.peer_connected).addCallback(lambda _: account.settlement.flush())

        def failed(failure):
            self._log.failure("{account}: settlement of client {client!r} failed on connect", failure,
                              account=self.account_id, client=client)

        self.load_client(client).addCallback(loaded).addErrback(failed)

    def _client_message(self, client: str, message):
        account = self.accounts.get(client)
        if account is not None:
            return account.settlement.handle_message(message)
        if all(entry.protocol_name == "ilp" for entry in message.protocol_data):
            return None
        # a sub-protocol MESSAGE before the client's module is loaded (just after its login): wait for it
        return self.load_client(client).addCallback(
            lambda loaded: loaded.settlement.handle_message(message) or succeed(()))

    def _send_message(self, client: str, entries: tuple) -> Deferred:
        return self._request(client, lambda rid: Message(rid, tuple(entries))).addCallback(
            lambda response: tuple(response.protocol_data))

    def _request(self, client: str, make_frame: Callable) -> Deferred:
        sessions = self._clients.get(client)
        if not sessions:
            return fail(PeerUnreachableError(f"client {client} of account {self.account_id} is not connected"))
        return sessions[-1].request(make_frame)

    def verify_transfer(self, client: str, transfer):
        """A BTP TRANSFER from ``client``: its module's ``verify_claim_transfer(transfer)`` (loading
        the client first if needed), else mini-accounts' refusal (F00). :returns: ``int`` or
        ``Deferred[int]``, what to pass to the money handler besides what the module credited.
        :raises NotAcceptedError: the module refused the claim (F00, nothing credited)."""
        account = self.accounts.get(client)
        if account is None:
            return self.load_client(client).addCallback(lambda _: self.verify_transfer(client, transfer))
        verify = getattr(account.module, "verify_claim_transfer", None)
        if verify is None:
            return MiniAccountsPlugin.verify_transfer(self, client, transfer)
        return maybeDeferred(verify, transfer)

    # -- money from clients -----------------------------------------------------------------------

    def _client_money_handler(self, client: str):
        handler = self.money_handler
        if handler is None:
            return None

        def credit(units: int) -> Deferred:
            def client_paid(_):
                return self._store.adjust(self.client_account_id(client), -units).addCallbacks(
                    lambda _: None, self._balance_write_failed, errbackArgs=(client, units))

            return maybeDeferred(handler, units).addCallback(client_paid)

        return credit

    def _balance_write_failed(self, failure: Failure, client: str, units: int) -> None:
        self._log.failure("{account}: {units} credited to the connector but the balance of client {client!r} "
                          "could not be lowered (check it)", failure, account=self.account_id, units=units,
                          client=client)

    # -- per-client balances (the mini-accounts hooks) --------------------------------------------

    def _reserve_incoming(self, client: str, amount: int) -> Deferred:
        return self._store.reserve_incoming(self.client_account_id(client), amount, self._max_balance)

    def _reserve_outgoing(self, client: str, amount: int) -> Deferred:
        return self._store.reserve_outgoing(self.payable_id(client), amount, None)

    def _settle(self, client: str, amount: int, fulfilled: bool, incoming: bool) -> Deferred:
        if incoming:
            return self._store.settle_incoming(self.client_account_id(client), amount, fulfilled)
        return self._store.settle_outgoing(self.payable_id(client), amount, fulfilled)

    def _outgoing_answered(self, client: str, amount: int, fulfilled: bool, result):
        d = self._settle(client, amount, fulfilled, False)
        if fulfilled:
            d.addCallback(lambda _: self._queue_owed_to(client))
        elif is_t04_reject(result):
            d.addCallback(lambda _: self._resend_claim(client))

        def failed(failure):
            self._log.failure("{account}: recording the answer of client {client!r} failed", failure,
                              account=self.account_id, client=client)

        return d.addErrback(failed).addCallback(lambda _: result)

    def _queue_owed_to(self, client: str) -> Deferred:
        return self.load_client(client).addCallback(self._queue_owed)

    def _queue_owed(self, account: ClientAccount) -> Deferred:
        lock = self._owed_locks.setdefault(account.client, DeferredLock())
        return lock.run(self._queue_owed_locked, account)

    @inlineCallbacks
    def _queue_owed_locked(self, account: ClientAccount):
        earned = -(yield self._store.get_balance(self.payable_id(account.client))).balance
        queued = (yield account.settlement.payouts.get_sums()).outgoing_fulfilled_and_prepared
        owed = earned - queued
        if owed <= 0:
            return
        key = f"fulfilled:{earned}"
        yield account.settlement.payouts.prepare(key, owed, False)  # durable before anything is paid

        def failed(failure):
            self._log.info("{account}: payout {key} of {owed} to client {client!r} not confirmed yet ({error}); "
                           "it stays queued", account=self.account_id, key=key, owed=owed, client=account.client,
                           error=failure.getErrorMessage())

        account.settlement.send_money(owed, key).addErrback(failed)

    def _resend_claim(self, client: str) -> None:
        account = self.accounts.get(client)
        if account is not None:
            account.settlement.settle_now()

    # -- watcher ----------------------------------------------------------------------------------

    def _watch(self) -> Deferred:
        def one(account: ClientAccount) -> Deferred:
            def failed(failure):
                self._log.failure("{account}: channel watcher failed for client {client!r}", failure,
                                  account=self.account_id, client=account.client)

            return maybeDeferred(account.module.watch).addErrback(failed)

        return gatherResults([one(a) for a in list(self.accounts.values())]).addCallback(lambda _: None)

    # -- admin ------------------------------------------------------------------------------------

    @inlineCallbacks
    def get_admin_info(self):
        """:returns: ``Deferred[dict]``: ``{"role": "server", "clients": {client: {"balance",
        "incomingReserved"`` (the client's receivable, account units), ``"earned"`` (account
        units the client ever earned from us), ``"pendingPayouts"`` (account units queued, not yet
        acknowledged), ``"settlement"`` (:meth:`SettlementAccount.admin_info`), ``"<module
        name>"`` (the module's ``admin_info()``: channel ids, deposited, claimed, best incoming
        claim)``}}}``; amounts as decimal strings."""
        clients = {}
        for client, account in sorted(self.accounts.items()):
            receivable = yield self._store.get_balance(self.client_account_id(client))
            payable = yield self._store.get_balance(self.payable_id(client))
            sums = yield account.settlement.payouts.get_sums()
            settlement = yield account.settlement.admin_info()
            module = yield maybeDeferred(account.module.admin_info)
            clients[client] = {
                "balance": str(receivable.balance), "incomingReserved": str(receivable.incoming_reserved),
                "earned": str(-payable.balance),
                "pendingPayouts": str(sums.outgoing_fulfilled_and_prepared - sums.outgoing_fulfilled),
                "connected": client in self._clients,
                "settlement": settlement, getattr(account.module, "name", "module"): module,
            }
        return {"role": "server", "clients": clients}
