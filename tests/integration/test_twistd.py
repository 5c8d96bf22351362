"""``twistd -n ilpconnector`` as a real process: help, config errors, boot and clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration


def run_twistd(*args, timeout=60, env=None):
    return subprocess.run(TWISTD + list(args), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def test_help_lists_config_option():
    """``twistd ilpconnector --help`` works and documents --config."""
    result = run_twistd("ilpconnector", "--help")
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout


def test_bad_config_is_one_line_and_nonzero(tmp_path):
    """An invalid key stops start-up with one line naming it, no traceback, non-zero exit."""
    path = tmp_path / "bad.yml"
    path.write_text("ilpAddress: test.x\naccounts:\n  peer: {relation: peer, plugin: btp, assetCode: X, assetScale: 999}\n")
    result = run_twistd("--nodaemon", "--pidfile=", "ilpconnector", "--config", str(path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["ilpconnector: config error: accounts.peer.assetScale: must be an integer 0..255"]


def test_unknown_plugin_names_installed_plugins(tmp_path):
    """An unknown plugin name stops start-up listing the installed plugin names."""
    path = tmp_path / "c.yml"
    path.write_text(json.dumps({"ilpAddress": "test.x", "accounts": {
        "peer": {"relation": "peer", "plugin": "ilp-plugin-nope", "assetCode": "X", "assetScale": 2}}}))
    result = run_twistd("--nodaemon", "--pidfile=", "ilpconnector", "--config", str(path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    prefix = "ilpconnector: config error: accounts.peer.plugin: unknown plugin 'ilp-plugin-nope'; installed: "
    assert line.startswith(prefix)
    installed = line[len(prefix):].split(", ")
    assert installed == sorted(installed)  # whatever else is installed in this environment, the built-ins are there
    assert {"btp", "ilp-plugin-btp", "ilp-plugin-mini-accounts", "mini-accounts", "stream-receiver"} <= set(installed)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_embedded_default_config_boots_and_stops_cleanly(processes, sig):
    """With no --config and no CONNECTOR_* the embedded default runs (127.0.0.1:7768/7769); SIGTERM/SIGINT stop it cleanly.

    twistd re-raises the stop signal once the reactor has shut down cleanly (the POSIX
    convention, which systemd counts as a clean stop), so the status is 0 or -signal; the
    log proves the connector itself stopped in order.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    connector = processes.run(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector"], env=env, inherit=False)
    for port in (7768, 7769):
        wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(sig), sig, connector)
    out = connector.full_output()
    assert "ilptx connector test.ilptx starting with 2 accounts" in out
    assert "ilptx connector test.ilptx stopped" in out


def test_environment_alone_is_the_config_when_accounts_are_set(processes):
    """CONNECTOR_ACCOUNTS without --config: the environment alone is the config (as the reference)."""
    (port,) = free_ports(1)
    accounts = {"solo": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                         "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": "s"}}}}
    connector = processes.connector([], env={"CONNECTOR_ACCOUNTS": json.dumps(accounts),
                                             "CONNECTOR_ILP_ADDRESS": "test.envonly"})
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    out = connector.full_output()
    assert "ilptx connector test.envonly starting with 1 accounts" in out  # not the default's alice/bob
