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
