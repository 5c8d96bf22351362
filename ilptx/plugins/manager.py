"""Building the pluggy plugin manager and looking up ledger plugin factories."""

from __future__ import annotations

from typing import Callable

import pluggy

from ilptx.errors import ConfigError
from ilptx.plugins import hookspecs

__all__ = ["make_plugin_manager", "ledger_plugin_factories", "middleware_factories"]


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build the plugin manager: hookspecs, the built-in plugins, then the ``ilptx`` entry points.

    Built-ins are registered first, under their own names, so an installed distribution
    cannot silently replace them (pluggy skips an entry point whose name is taken).

    :param load_entry_points: load third-party distributions (off in some unit tests).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    from ilptx.plugins import btp, mini_accounts, stream_receiver  # built-ins, registered like any third-party plugin

    pm.register(btp, name="ilptx.builtin.btp")
    pm.register(mini_accounts, name="ilptx.builtin.mini_accounts")
    pm.register(stream_receiver, name="ilptx.builtin.stream-receiver")
    if load_entry_points:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    return pm


def _collect(results, what: str) -> dict[str, Callable]:
    factories: dict[str, Callable] = {}
    for result in results:
        for name, factory in (result or {}).items():
            if name in factories and factories[name] is not factory:
                raise ConfigError(what, f"two installed plugins both claim the name {name!r}")
            factories[name] = factory
    return factories


def ledger_plugin_factories(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Collect the name → factory map from every ``ilptx_ledger_plugins`` implementation.

    :raises ConfigError: two plugins claim the same name.
    """
    return _collect(pm.hook.ilptx_ledger_plugins(), "plugin")


def middleware_factories(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Collect the type → factory map from every ``ilptx_middlewares`` implementation.

    :raises ConfigError: two plugins claim the same type name.
    """
    return _collect(pm.hook.ilptx_middlewares(), "middlewares")
