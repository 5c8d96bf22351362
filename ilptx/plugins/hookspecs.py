"""The pluggy hook specifications of ilptx: the contract for third-party distributions.

A distribution exposes a module (or object) under the ``ilptx`` entry-point group::

    [options.entry_points]
    ilptx =
        my-ledger = my_package.ilptx_hooks

and implements any of these hooks with :data:`hookimpl`. Hooks run at start-up only, never
on the per-packet path. Built-in plugins (``btp``) register through the same hooks.
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
        ``factory(options: dict, *, account_id: str, reactor, log) -> ILedgerPlugin``
        (:class:`ilptx.interfaces.ILedgerPlugin`). Two distributions claiming the same
        name stop start-up with a :class:`ilptx.errors.ConfigError`.
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
