"""A plugin package written outside the tree, loaded by a real ``twistd -n ilpconnector``: each way it can
be wrong (a forgotten method, a wrong factory signature, a misspelled hook) is one stderr line and exit 2.

The package is a temporary distribution (a module plus a ``.dist-info`` whose ``entry_points.txt``
has the ``ilptx`` group) on the process's ``PYTHONPATH``: what ``pip install`` would leave behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration

PLUGIN_MODULE = '''
from twisted.internet.defer import succeed
from zope.interface import implementer

from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.base import PluginHandlers
from ilptx.plugins.hookspecs import hookimpl


@implementer(ILedgerPlugin)
class FakeLedger(PluginHandlers):
    def __init__(self, options, *, account_id, services):
        self.account_id = account_id
        self._log = services.log
        self._init_handlers()

    def connect(self):
        return succeed(None)

    def disconnect(self):
        return succeed(None)

    def is_connected(self):
        return True

    def send_data(self, data):
        return succeed(b"")

    def send_money(self, amount, idempotency_key=None):
        return succeed(None)


@hookimpl
def ilptx_ledger_plugins():
    return {"fake-ledger": FakeLedger}
'''

VARIANTS = {
    "forgets a method": (
        PLUGIN_MODULE.replace("    def send_money(self, amount, idempotency_key=None):\n        return succeed(None)\n",
                              ""),
        "ilpconnector: config error: accounts.alice.plugin: plugin 'fake-ledger' (ilptx_fakeledger.FakeLedger) "
        "made FakeLedger, which is not a valid ILedgerPlugin: missing send_money()"),
    "wrong factory signature": (
        PLUGIN_MODULE.replace("def __init__(self, options, *, account_id, services):",
                              "def __init__(self, options, *, account_id, reactor, log):")
                     .replace("self._log = services.log", "self._log = log"),
        "ilpconnector: config error: accounts.alice.plugin: plugin 'fake-ledger' (ilptx_fakeledger.FakeLedger): "
        "the factory(options, *, account_id, reactor, log) cannot be called as "
        "factory(options, *, account_id, services): missing a required argument: 'reactor'"),
    "misspelled hook": (
        PLUGIN_MODULE.replace("def ilptx_ledger_plugins():", "def ilptx_ledger_plugin():"),
        "ilpconnector: config error: entry point 'fake-ledger' (ilptx_fakeledger, ilptx-fakeledger 1.0): "
        "unknown hook 'ilptx_ledger_plugin' (did you mean 'ilptx_ledger_plugins'?); "
        "ilptx defines ilptx_ledger_plugins, ilptx_middlewares"),
}


def install_outside_the_tree(site, source: str) -> None:
    """Write the module and its .dist-info (METADATA, entry_points.txt) into ``site``."""
    (site / "ilptx_fakeledger.py").write_text(textwrap.dedent(source))
    dist = site / "ilptx_fakeledger-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ilptx-fakeledger\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ilptx]\nfake-ledger = ilptx_fakeledger\n")


def run_connector(tmp_path, source: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir()
    install_outside_the_tree(site, source)
    config = tmp_path / "connector.json"
    config.write_text(json.dumps({"ilpAddress": "test.host", "accounts": {
        "alice": {"relation": "peer", "plugin": "fake-ledger", "assetCode": "USD", "assetScale": 9}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", "--config", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_broken_out_of_tree_plugin_is_one_line_and_exit_2(tmp_path, variant):
    """A plugin that forgets a method / has a wrong factory signature / misspells a hook: one line, exit 2."""
    source, line = VARIANTS[variant]
    result = run_connector(tmp_path, source)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stderr.splitlines() == [line]
    assert result.returncode == 2


def test_sound_out_of_tree_plugin_starts(tmp_path, processes):
    """The same distribution without a mistake runs in the connector (the control for the three failures above)."""
    site = tmp_path / "site"
    site.mkdir()
    install_outside_the_tree(site, PLUGIN_MODULE)
    (port,) = free_ports(1)
    config = tmp_path / "connector.json"
    config.write_text(json.dumps({"ilpAddress": "test.host", "accounts": {
        "alice": {"relation": "peer", "plugin": "fake-ledger", "assetCode": "USD", "assetScale": 9},
        "bob": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": "s"}}}}}))
    connector = processes.connector(["--config", str(config)], env={"PYTHONPATH": str(site)})
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    assert "account alice (peer) plugin fake-ledger started" in connector.full_output()
