"""The plugin host: finding ledger plugins and middleware types (pluggy), and making and
checking each account's ledger plugin (zope.interface).

Everything that can be wrong with an installed plugin stops start-up with one
:class:`~ilptx.errors.ConfigError` line, never a traceback:

* an ``ilptx`` entry point that fails to import or register, or that implements a hook
  ilptx does not define (a misspelling such as ``ilptx_ledger_plugin``): the key names the
  entry point (``entry point 'my-ledger' (my_package.hooks, my-dist 1.0)``);
* a hook that raises or returns something other than a ``dict`` of ``str`` → callable: the
  same;
* a factory that cannot be called as ``factory(options, *, account_id, services)``, or that
  fails, or returns an object that does not provide :class:`~ilptx.interfaces.ILedgerPlugin`
  (and every optional interface it declares): the key is ``accounts.<id>.plugin``.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import sys
from collections.abc import Mapping
from typing import Callable, Optional

import pluggy
from twisted.logger import Logger
from zope.interface.exceptions import BrokenImplementation, BrokenMethodImplementation, DoesNotImplement, Invalid
from zope.interface.interface import Method
from zope.interface.verify import verifyObject

from ilptx.errors import ConfigError
from ilptx.interfaces import LEDGER_PLUGIN_ABILITIES, ILedgerPlugin
from ilptx.plugins import hookspecs
from ilptx.plugins.base import PluginServices

__all__ = ["make_plugin_manager", "ledger_plugin_factories", "middleware_factories", "make_ledger_plugin",
           "FACTORY_CALL"]

#: How the connector calls every ledger plugin factory.
FACTORY_CALL = "factory(options, *, account_id, services)"

#: the built-in plugin modules are registered as ``ilptx.builtin.<module>``
BUILTIN_PREFIX = "ilptx.builtin."

_log = Logger(namespace="ilptx.plugins")


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build the plugin manager: hookspecs, the built-in plugins, then the ``ilptx`` entry points.

    Built-ins are registered first, under their own names, so an installed distribution
    cannot silently replace them (pluggy skips an entry point whose name is taken).

    :param load_entry_points: load third-party distributions; tests of the host pass
        ``False`` so that they do not depend on what is installed in the environment.
    :raises ConfigError: an entry point fails to import or register, or implements an
        unknown hook (key: the entry point).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    from ilptx.plugins import btp, mini_accounts, stream_receiver  # built-ins, registered like any third-party plugin

    for module in (btp, mini_accounts, stream_receiver):
        pm.register(module, name=BUILTIN_PREFIX + module.__name__.rpartition(".")[2])
    if load_entry_points:
        for entry_point, _ in _entry_points(hookspecs.PROJECT_NAME):
            limit = sys.getrecursionlimit()
            try:
                pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME, name=entry_point.name)
            except Exception as exc:
                raise ConfigError(_describe_entry_point(pm, entry_point.name),
                                  f"cannot load {entry_point.value}: {_one_line(exc)}") from None
            finally:
                _keep_recursion_limit(limit, pm, entry_point.name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(_describe_entry_point(pm, pm.get_name(exc.plugin) or "?"),
                          _unknown_hook(pm, exc.plugin)) from None
    return pm


def _keep_recursion_limit(limit: int, pm: pluggy.PluginManager, name: str) -> None:
    """Put the interpreter's recursion limit back to ``limit`` if loading entry point ``name``
    changed it, with a warning naming it.

    Some libraries raise it when imported (``py_ecc``, which web3/eth-account bring, sets
    100000). Past what the C stack holds, deep recursion -- ``json.loads`` of a deeply nested
    document from a peer or an admin client, say -- then crashes the whole connector with a
    segmentation fault instead of raising :class:`RecursionError`, so ilptx keeps the limit
    its own code and its input checks are written for.
    """
    changed = sys.getrecursionlimit()
    if changed != limit:
        sys.setrecursionlimit(limit)
        _log.warn("{entry_point} set the recursion limit to {changed}; put back to {limit} (a deeper recursion "
                  "would crash the connector instead of failing one request)",
                  entry_point=_describe_entry_point(pm, name), changed=changed, limit=limit)


def _unknown_hook(pm: pluggy.PluginManager, plugin) -> str:
    """What ``check_pending`` found in ``plugin``, with the hook it was probably meant to be."""
    callers = {name: getattr(pm.hook, name) for name in vars(pm.hook)}
    defined = sorted(name for name, caller in callers.items() if caller.has_spec())
    problems = []
    for name, caller in sorted(callers.items()):
        if not caller.has_spec() and any(impl.plugin is plugin for impl in caller.get_hookimpls()):
            close = difflib.get_close_matches(name, defined, n=1)
            problems.append(f"unknown hook {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "; ".join(problems) + f"; ilptx defines {', '.join(defined)}"


def _entry_points(group: str, name: Optional[str] = None):
    """Yield ``(entry point, distribution)`` of each installed entry point of ``group`` (and
    ``name``), once per distribution name, as ``entry_points(group=...)`` finds them on 3.10+
    (3.9's has no ``group``, and its entry points no ``dist``)."""
    seen = set()
    for dist in importlib.metadata.distributions():
        dist_name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if dist_name in seen:
            continue
        seen.add(dist_name)
        for entry_point in dist.entry_points:
            if entry_point.group == group and (name is None or entry_point.name == name):
                yield entry_point, dist


def _describe_entry_point(pm: pluggy.PluginManager, name: str) -> str:
    """``entry point 'my-ledger' (my_package.hooks, my-dist 1.0)``, or the built-in's name."""
    if name.startswith(BUILTIN_PREFIX):
        return f"built-in plugin {name!r}"
    for entry_point, dist in _entry_points(hookspecs.PROJECT_NAME, name):
        return f"entry point {name!r} ({entry_point.value}, {dist.metadata['Name']} {dist.version})"
    return f"plugin {name!r}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _collect(pm: pluggy.PluginManager, hook_name: str) -> dict[str, Callable]:
    """Call ``hook_name`` of every registered plugin, checking each answer on its own."""
    factories: dict[str, Callable] = {}
    owners: dict[str, str] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():  # in registration order
        where = _describe_entry_point(pm, impl.plugin_name)
        try:
            result = impl.function()
        except Exception as exc:
            raise ConfigError(where, f"{hook_name}() failed: {_one_line(exc)}") from None
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise ConfigError(where, f"{hook_name}() must return a dict of name -> factory, "
                                     f"not {type(result).__name__}")
        for name, factory in result.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(where, f"{hook_name}() returned the name {name!r}; names are non-empty strings")
            if not callable(factory):
                raise ConfigError(where, f"{hook_name}() returned {type(factory).__name__} for {name!r}, "
                                         "not a callable factory")
            if name in factories and factories[name] is not factory:
                raise ConfigError(where, f"two installed plugins both claim the name {name!r} "
                                         f"(the other: {owners[name]})")
            factories[name], owners[name] = factory, where
    return factories


def ledger_plugin_factories(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Collect the name → factory map from every ``ilptx_ledger_plugins`` implementation.

    :raises ConfigError: a hook fails or returns the wrong type, or two plugins claim the
        same name (key: the entry point).
    """
    return _collect(pm, "ilptx_ledger_plugins")


def middleware_factories(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Collect the type → factory map from every ``ilptx_middlewares`` implementation.

    :raises ConfigError: as :func:`ledger_plugin_factories`.
    """
    return _collect(pm, "ilptx_middlewares")


def make_ledger_plugin(plugin_name: str, factory: Callable, options: dict, *, account_id: str,
                       services: PluginServices):
    """Make one account's ledger plugin and check it is one.

    The factory is called as :data:`FACTORY_CALL`; the result must provide
    :class:`~ilptx.interfaces.ILedgerPlugin` and every optional interface it declares
    (:data:`~ilptx.interfaces.LEDGER_PLUGIN_ABILITIES`), as
    :func:`zope.interface.verify.verifyObject` checks them.

    :param plugin_name: the account's ``plugin`` value (for messages).
    :returns: the plugin.
    :raises ConfigError: the factory raised one (invalid options: passed on unchanged); or,
        with key ``accounts.<account_id>.plugin``: the factory's signature does not take that
        call, the factory failed, or its result does not implement the interfaces.
    """
    key = f"accounts.{account_id}.plugin"
    what = f"plugin {plugin_name!r} ({_qualname(factory)})"
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # not introspectable (e.g. a C callable): the call tells
        signature = None
    if signature is not None:
        try:
            signature.bind(options, account_id=account_id, services=services)
        except TypeError as exc:
            raise ConfigError(key, f"{what}: the factory{signature} cannot be called as "
                                   f"{FACTORY_CALL}: {exc}") from None
    try:
        plugin = factory(options, account_id=account_id, services=services)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(key, f"{what}: the factory failed: {_one_line(exc)}") from None
    for interface in (ILedgerPlugin, *LEDGER_PLUGIN_ABILITIES):
        if interface is ILedgerPlugin or interface.providedBy(plugin):
            try:
                verifyObject(interface, plugin)
            except Invalid as exc:
                raise ConfigError(key, f"{what} made {type(plugin).__name__}, which is not a valid "
                                       f"{interface.__name__}: {_invalid(exc, interface)}") from None
    return plugin


def _qualname(factory: Callable) -> str:
    name = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{getattr(factory, '__module__', '?')}.{name}"


def _invalid(exc: Invalid, interface) -> str:
    """What ``verifyObject`` found, in one line: ``missing send_money(); send_data(): ...``."""
    problems = []
    for one in getattr(exc, "exceptions", None) or [exc]:
        if isinstance(one, DoesNotImplement):
            problems.append(f"does not declare @implementer({interface.__name__})")
        elif isinstance(one, BrokenMethodImplementation):
            method = one.method if isinstance(one.method, str) else one.method.getName()
            problems.append(f"{method}(): {' '.join(str(one.mess).split())}")
        elif isinstance(one, BrokenImplementation):
            name = one.name if isinstance(one.name, str) else one.name.getName()
            problems.append(f"missing {name}()" if isinstance(interface.get(name), Method) else f"missing {name}")
        else:
            problems.append(" ".join(str(one).split()))
    return "; ".join(problems)
