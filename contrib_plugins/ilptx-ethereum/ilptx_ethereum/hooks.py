"""The ``ilptx`` entry point of this distribution: ledger plugins ``ethereum`` and
``ilp-plugin-ethereum`` (the JS package's name, so a config written for ilp-connector reads the
same): :class:`~ilptx.settlement.plugin.SettlingPlugin` on :class:`~ilptx_ethereum.module.EthereumModule`
(``role: client``, the default) or :class:`~ilptx.settlement.server.SettlingServerPlugin` with one module per
client on one shared chain client (``role: server``, :mod:`ilptx_ethereum.server`)."""

from __future__ import annotations

from ilptx.plugins.hookspecs import hookimpl
from ilptx.settlement.plugin import settling_plugin_factory

from ilptx_ethereum.module import EthereumModule
from ilptx_ethereum.server import ethereum_server_modules

__all__ = ["ethereum_plugin", "ilptx_ledger_plugins"]

#: ``factory(options, *, account_id, services) -> SettlingPlugin | SettlingServerPlugin`` (by ``role``)
ethereum_plugin = settling_plugin_factory(EthereumModule, ethereum_server_modules)


@hookimpl
def ilptx_ledger_plugins():
    """:returns: ``{"ethereum": factory, "ilp-plugin-ethereum": factory}``."""
    return {"ethereum": ethereum_plugin, "ilp-plugin-ethereum": ethereum_plugin}
