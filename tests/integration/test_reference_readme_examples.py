"""Every example of the reference connector's README (ilp-connector 23.x: quick start, PM2 env, Docker env, its
built-in store, backend and plugin names) run through ``twistd -n ilpconnector`` unchanged: it starts, or says in
one line (exit status 2) which plugin or backend it lacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration


def clean_env(tmp_path, **variables):
    """This environment without CONNECTOR_* variables, HOME in tmp_path, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return {**env, "HOME": str(tmp_path), **variables}


def wait_for_log(process, text, timeout=20.0):
    """Poll the process's output until ``text`` appears. :raises AssertionError: not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.full_output():
            return
        assert process.proc.poll() is None, f"exited with {process.proc.returncode}\n{process.output()}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout} s\n{process.output()}")


def run_to_exit(env, args=()):
    result = subprocess.run([*TWISTD, "--nodaemon", "--pidfile=", "ilpconnector", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.returncode, lines, result.stdout + result.stderr


def test_quick_start(processes, tmp_path):
    """Quick start: CONNECTOR_STORE_PATH=~/.connector-data CONNECTOR_ACCOUNTS='{}' CONNECTOR_ILP_ADDRESS=test.q…"""
    # the shell expands the ~ of the README's command line; HOME is tmp_path
    env = clean_env(tmp_path, CONNECTOR_STORE_PATH=str(tmp_path / ".connector-data"), CONNECTOR_ACCOUNTS="{}",
                    CONNECTOR_ILP_ADDRESS="test.quickstart")
    connector = processes.run([*TWISTD, "--nodaemon", "--pidfile=", "ilpconnector"], env=env, inherit=False)
    wait_for_log(connector, "ilptx connector test.quickstart ready")
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)


def test_pm2_launch_config_names_the_missing_plugin(tmp_path):
    """The PM2 launch.config.js env (a parent on ilp-plugin-xrp-asym): one line naming that plugin, exit 2."""
    parent = {"relation": "parent", "assetScale": 6, "assetCode": "XRP", "plugin": "ilp-plugin-xrp-asym",
              "options": {}}
    env = clean_env(tmp_path, CONNECTOR_BACKEND="one-to-one", CONNECTOR_SPREAD="0",
                    CONNECTOR_STORE_PATH="/home/bob/connector", CONNECTOR_ACCOUNTS=json.dumps({"up": parent}))
    status, lines, out = run_to_exit(env)
    assert status == 2 and "Traceback" not in out, out
    assert len(lines) == 1 and lines[0].startswith(
        "ilpconnector: config error: accounts.up.plugin: unknown plugin 'ilp-plugin-xrp-asym'; installed: "), out


def test_docker_spread(processes, tmp_path):
    """Docker: -e CONNECTOR_SPREAD='0.005' alone runs the embedded default config with that spread."""
    env = clean_env(tmp_path, CONNECTOR_SPREAD="0.005")
    connector = processes.run([*TWISTD, "--nodaemon", "--pidfile=", "ilpconnector"], env=env, inherit=False)
    for port in (7768, 7769):
        wait_for_port(port, connector)
    wait_for_log(connector, "ilptx connector test.ilptx ready")
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)


@pytest.mark.parametrize("store", ["leveldown", "memdown"])
def test_built_in_store_names(processes, tmp_path, store):
    """The reference's built-in stores (store: leveldown with storePath, memdown) start ilptx."""
    (port,) = free_ports(1)
    accounts = {"alice": {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
                          "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": "alice_secret"}}}}
    env = clean_env(tmp_path, CONNECTOR_ILP_ADDRESS="test.stores", CONNECTOR_STORE=store,
                    CONNECTOR_STORE_PATH=str(tmp_path / "data"), CONNECTOR_ACCOUNTS=json.dumps(accounts))
    connector = processes.run([*TWISTD, "--nodaemon", "--pidfile=", "ilpconnector"], env=env, inherit=False)
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    assert (tmp_path / "data" / "ilptx.sqlite").is_file() == (store == "leveldown")


@pytest.mark.parametrize("backend", ["ecb-plus-xrp", "ecb-plus-coinmarketcap"])
def test_built_in_backends_we_lack_are_named(tmp_path, backend):
    """The reference's backends ilptx does not have: one line naming the backend and the available ones, exit 2."""
    env = clean_env(tmp_path, CONNECTOR_BACKEND=backend, CONNECTOR_ILP_ADDRESS="test.x", CONNECTOR_ACCOUNTS="{}")
    status, lines, out = run_to_exit(env)
    assert status == 2 and "Traceback" not in out, out
    assert lines == [f"ilpconnector: config error: backend: unknown backend {backend!r}; "
                     f"available: one-to-one, static, ecb, http"], out


@pytest.mark.parametrize("plugin", ["ilp-plugin-http", "ilp-plugin-xrp-escrow"])
def test_listed_plugins_we_lack_are_named(tmp_path, plugin):
    """Ledger plugins of the JS ecosystem that no installed distribution provides: one line naming the plugin, exit 2.
    (The settling plugins the README names are installed from contrib_plugins/ now.)"""
    accounts = {"peer": {"relation": "peer", "plugin": plugin, "assetCode": "XRP", "assetScale": 6, "options": {}}}
    env = clean_env(tmp_path, CONNECTOR_ILP_ADDRESS="test.x", CONNECTOR_ACCOUNTS=json.dumps(accounts))
    status, lines, out = run_to_exit(env)
    assert status == 2 and "Traceback" not in out, out
    assert len(lines) == 1 and lines[0].startswith(
        f"ilpconnector: config error: accounts.peer.plugin: unknown plugin {plugin!r}; installed: "), out


#: the README's "Configuration Variables", each at its documented default (ilpAddress aside, and backend: its
#: default ecb fetches rates from the internet, which a test must not need)
REFERENCE_DEFAULTS = {
    "CONNECTOR_ENV": "test", "CONNECTOR_ILP_ADDRESS": "test.defaults", "CONNECTOR_ILP_ADDRESS_INHERIT_FROM": "",
    "CONNECTOR_ACCOUNTS": "{}", "CONNECTOR_DEFAULT_ROUTE": "auto", "CONNECTOR_ROUTES": "[]",
    "CONNECTOR_SPREAD": "0.002", "CONNECTOR_MIN_MESSAGE_WINDOW": "1000", "CONNECTOR_MAX_HOLD_TIME": "30000",
    "CONNECTOR_ROUTE_BROADCAST_ENABLED": "true", "CONNECTOR_ROUTE_BROADCAST_INTERVAL": "30000",
    "CONNECTOR_ROUTE_CLEANUP_INTERVAL": "1000", "CONNECTOR_ROUTE_EXPIRY": "45000", "CONNECTOR_ROUTING_SECRET": "",
    "CONNECTOR_BACKEND": "one-to-one", "CONNECTOR_BACKEND_CONFIG": "{}", "CONNECTOR_STORE": "leveldown",
    "CONNECTOR_STORE_PATH": "", "CONNECTOR_STORE_CONFIG": "{}", "CONNECTOR_MIDDLEWARES": "{}",
    "CONNECTOR_DISABLE_MIDDLEWARE": "[]", "CONNECTOR_REFLECT_PAYMENTS": "true",
    "CONNECTOR_INITIAL_CONNECT_TIMEOUT": "10000", "CONNECTOR_ADMIN_API": "false", "CONNECTOR_ADMIN_API_PORT": "7780",
    "CONNECTOR_ADMIN_API_HOST": "127.0.0.1", "CONNECTOR_COLLECT_DEFAULT_METRICS": "false",
}


def test_configuration_variables_at_their_defaults(tmp_path):
    """Every CONNECTOR_* variable of the README at its default starts ilptx (store leveldown: ./ilptx.sqlite)."""
    from integration.procs import Process

    # run in tmp_path, where leveldown's default folder "." is; the source tree comes through PYTHONPATH
    env = clean_env(tmp_path, PYTHONPATH=str(REPO), **REFERENCE_DEFAULTS)
    connector = Process([*TWISTD, "--nodaemon", "--pidfile=", "ilpconnector"], env=env, cwd=tmp_path, inherit=False)
    try:
        wait_for_log(connector, "ilptx connector test.defaults ready")
        assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
        assert "unrecognized environment variable" not in connector.full_output()
    finally:
        connector.close()
    assert (tmp_path / "ilptx.sqlite").is_file()
