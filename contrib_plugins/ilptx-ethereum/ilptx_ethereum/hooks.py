"""The ``ilptx`` entry point of this distribution: ledger plugins ``ethereum`` and
``ilp-plugin-ethereum`` (the JS package's name, so a config written for ilp-connector reads the
same), both :class:`~ilptx.settlement.plugin.SettlingPlugin` on :class:`~ilptx_ethereum.module.EthereumModule`."""

from __future__ import annotations

from ilptx.plugins.hookspecs import hookimpl
from ilptx.settlement.plugin import settling_plugin_factory

from ilptx_ethereum.module import EthereumModule

__all__ = ["ethereum_plugin", "ilptx_ledger_plugins"]

#: ``factory(options, *, account_id, services) -> SettlingPlugin`` (BTP client/peer role)
ethereum_plugin = settling_plugin_factory(EthereumModule)


@hookimpl
def ilptx_ledger_plugins():
    """:returns: ``{"ethereum": factory, "ilp-plugin-ethereum": factory}``."""
    return {"ethereum": ethereum_plugin, "ilp-plugin-ethereum": ethereum_plugin}
