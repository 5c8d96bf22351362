"""The ``role: server`` of the ``ethereum`` plugin: :class:`~ilptx.settlement.server.SettlingServerPlugin`
(mini-accounts, one account per client, as ``ilp-plugin-ethereum`` 3.0.0-beta.20's
``EthereumServerPlugin``) with one :class:`~ilptx_ethereum.module.EthereumModule` per client.

Each client ``C`` of account ``A`` has its own module with ``account_id="A:C"``, so its own
channel state in the store (``ethereum:A:C:peer-address``, ``…:outgoing-channel``,
``…:incoming-channel``) and its own settlement account; an incoming channel is linked to one
client for life (``ethereum:incoming-channel:<id>`` = ``A:C``), so a claim from one client on
another client's channel is refused (``channel not linked to another account``) and credits
nothing. The channel watcher of the framework runs every client's ``watch()``.

All the modules of one plugin share **one** chain client per contract (:class:`SharedLedgers`):
one key, so one nonce sequence; transactions stay one at a time (the JS plugin's
``_queueTransaction``) and one thread pool serves every client.
"""

from __future__ import annotations

from typing import Callable, Optional

from ilptx_ethereum.module import EthereumModule
from ilptx_ethereum.options import parse_options

__all__ = ["SharedLedgers", "ethereum_server_modules"]


class SharedLedgers:
    """A ``ledger_factory`` for many :class:`EthereumModule`\\ s: one ledger per contract address,
    started by the first module's ``start()`` and stopped by the last one's ``stop()``.

    :param make: ``make(contract_address) -> IEthereumLedger`` (e.g. a ``Web3Ledger``).
    """

    def __init__(self, make: Callable) -> None:
        self._make = make
        self._ledgers: dict[str, list] = {}  # contract (lower case) → [ledger, modules started on it]

    def __call__(self, contract_address: str) -> "_Lease":
        key = contract_address.lower()
        if key not in self._ledgers:
            self._ledgers[key] = [self._make(contract_address), 0]
        return _Lease(self, key)

    def ledger(self, contract_address: str):
        """:returns: the shared ledger of ``contract_address``, or ``None``."""
        entry = self._ledgers.get(contract_address.lower())
        return entry[0] if entry else None

    def _start(self, key: str) -> None:
        entry = self._ledgers[key]
        if entry[1] == 0:
            entry[0].start()
        entry[1] += 1

    def _stop(self, key: str) -> None:
        entry = self._ledgers.get(key)
        if entry is None or entry[1] == 0:
            return
        entry[1] -= 1
        if entry[1] == 0:
            entry[0].stop()


class _Lease:
    """One module's handle on a shared ledger: ``start``/``stop`` counted, the rest passed on."""

    def __init__(self, shared: SharedLedgers, key: str) -> None:
        self._shared, self._key, self._started = shared, key, False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._shared._start(self._key)

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._shared._stop(self._key)

    def __getattr__(self, name: str):
        return getattr(self._shared._ledgers[self._key][0], name)


def ethereum_server_modules(options: dict, *, account_id: str, services, make_ledger: Optional[Callable] = None):
    """The ``server_module_factory`` of :func:`~ilptx.settlement.plugin.settling_plugin_factory`
    for ``ethereum``: called once per server-role plugin.

    :param make_ledger: ``make(contract_address) -> IEthereumLedger`` (default a
        :class:`~ilptx_ethereum.chain.Web3Ledger` on ``ethereumProvider`` with ``ethereumPrivateKey``).
    :returns: ``factory(options, *, account_id, services) -> EthereumModule`` (one per client,
        all on one :class:`SharedLedgers`).
    :raises ConfigError: invalid options (named ``accounts.<account>.options.<key>``).
    """
    parsed = parse_options(options, account_id)
    if make_ledger is None:
        def make_ledger(contract_address: str):
            from ilptx_ethereum.chain import Web3Ledger

            return Web3Ledger(parsed.provider, parsed.private_key, contract_address, reactor=services.reactor)

    shared = SharedLedgers(make_ledger)

    def per_client(client_options: dict, *, account_id: str, services) -> EthereumModule:
        return EthereumModule(client_options, account_id=account_id, services=services, ledger_factory=shared)

    per_client.shared = shared  # type: ignore[attr-defined]
    return per_client
