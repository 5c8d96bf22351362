"""``twistd -n ilpconnector`` that cannot start: one line on stderr naming the key, exit status 2, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration

#: a failed start-up must end well within this (the slowest case waits for a 1 s Redis connect timeout)
DEADLINE_S = 30


def child(port, host="127.0.0.1", **extra):
    return {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
            "options": {"listener": {**({"host": host} if host else {}), "port": port, "secret": "s"}}, **extra}


def write_config(tmp_path, **keys):
    path = tmp_path / "connector.json"
    path.write_text(json.dumps({"ilpAddress": "test.startup", **keys}))
    return path


def run_failing(config_path, prefix=(), env=None):
    """Run twistd on the config until it exits. :returns: (exit status, stderr lines, stdout+stderr)."""
    started = time.monotonic()
    argv = [*prefix, *TWISTD, "--nodaemon", "--pidfile=", "ilpconnector", "--config", str(config_path)]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=DEADLINE_S, env=env)
    assert time.monotonic() - started < DEADLINE_S
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.returncode, lines, result.stdout + result.stderr


def assert_one_line(config_path, expected, prefix=(), startswith=False):
    status, lines, out = run_failing(config_path, prefix)
    assert status == 2, out
    assert "Traceback" not in out, out
    assert len(lines) == 1, out
    if startswith:
        assert lines[0].startswith(expected), out
    else:
        assert lines[0] == expected, out
    return out


def test_store_path_in_a_missing_directory(tmp_path):
    """store: sqlite with storePath under a directory that does not exist: one line naming storePath, exit 2."""
    path = tmp_path / "missing" / "ilptx.sqlite"
    (port,) = free_ports(1)
    config = write_config(tmp_path, store="sqlite", storePath=str(path), accounts={"a": child(port)})
    assert_one_line(config, f"ilpconnector: start-up failed: storePath: {path}: the directory {tmp_path / 'missing'} "
                            f"does not exist (sqlite: unable to open database file)")


def test_store_path_a_read_only_file(tmp_path, read_only_file):
    """store: sqlite with a read-only storePath file (immutable when run as root): one line saying so, exit 2."""
    (port,) = free_ports(1)
    config = write_config(tmp_path, store="sqlite", storePath=str(read_only_file), accounts={"a": child(port)})
    assert_one_line(config, f"ilpconnector: start-up failed: storePath: {read_only_file} is a read-only file "
                            f"(sqlite: attempt to write a readonly database)")


def test_store_path_on_a_read_only_filesystem(tmp_path):
    """store: sqlite on a read-only filesystem (a private read-only tmpfs mount as root; else a read-only folder)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    path = mount / "ilptx.sqlite"
    (port,) = free_ports(1)
    config = write_config(tmp_path, store="sqlite", storePath=str(path), accounts={"a": child(port)})
    if os.geteuid() == 0 and shutil.which("unshare"):
        # the mount exists only in the connector's own mount namespace and vanishes with it
        prefix = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o ro tmpfs "{mount}" && exec "$0" "$@"']
        assert_one_line(config, f"ilpconnector: start-up failed: storePath: {path} is on a read-only filesystem "
                                f"(sqlite: unable to open database file)", prefix=prefix)
    else:
        mount.chmod(0o555)
        try:
            assert_one_line(config, f"ilpconnector: start-up failed: storePath: {path}: the directory {mount} is not "
                                    f"writable (sqlite: unable to open database file)")
        finally:
            mount.chmod(0o755)


def test_redis_with_nothing_listening(tmp_path):
    """store: redis with no server: one line within storeConfig.connectTimeout (1 s here), exit 2."""
    (port, dead) = free_ports(2)
    config = write_config(tmp_path, store="redis", storePath=f"redis://127.0.0.1:{dead}/0",
                          storeConfig={"connectTimeout": 1000}, accounts={"a": child(port)})
    started = time.monotonic()
    assert_one_line(config, f"ilpconnector: start-up failed: storePath: redis store: no answer from 127.0.0.1:{dead} "
                            f"db 0 within 1 s (is it running, and are the password and db right?)")
    assert time.monotonic() - started < 15


def test_store_path_a_directory_holds_the_file(processes, tmp_path):
    """store: sqlite with storePath a directory (as reference configs hold for leveldown) runs on <dir>/ilptx.sqlite."""
    (port,) = free_ports(1)
    config = write_config(tmp_path, store="sqlite", storePath=str(tmp_path), accounts={"a": child(port)})
    connector = processes.connector(["--config", str(config)])
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    assert (tmp_path / "ilptx.sqlite").is_file()


def test_store_leveldown_runs_on_sqlite_in_its_folder(processes, tmp_path):
    """store: leveldown (reference configs) loads: sqlite in the storePath folder, with a warning."""
    (port,) = free_ports(1)
    folder = tmp_path / "connector-data"
    config = write_config(tmp_path, store="leveldown", storePath=str(folder), accounts={"a": child(port)})
    connector = processes.connector(["--config", str(config)])
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    assert (folder / "ilptx.sqlite").is_file()
    assert "store: leveldown is the reference connector's store; using store: sqlite" in connector.full_output()


def test_two_connectors_on_one_sqlite_file(processes, tmp_path):
    """A second connector on the sqlite file a running one holds fails at once with one line; the first runs on."""
    path = tmp_path / "shared.sqlite"
    first_port, second_port = free_ports(2)
    first = processes.connector(["--config", str(write_config(tmp_path, store="sqlite", storePath=str(path),
                                                              accounts={"a": child(first_port)}))])
    wait_for_port(first_port, first)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    config = write_config(second_dir, store="sqlite", storePath=str(path), accounts={"a": child(second_port)})
    assert_one_line(config, f"ilpconnector: start-up failed: storePath: {path} is in use by another connector "
                            f"process (sqlite: database is locked); each SQLite file belongs to one process "
                            f"(share state between processes with store: redis)")
    assert first.proc.poll() is None
    assert_clean_twistd_stop(first.stop(), signal.SIGTERM, first)


@pytest.mark.parametrize("plugin", ["btp", "mini-accounts"])
def test_btp_listener_port_in_use(tmp_path, plugin):
    """A BTP listener whose port is taken fails start-up (it used to log 'critical' and run with no working account)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (other,) = free_ports(1)
        config = write_config(tmp_path, accounts={"ok": child(other), "busy": {**child(port), "plugin": plugin}})
        out = assert_one_line(config, f"ilpconnector: start-up failed: accounts.busy: plugin {plugin} failed to start: "
                                      f"Couldn't listen on 127.0.0.1:{port}: [Errno 98] Address already in use.")
    assert f"(TCP Port {other} Closed)" in out  # the account that did listen was stopped again


def test_admin_port_in_use(tmp_path):
    """The admin API port already in use: one line naming adminApiPort (it was a 35-line traceback), exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = taken.getsockname()[1]
        (port,) = free_ports(1)
        config = write_config(tmp_path, adminApi=True, adminApiPort=admin, accounts={"a": child(port)})
        assert_one_line(config, f"ilpconnector: start-up failed: adminApiPort: Couldn't listen on 127.0.0.1:{admin}: "
                                f"[Errno 98] Address already in use.")


def test_balance_maximum_of_5001_digits(tmp_path):
    """A balance maximum of 5,001 digits is a config error line (it was a ValueError traceback), exit 2."""
    (port,) = free_ports(1)
    config = write_config(tmp_path, accounts={"a": child(port, balance={"maximum": "9" * 5001})})
    assert_one_line(config, 'ilpconnector: config error: accounts.a.balance.maximum: must be an integer string '
                            '(at most 100 digits), "-Infinity" or "Infinity"')


def test_listener_without_host_binds_every_interface_with_a_warning(processes, tmp_path):
    """A BTP listener without host listens on every interface (as the reference) and start-up warns it is plain ws."""
    (port,) = free_ports(1)
    config = write_config(tmp_path, accounts={"open": child(port, host=None)})
    connector = processes.connector(["--config", str(config)])
    wait_for_port(port, connector)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    out = connector.full_output()
    assert "account open: its BTP listener has no host, so it accepts plain ws (no TLS) on every interface" in out
    assert f"host='0.0.0.0', port={port}" in out


def test_versions():
    """``twistd ilpconnector --version`` and ``ilptx --version`` print ilptx's version."""
    import ilptx

    plugin = subprocess.run([*TWISTD, "ilpconnector", "--version"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    command = subprocess.run([sys.executable, "-m", "ilptx", "--version"], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert (plugin.returncode, plugin.stdout) == (0, f"ilptx {ilptx.__version__}\n"), plugin.stderr
    assert (command.returncode, command.stdout) == (0, f"ilptx {ilptx.__version__}\n"), command.stderr
