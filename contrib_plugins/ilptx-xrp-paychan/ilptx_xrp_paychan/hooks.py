"""The ``ilptx`` entry point of this distribution: ledger plugins ``xrp-paychan`` and
``ilp-plugin-xrp-paychan`` (the JS package's name, so a config written for ilp-connector reads
the same), ``xrp-asym-client`` / ``ilp-plugin-xrp-asym-client`` (:mod:`ilptx_xrp_paychan.asym_client`) and
``xrp-asym-server`` / ``ilp-plugin-xrp-asym-server`` (:mod:`ilptx_xrp_paychan.asym_server`)."""

from __future__ import annotations

from ilptx.plugins.hookspecs import hookimpl

from ilptx_xrp_paychan.asym_client import xrp_asym_client_plugin
from ilptx_xrp_paychan.asym_server import xrp_asym_server_plugin
from ilptx_xrp_paychan.module import xrp_paychan_plugin

__all__ = ["ilptx_ledger_plugins"]


@hookimpl
def ilptx_ledger_plugins():
    """:returns: ``{"xrp-paychan": factory, "ilp-plugin-xrp-paychan": factory, "xrp-asym-client":
    factory, "ilp-plugin-xrp-asym-client": factory, "xrp-asym-server": factory, "ilp-plugin-xrp-asym-server":
    factory}``."""
    return {"xrp-paychan": xrp_paychan_plugin, "ilp-plugin-xrp-paychan": xrp_paychan_plugin,
            "xrp-asym-client": xrp_asym_client_plugin, "ilp-plugin-xrp-asym-client": xrp_asym_client_plugin,
            "xrp-asym-server": xrp_asym_server_plugin, "ilp-plugin-xrp-asym-server": xrp_asym_server_plugin}
