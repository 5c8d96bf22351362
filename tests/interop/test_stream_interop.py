"""Interop: one STREAM payment through a connector, driven by the JS ILP stack.

Each test starts a connector process with two child accounts, ``alice`` and
``bob``, each with a BTP listener on 127.0.0.1, then runs
``node tests/interop/stream_pay.js``: an ilp-protocol-stream receiver
connects to ``bob`` and a sender to ``alice`` (both with ilp-plugin-btp,
both learning their address by IL-DCP), and the sender streams 1,000,000
units to the receiver. The receiver must get exactly 1,000,000 (same asset,
spread 0). Then the connector gets SIGTERM and must shut down cleanly.

The same test runs against the JS reference connector (ilp-connector
23.0.2, through ``run_reference_connector.js``) to prove the harness itself.

Needs ``node`` on PATH and ``npm ci`` run in tests/interop (``.ci/run`` does
it); without them the tests fail, they do not skip.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
NODE_MODULES = HERE / "node_modules"

AMOUNT = 1_000_000
ILP_ADDRESS = "test.ilptx"
SECRETS = {"alice": "alice_secret", "bob": "bob_secret"}

#: How long a connector may take until both BTP listeners accept TCP.
STARTUP_DEADLINE_S = 20.0
#: How long the whole payment may take (stream_pay.js has its own 60 s limit).
PAYMENT_TIMEOUT_S = 90.0
#: How long a connector may take to exit after SIGTERM.
SHUTDOWN_DEADLINE_S = 10.0

#: twistd, after a clean SIGTERM shutdown, logs this and then re-raises the
#: signal on itself (twisted.application.app._exitWithSignal), so its exit
#: status is -SIGTERM rather than 0. We accept that status only together with
#: this line, which proves the reactor stopped and every service was stopped.
TWISTD_CLEAN_SHUTDOWN = "Server Shut Down."

#: Run twistd with this interpreter. (``python -m twisted`` is ``twist``,
#: which takes neither ``-n`` nor ``--pidfile``.)
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]


def _free_ports(count):
    """Return ``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _connector_config(ports):
    """The two-child-account config, in the reference connector's keys.

    :param ports: ``{"alice": port, "bob": port}``
    :returns: a dict, to be written as YAML (ilptx) or JSON (reference).
    """
    accounts = {}
    for account_id, port in ports.items():
        accounts[account_id] = {
            "relation": "child",
            "assetCode": "USD",
            "assetScale": 9,
            "plugin": "ilp-plugin-btp",
            "options": {
                "listener": {"host": "127.0.0.1", "port": port, "secret": SECRETS[account_id]},
            },
        }
    return {"ilpAddress": ILP_ADDRESS, "backend": "one-to-one", "spread": 0, "accounts": accounts}


def _to_yaml(config):
    """Write the config dict above as block YAML (strings quoted, so no YAML surprises)."""
    lines = [
        f"ilpAddress: {json.dumps(config['ilpAddress'])}",
        f"backend: {json.dumps(config['backend'])}",
        f"spread: {config['spread']}",
        "accounts:",
    ]
    for account_id, account in config["accounts"].items():
        listener = account["options"]["listener"]
        lines += [
            f"  {account_id}:",
            f"    relation: {json.dumps(account['relation'])}",
            f"    assetCode: {json.dumps(account['assetCode'])}",
            f"    assetScale: {account['assetScale']}",
            f"    plugin: {json.dumps(account['plugin'])}",
            "    options:",
            "      listener:",
            f"        host: {json.dumps(listener['host'])}",
            f"        port: {listener['port']}",
            f"        secret: {json.dumps(listener['secret'])}",
        ]
    return "\n".join(lines) + "\n"


def _require_node():
    """Return the path of ``node``; fail (not skip) when the JS side is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH; the interop tests need Node.js >= 18")
    if not (NODE_MODULES / "ilp-protocol-stream").is_dir():
        pytest.fail(
            f"{NODE_MODULES} is missing or incomplete: run `npm ci` in tests/interop "
            "(.ci/run does this) before the interop tests"
        )
    return node


class _Connector:
    """A connector child process whose stdout/stderr go to files under ``tmp_path``."""

    def __init__(self, name, argv, tmp_path):
        self.name = name
        self.argv = argv
        self.out_path = tmp_path / f"{name}.stdout.log"
        self.err_path = tmp_path / f"{name}.stderr.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def output(self, limit=8000):
        """The tail of the connector's stdout and stderr, for assertion messages."""
        parts = []
        for label, path in (("stdout", self.out_path), ("stderr", self.err_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            if len(text) > limit:
                text = "...\n" + text[-limit:]
            parts.append(f"--- {self.name} {label} ---\n{text}")
        return f"command: {self.argv}\n" + "\n".join(parts)

    def wait_for_listeners(self, ports, deadline_s=STARTUP_DEADLINE_S):
        """Poll until every port accepts a TCP connection; fail if the process dies or time runs out."""
        deadline = time.monotonic() + deadline_s
        pending = set(ports)
        while pending:
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode} before its BTP listeners "
                    f"{sorted(pending)} were up\n{self.output()}"
                )
            for port in sorted(pending):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        pending.discard(port)
                except OSError:
                    pass
            if pending:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{self.name}: BTP listeners {sorted(pending)} not accepting connections "
                        f"after {deadline_s} s\n{self.output()}"
                    )
                time.sleep(0.1)

    def stop(self, deadline_s=SHUTDOWN_DEADLINE_S):
        """Send SIGTERM and wait; returns the exit status, or ``None`` if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def _pay(node, ports, tmp_path, connector):
    """Run stream_pay.js through the connector; return its parsed JSON result."""
    argv = [
        node,
        str(HERE / "stream_pay.js"),
        "--receiver", f"btp+ws://:{SECRETS['bob']}@127.0.0.1:{ports['bob']}",
        "--sender", f"btp+ws://:{SECRETS['alice']}@127.0.0.1:{ports['alice']}",
        "--amount", str(AMOUNT),
        "--timeout", "60000",
    ]
    try:
        result = subprocess.run(
            argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=PAYMENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"stream_pay.js did not finish in {PAYMENT_TIMEOUT_S} s\n"
            f"--- stream_pay stderr ---\n{exc.stderr}\n{connector.output()}"
        )
    report = (
        f"stream_pay.js exit {result.returncode}\n--- stream_pay stdout ---\n{result.stdout}"
        f"--- stream_pay stderr ---\n{result.stderr}\n{connector.output()}"
    )
    assert result.returncode == 0, report
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, report
    try:
        return json.loads(lines[-1])
    except ValueError:
        pytest.fail(f"stream_pay.js printed no JSON result\n{report}")


def _run_payment(name, argv, ports, tmp_path, node, clean_exit):
    """Start a connector, pay through it, stop it; ``clean_exit(code, connector)`` judges the exit."""
    connector = _Connector(name, argv, tmp_path)
    stopped = False
    try:
        connector.wait_for_listeners(ports.values())
        outcome = _pay(node, ports, tmp_path, connector)
        assert outcome["received"] == str(AMOUNT), f"{outcome}\n{connector.output()}"
        assert outcome["sent"] == str(AMOUNT), f"{outcome}\n{connector.output()}"
        assert outcome["senderAddress"] == f"{ILP_ADDRESS}.alice", f"{outcome}\n{connector.output()}"
        assert outcome["receiverAddress"] == f"{ILP_ADDRESS}.bob", f"{outcome}\n{connector.output()}"

        code = connector.stop()
        stopped = True
        assert code is not None, (
            f"{name} did not exit within {SHUTDOWN_DEADLINE_S} s of SIGTERM (killed)\n{connector.output()}"
        )
        clean_exit(code, connector)
    finally:
        if not stopped:
            connector.stop()


def test_stream_payment_through_reference_connector(tmp_path):
    """The harness moves exactly 1,000,000 through the JS reference connector, which exits 0 on SIGTERM."""
    node = _require_node()
    alice, bob = _free_ports(2)
    ports = {"alice": alice, "bob": bob}
    config_path = tmp_path / "reference.json"
    config_path.write_text(json.dumps(_connector_config(ports), indent=2))
    argv = [node, str(HERE / "run_reference_connector.js"), "--config", str(config_path)]

    def clean_exit(code, connector):
        assert code == 0, f"reference connector exited {code} after SIGTERM\n{connector.output()}"

    _run_payment("reference-connector", argv, ports, tmp_path, node, clean_exit)


def test_stream_payment_through_ilptx(tmp_path):
    """A 1,000,000 STREAM payment from the JS stack crosses ilptx exactly, and ilptx stops cleanly on SIGTERM."""
    node = _require_node()
    alice, bob = _free_ports(2)
    ports = {"alice": alice, "bob": bob}
    config_path = tmp_path / "connector.yml"
    config_path.write_text(_to_yaml(_connector_config(ports)))
    argv = TWISTD + ["-n", "--pidfile=", "ilpconnector", "--config", str(config_path)]

    def clean_exit(code, connector):
        output = connector.output(limit=200_000)
        assert code in (0, -signal.SIGTERM), f"ilptx exited {code} after SIGTERM\n{connector.output()}"
        assert TWISTD_CLEAN_SHUTDOWN in output, (
            f"ilptx exited {code} after SIGTERM without twistd's {TWISTD_CLEAN_SHUTDOWN!r}\n"
            f"{connector.output()}"
        )
        assert "Traceback" not in output, f"ilptx logged a traceback\n{connector.output()}"

    _run_payment("ilptx", argv, ports, tmp_path, node, clean_exit)
