"""The pluggy hook specifications of ilptx: the contract for third-party distributions.

A distribution exposes a module (or object) under the ``ilptx`` entry-point group::

    [options.entry_points]
    ilptx =
        my-ledger = my_package.ilptx_hooks

and implements any of these hooks with :data:`hookimpl`. Hooks run once at start-up, never
on the per-packet path. Built-in plugins (``btp``, ``mini-accounts``, ``stream-receiver``)
register through the same hooks.

The connector is strict about what it loads (:mod:`ilptx.plugins.manager`): an entry point
that fails to import, a function marked :data:`hookimpl` whose name is not one of the hooks
below (pluggy's ``check_pending``; e.g. ``ilptx_ledger_plugin`` without the ``s``), or a hook
that returns anything but a ``dict`` of ``str`` → callable stops start-up with one
:class:`ilptx.errors.ConfigError` line naming the entry point and exit status 2.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ilptx"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate hook implementations with this: ``@hookimpl def ilptx_ledger_plugins(): ...``
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def ilptx_ledger_plugins():
    """Declare ledger plugin factories.

    :returns: ``dict[str, factory]`` mapping every name the plugin answers to in an
        account's ``plugin`` key (e.g. ``{"btp": f, "ilp-plugin-btp": f}``) to a factory
        called once per account that names it::

            factory(options: dict, *, account_id: str,
                    services: ilptx.plugins.base.PluginServices) -> ILedgerPlugin

        ``options`` is the account's ``options``; ``services`` has ``reactor``, ``log`` and
        ``store`` (:class:`ilptx.plugins.base.PluginServices`). The result must provide
        :class:`ilptx.interfaces.ILedgerPlugin` and may declare optional abilities
        (:data:`ilptx.interfaces.LEDGER_PLUGIN_ABILITIES`); both are verified with
        ``zope.interface.verify``. A factory whose signature does not take that call, that
        raises (other than :class:`ilptx.errors.ConfigError` for its options) or whose
        result fails verification stops start-up with one ``ConfigError`` naming
        ``accounts.<id>.plugin``. Two distributions claiming the same name stop start-up too.
    """


@hookspec
def ilptx_middlewares():
    """Declare middleware types for the config's ``middlewares`` key.

    :returns: ``dict[str, factory]`` mapping a type name (the ``type`` in
        ``middlewares: {<name>: {type: <type>, options: {...}}}``) to
        ``factory(options: dict, *, account, services) -> IMiddleware | None``
        (:class:`ilptx.interfaces.IMiddleware`; ``services`` is
        :class:`ilptx.core.middleware.MiddlewareServices`). The factory is called once per
        account; returning ``None`` leaves that account's pipelines alone. Custom middlewares
        run after the built-ins, in config order.
    """
