"""Plugin discovery: built-ins and third-party distributions through the same pluggy hook."""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap

import pytest

from ilptx.errors import ConfigError
from ilptx.plugins import hookspecs
from ilptx.plugins.btp import BtpPlugin
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager
from ilptx.plugins.mini_accounts import MiniAccountsPlugin


@pytest.fixture
def installed_distribution(tmp_path, monkeypatch):
    """Install a real (tiny) distribution with an ``ilptx`` entry point onto sys.path."""
    pkg = tmp_path / "ilptx_fakeledger"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from zope.interface import implementer
        from ilptx.interfaces import ILedgerPlugin
        from ilptx.plugins.hookspecs import hookimpl
        from ilptx.testing import MemoryPlugin

        def make(options, *, account_id, reactor, log):
            plugin = MemoryPlugin(account_id)
            plugin.options = options
            return plugin

        @hookimpl
        def ilptx_ledger_plugins():
            return {"fake-ledger": make}
    '''))
    dist = tmp_path / "ilptx_fakeledger-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ilptx-fakeledger\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ilptx]\nfake-ledger = ilptx_fakeledger\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "ilptx_fakeledger"
    sys.modules.pop("ilptx_fakeledger", None)


def test_builtin_btp_answers_to_both_names():
    """``btp`` and ``ilp-plugin-btp`` both load the built-in BTP plugin."""
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    assert factories["btp"] is BtpPlugin and factories["ilp-plugin-btp"] is BtpPlugin


def test_builtin_names_are_exactly_btp_mini_accounts_and_stream_receiver():
    """Without entry points the installed names are the built-ins (btp and mini-accounts under both names)."""
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    assert set(factories) == {"btp", "ilp-plugin-btp", "mini-accounts", "ilp-plugin-mini-accounts", "stream-receiver"}
    assert factories["mini-accounts"] is MiniAccountsPlugin is factories["ilp-plugin-mini-accounts"]


def test_third_party_distribution_is_found_through_entry_point(installed_distribution):
    """A pip-installed distribution's ``ilptx`` entry point adds its plugin names."""
    pm = make_plugin_manager()
    assert pm.get_plugin("fake-ledger") is not None
    factories = ledger_plugin_factories(pm)
    assert set(factories) == {"btp", "ilp-plugin-btp", "mini-accounts", "ilp-plugin-mini-accounts",
                              "stream-receiver", "fake-ledger"}
    plugin = factories["fake-ledger"]({"x": 1}, account_id="acct", reactor=None, log=None)
    assert plugin.account_id == "acct" and plugin.options == {"x": 1}


def test_third_party_cannot_take_a_builtin_name_silently():
    """Two plugins claiming one name stop start-up with a ConfigError."""
    pm = make_plugin_manager(load_entry_points=False)

    class Impostor:
        @hookspecs.hookimpl
        def ilptx_ledger_plugins(self):
            return {"btp": object()}

    pm.register(Impostor())
    with pytest.raises(ConfigError, match="both claim the name 'btp'"):
        ledger_plugin_factories(pm)


def test_every_hookspec_is_prefixed_and_documented():
    """Every hook is named ilptx_* and its docstring states the contract (returns/shape)."""
    hooks = [obj for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(obj, "ilptx_spec")]
    assert hooks, "no hookspecs found"
    for hook in hooks:
        assert hook.__name__.startswith("ilptx_")
        assert hook.__doc__ and ":returns:" in hook.__doc__
