"""The ``ilptx`` entry point of this distribution: ledger plugins ``lightning`` and
``ilp-plugin-lightning`` (the JS package's name, so a config written for ilp-connector reads the
same), both :class:`~ilptx.settlement.plugin.SettlingPlugin` on :class:`~ilptx_lightning.module.LightningModule`."""

from __future__ import annotations

from ilptx.plugins.hookspecs import hookimpl
from ilptx.settlement.plugin import settling_plugin_factory

from ilptx_lightning.module import LightningModule

__all__ = ["lightning_plugin", "ilptx_ledger_plugins"]

#: ``factory(options, *, account_id, services) -> SettlingPlugin`` (BTP client/peer role)
lightning_plugin = settling_plugin_factory(LightningModule)


@hookimpl
def ilptx_ledger_plugins():
    """:returns: ``{"lightning": factory, "ilp-plugin-lightning": factory}``."""
    return {"lightning": lightning_plugin, "ilp-plugin-lightning": lightning_plugin}
