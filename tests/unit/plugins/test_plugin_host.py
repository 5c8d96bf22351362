"""The plugin host: discovery through pluggy (built-ins and entry points alike), the one services
object every factory gets, declared optional abilities, and one ConfigError line for every way
an installed plugin can be wrong.

Tests that load entry points see only a temporary distribution (an isolated entry-point set), so
they pass whatever else is installed in the environment.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import inspect
import sys
import textwrap

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from ilptx.config import parse_config
from ilptx.errors import ConfigError
from ilptx.interfaces import IAccountAddressAware, IAdminInfoProvider, ILedgerPlugin
from ilptx.node import build_connector
from ilptx.plugins import hookspecs
from ilptx.plugins.base import PluginHandlers, PluginServices
from ilptx.plugins.btp import BtpPlugin, btp_factory
from ilptx.plugins.manager import ledger_plugin_factories, make_ledger_plugin, make_plugin_manager, middleware_factories
from ilptx.plugins.mini_accounts import MiniAccountsPlugin, mini_accounts_factory
from ilptx.plugins.stream_receiver import StreamReceiverPlugin, stream_receiver_factory
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, MemoryPluginFactory, plugin_services

BUILTIN_NAMES = {"btp", "ilp-plugin-btp", "mini-accounts", "ilp-plugin-mini-accounts", "stream-receiver"}

GOOD_MODULE = '''
from ilptx.plugins.hookspecs import hookimpl
from ilptx.testing import MemoryPlugin

def make(options, *, account_id, services):
    plugin = MemoryPlugin(account_id)
    plugin.options = options
    return plugin

@hookimpl
def ilptx_ledger_plugins():
    return {"fake-ledger": make}
'''


@pytest.fixture
def distribution(tmp_path, monkeypatch):
    """``distribution(source, module=...)`` puts a real (tiny) distribution with an ``ilptx`` entry
    point on sys.path: a ``.dist-info`` with ``entry_points.txt``, and the module. Entry points
    are then looked up in that directory only (whatever the environment has installed)."""
    made = []
    everywhere = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: everywhere(path=[str(tmp_path)]))

    def make(source: str, module: str = "ilptx_fakeledger", entry_name: str = "fake-ledger") -> str:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        dist = tmp_path / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[ilptx]\n{entry_name} = {module}\n")
        made.append(module)
        importlib.invalidate_caches()
        return module

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for module in made:
        sys.modules.pop(module, None)


def services():
    return plugin_services(Clock(), account_id="alice")


# -- discovery -------------------------------------------------------------------------------

def test_builtin_names_are_exactly_btp_mini_accounts_and_stream_receiver():
    """Without entry points the installed names are the built-ins, each name on its services factory."""
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    assert set(factories) == BUILTIN_NAMES
    assert factories["btp"] is btp_factory is factories["ilp-plugin-btp"]
    assert factories["mini-accounts"] is mini_accounts_factory is factories["ilp-plugin-mini-accounts"]
    assert factories["stream-receiver"] is stream_receiver_factory


def test_third_party_distribution_is_found_through_entry_point(distribution):
    """An installed distribution's ``ilptx`` entry point adds its plugin names next to the built-ins."""
    module = distribution(GOOD_MODULE)
    pm = make_plugin_manager()
    assert pm.get_plugin("fake-ledger") is sys.modules[module]
    factories = ledger_plugin_factories(pm)
    assert set(factories) == BUILTIN_NAMES | {"fake-ledger"}
    plugin = make_ledger_plugin("fake-ledger", factories["fake-ledger"], {"x": 1}, account_id="acct",
                                services=services())
    assert plugin.account_id == "acct" and plugin.options == {"x": 1}


def test_third_party_cannot_take_a_builtin_name_silently():
    """Two plugins claiming one name stop start-up with a ConfigError naming the second and the first."""
    pm = make_plugin_manager(load_entry_points=False)

    class Impostor:
        @hookspecs.hookimpl
        def ilptx_ledger_plugins(self):
            return {"btp": MemoryPluginFactory()}

    pm.register(Impostor(), name="impostor")
    with pytest.raises(ConfigError) as info:
        ledger_plugin_factories(pm)
    assert str(info.value) == ("plugin 'impostor': two installed plugins both claim the name 'btp' "
                               "(the other: built-in plugin 'ilptx.builtin.btp')")


def test_every_hookspec_is_prefixed_and_documented():
    """Every hook is named ilptx_* and its docstring states the contract (returns/shape)."""
    hooks = [obj for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(obj, "ilptx_spec")]
    assert hooks, "no hookspecs found"
    for hook in hooks:
        assert hook.__name__.startswith("ilptx_")
        assert hook.__doc__ and ":returns:" in hook.__doc__


# -- hook-level failures: one line naming the entry point ------------------------------------------

def test_misspelled_hook_names_the_entry_point_and_the_right_hook(distribution):
    """A hookimpl named ilptx_ledger_plugin (no s) is refused (check_pending), naming the entry point and the hook."""
    distribution(GOOD_MODULE.replace("def ilptx_ledger_plugins", "def ilptx_ledger_plugin"))
    with pytest.raises(ConfigError) as info:
        make_plugin_manager()
    assert str(info.value) == (
        "entry point 'fake-ledger' (ilptx_fakeledger, ilptx-fakeledger 1.0): unknown hook 'ilptx_ledger_plugin' "
        "(did you mean 'ilptx_ledger_plugins'?); ilptx defines ilptx_ledger_plugins, ilptx_middlewares")


def test_entry_point_that_fails_to_import_is_one_line(distribution):
    """An entry point whose module raises on import stops start-up with the entry point and the error, one line."""
    distribution("import ilptx_no_such_dependency\n")
    with pytest.raises(ConfigError) as info:
        make_plugin_manager()
    assert str(info.value) == ("entry point 'fake-ledger' (ilptx_fakeledger, ilptx-fakeledger 1.0): cannot load "
                               "ilptx_fakeledger: ModuleNotFoundError: No module named 'ilptx_no_such_dependency'")


def test_hookimpl_with_arguments_the_spec_lacks_is_one_line(distribution):
    """A hookimpl taking an argument the hookspec does not have is refused at registration, naming the entry point."""
    distribution(GOOD_MODULE.replace("def ilptx_ledger_plugins():", "def ilptx_ledger_plugins(config):"))
    with pytest.raises(ConfigError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert message.startswith("entry point 'fake-ledger' (ilptx_fakeledger, ilptx-fakeledger 1.0): cannot load "
                              "ilptx_fakeledger: PluginValidationError: ")
    assert "{'config'}" in message and "\n" not in message


@pytest.mark.parametrize("returned, problem", [
    ("['fake-ledger']", "ilptx_ledger_plugins() must return a dict of name -> factory, not list"),
    ("{'fake-ledger': 42}", "ilptx_ledger_plugins() returned int for 'fake-ledger', not a callable factory"),
    ("{7: make}", "ilptx_ledger_plugins() returned the name 7; names are non-empty strings"),
    ("1 / 0", "ilptx_ledger_plugins() failed: ZeroDivisionError: division by zero"),
])
def test_hook_returning_the_wrong_type_names_the_entry_point(distribution, returned, problem):
    """A hook that raises or returns anything but a dict of str -> callable: one ConfigError naming the entry point."""
    distribution(GOOD_MODULE.replace('return {"fake-ledger": make}', f"return {returned}"))
    with pytest.raises(ConfigError) as info:
        ledger_plugin_factories(make_plugin_manager())
    assert str(info.value) == f"entry point 'fake-ledger' (ilptx_fakeledger, ilptx-fakeledger 1.0): {problem}"


def test_middleware_hook_is_checked_the_same_way():
    """ilptx_middlewares results are checked like ledger plugin results."""
    pm = make_plugin_manager(load_entry_points=False)

    class Bad:
        @hookspecs.hookimpl
        def ilptx_middlewares(self):
            return {"audit": "not callable"}

    pm.register(Bad(), name="bad-middleware")
    with pytest.raises(ConfigError, match=r"^plugin 'bad-middleware': ilptx_middlewares\(\) returned str for 'audit'"):
        middleware_factories(pm)


# -- making a plugin: the factory call and verifyObject ----------------------------------------

called: list = []


def old_style(options, *, account_id, reactor, log):
    """A factory with the signature ilptx used before the services object."""
    called.append(options)


def broken(options, *, account_id, services):
    """A factory with a bug."""
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def strict(options, *, account_id, services):
    """A factory refusing its options."""
    raise ConfigError(f"accounts.{account_id}.options.port", "must be an integer")


def test_factory_with_the_old_signature_is_refused_before_it_is_called():
    """A factory not callable as factory(options, *, account_id, services) is a ConfigError at accounts.<id>.plugin."""
    with pytest.raises(ConfigError) as info:
        make_ledger_plugin("old", old_style, {}, account_id="alice", services=services())
    assert str(info.value) == (
        "accounts.alice.plugin: plugin 'old' (test_plugin_host.old_style): the factory(options, *, account_id, "
        "reactor, log) cannot be called as factory(options, *, account_id, services): "
        "missing a required argument: 'reactor'")
    assert called == []


def test_factory_raising_type_error_is_one_line_but_config_error_passes_unchanged():
    """A factory's TypeError (or any failure) is a ConfigError at accounts.<id>.plugin; its own ConfigError is kept."""
    with pytest.raises(ConfigError) as info:
        make_ledger_plugin("broken", broken, {}, account_id="alice", services=services())
    assert str(info.value) == ("accounts.alice.plugin: plugin 'broken' (test_plugin_host.broken): the factory "
                               "failed: TypeError: unsupported operand type(s) for +: 'int' and 'str'")

    with pytest.raises(ConfigError) as info:
        make_ledger_plugin("strict", strict, {}, account_id="alice", services=services())
    assert str(info.value) == "accounts.alice.options.port: must be an integer"


class ForgetfulPlugin(MemoryPlugin):
    """A MemoryPlugin that lost send_money and whose send_data takes no packet."""

    send_money = None

    def send_data(self):
        return None


@implementer(ILedgerPlugin)
class Undeclared:
    """Has only an account id."""

    account_id = "alice"


class NotDeclaring(PluginHandlers):
    """Has every method of ILedgerPlugin but does not declare it."""

    account_id = "alice"

    def connect(self):
        """Never called."""

    def disconnect(self):
        """Never called."""

    def is_connected(self):
        """Never called."""

    def send_data(self, data):
        """Never called."""

    def send_money(self, amount, idempotency_key=None):
        """Never called."""


@pytest.mark.parametrize("made, problem", [
    (ForgetfulPlugin, "ForgetfulPlugin, which is not a valid ILedgerPlugin: send_data(): implementation doesn't "
                      "allow enough arguments; send_money(): implementation is not a method"),
    (Undeclared, "Undeclared, which is not a valid ILedgerPlugin: missing connect(); missing disconnect(); "
                 "missing is_connected(); missing send_data(); missing send_money(); missing "
                 "register_data_handler(); missing deregister_data_handler(); missing register_money_handler(); "
                 "missing deregister_money_handler(); missing add_connection_listener()"),
])
def test_result_that_is_not_a_ledger_plugin_names_what_is_missing(made, problem):
    """verifyObject's findings (missing or broken methods) become one ConfigError line at accounts.<id>.plugin."""
    with pytest.raises(ConfigError) as info:
        make_ledger_plugin("x", lambda options, *, account_id, services: made(), {}, account_id="alice",
                           services=services())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("accounts.alice.plugin: plugin 'x' (test_plugin_host.")
    assert message.endswith(" made " + problem)


def test_result_that_does_not_declare_the_interface_is_refused():
    """A plugin with every method but no @implementer(ILedgerPlugin) is refused: abilities are declared, not sniffed."""
    with pytest.raises(ConfigError, match=r"made NotDeclaring, which is not a valid ILedgerPlugin: "
                                          r"does not declare @implementer\(ILedgerPlugin\)$"):
        make_ledger_plugin("x", lambda options, *, account_id, services: NotDeclaring(), {}, account_id="alice",
                           services=services())


@implementer(IAccountAddressAware)
class ClaimsAddressAwareness(MemoryPlugin):
    """Declares IAccountAddressAware without set_account_address."""


def test_declared_optional_ability_is_verified_too():
    """A plugin declaring an optional interface it does not implement is refused, naming that interface."""
    with pytest.raises(ConfigError, match=r"made ClaimsAddressAwareness, which is not a valid IAccountAddressAware: "
                                          r"missing set_account_address\(\)$"):
        make_ledger_plugin("x", lambda options, *, account_id, services: ClaimsAddressAwareness(account_id), {},
                           account_id="alice", services=services())


def test_builtin_plugins_declare_their_abilities():
    """mini-accounts and stream-receiver declare IAccountAddressAware; btp declares none; none claims admin info."""
    assert IAccountAddressAware.implementedBy(MiniAccountsPlugin)
    assert IAccountAddressAware.implementedBy(StreamReceiverPlugin)
    assert not IAccountAddressAware.implementedBy(BtpPlugin)
    assert not any(IAdminInfoProvider.implementedBy(cls) for cls in (BtpPlugin, MiniAccountsPlugin,
                                                                      StreamReceiverPlugin))


def test_builtin_factories_build_verified_plugins_from_services():
    """Each built-in factory, called as the connector calls it, gives a plugin that passes verification."""
    reactor = MemoryReactorClock()
    store = MemoryStore()
    options = {"btp": {"listener": {"port": 0, "secret": "s"}}, "mini-accounts": {"port": 0},
               "stream-receiver": {}}
    pm = make_plugin_manager(load_entry_points=False)
    for name, factory in ledger_plugin_factories(pm).items():
        base = name.removeprefix("ilp-plugin-")
        plugin = make_ledger_plugin(name, factory, options[base], account_id="acct",
                                    services=PluginServices(reactor=reactor, log=services().log, store=store))
        assert plugin.account_id == "acct"
        assert plugin._reactor is reactor
    mini = mini_accounts_factory({"port": 0}, account_id="acct",
                                 services=PluginServices(reactor=reactor, log=services().log, store=store))
    assert mini._store is store


# -- in the connector ----------------------------------------------------------------------------

def connector_config(**accounts):
    return parse_config({"ilpAddress": "test.node", "accounts": accounts or {
        "alice": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9}}}, env={})


def test_connector_hands_every_factory_one_frozen_services_object():
    """build_connector calls each factory with (options, account_id=, services=PluginServices(reactor, log, store))."""
    seen = []

    def make(options, *, account_id, services):
        seen.append((options, account_id, services))
        return MemoryPlugin(account_id)

    clock, store = Clock(), MemoryStore()
    build_connector(parse_config({"ilpAddress": "test.node", "accounts": {
        "alice": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, "options": {"a": [1]}}}},
        env={}), reactor=clock, plugin_factories={"mem": make}, store=store, custom_middleware_factories={})
    [(options, account_id, given)] = seen
    assert (options, account_id) == ({"a": [1]}, "alice")
    assert type(given) is PluginServices
    assert given.reactor is clock and given.store is store and given.log.namespace == "ilptx.account.alice"
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.store = None


def test_connector_refuses_a_bad_plugin_with_one_config_error():
    """build_connector turns a plugin that fails verification into a ConfigError at accounts.<id>.plugin."""
    with pytest.raises(ConfigError) as info:
        build_connector(connector_config(), reactor=Clock(), store=MemoryStore(), custom_middleware_factories={},
                        plugin_factories={"mem": lambda options, *, account_id, services: ForgetfulPlugin(account_id)})
    assert info.value.key == "accounts.alice.plugin"
    assert "send_money(): implementation is not a method" in str(info.value)


class SniffablePlugin(MemoryPlugin):
    """Has set_account_address but does not declare IAccountAddressAware."""

    def set_account_address(self, address, asset_code=None, asset_scale=None):
        self.told = (address, asset_code, asset_scale)


@implementer(IAccountAddressAware)
class AddressAwarePlugin(SniffablePlugin):
    """Declares IAccountAddressAware."""


def test_only_a_declared_address_aware_plugin_is_told_its_address():
    """The connector tells a child's plugin its address only when it declares IAccountAddressAware (no getattr)."""
    made = {}

    def make(options, *, account_id, services):
        made[account_id] = (AddressAwarePlugin if account_id == "alice" else SniffablePlugin)(account_id)
        return made[account_id]

    build_connector(connector_config(
        alice={"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
        bob={"relation": "child", "plugin": "mem", "assetCode": "EUR", "assetScale": 2}),
        reactor=Clock(), plugin_factories={"mem": make}, store=MemoryStore(), custom_middleware_factories={})
    assert made["alice"].told == ("test.node.alice", "USD", 9)
    assert not hasattr(made["bob"], "told")


def test_entry_point_that_raises_the_recursion_limit_gets_it_put_back(distribution):
    """A plugin whose import raises the recursion limit (py_ecc sets 100000) gets it put back, with a warning naming it."""
    from twisted.logger import capturedLogs

    before = sys.getrecursionlimit()
    distribution("import sys\nsys.setrecursionlimit(54321)\n" + GOOD_MODULE)
    try:
        with capturedLogs() as events:
            make_plugin_manager()
        assert sys.getrecursionlimit() == before
        warnings = [e for e in events if "recursion limit" in e.get("log_format", "")]
        assert len(warnings) == 1 and warnings[0]["changed"] == 54321 and warnings[0]["limit"] == before
        assert "fake-ledger" in warnings[0]["entry_point"]
    finally:
        sys.setrecursionlimit(before)
