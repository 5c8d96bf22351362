"""Interop: one STREAM payment through a connector, driven by the JS ILP stack.

Each test starts a connector process with two child accounts, ``alice`` and ``bob``, each
with a BTP listener on 127.0.0.1, then runs ``node tests/interop/stream_pay.js``: an
ilp-protocol-stream 2.7.1 receiver connects to ``bob`` and a sender to ``alice`` (both over
ilp-plugin-btp 1.5.0, both learning their address by IL-DCP), and the sender streams
1,000,000 units to the receiver. The receiver must get exactly 1,000,000 (same asset, spread
0). Then the connector gets SIGTERM and must shut down cleanly.

The same test runs against the JS reference connector (ilp-connector 23.0.2, through
``run_reference_connector.js``) to prove the harness itself.

Needs ``node`` on PATH and ``npm ci`` run in tests/interop (``.ci/run`` does it); without
them the tests fail, they do not skip.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from integration.procs import REPO, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
AMOUNT = 1_000_000
ILP_ADDRESS = "test.ilptx"
SECRETS = {"alice": "alice_secret", "bob": "bob_secret"}
#: How long the whole payment may take (stream_pay.js has its own 60 s limit).
PAYMENT_TIMEOUT_S = 90.0


def connector_config(ports: dict[str, int]) -> dict:
    """The two-child-account config in the reference connector's keys (valid for both)."""
    return {
        "ilpAddress": ILP_ADDRESS, "backend": "one-to-one", "spread": 0,
        "accounts": {
            account_id: {
                "relation": "child", "assetCode": "USD", "assetScale": 9, "plugin": "ilp-plugin-btp",
                "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": SECRETS[account_id]}},
            }
            for account_id, port in ports.items()
        },
    }


def require_node() -> str:
    """:returns: the path of ``node``; fails (never skips) when the JS side is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH; the interop tests need Node.js >= 18")
    if not (HERE / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail(f"{HERE / 'node_modules'} is missing: run `npm ci` in tests/interop (.ci/run does)")
    return node


def pay_through(connector, ports: dict[str, int], node: str) -> None:
    """Run stream_pay.js through ``connector`` and check exactly AMOUNT arrived."""
    for port in ports.values():
        wait_for_port(port, connector)
    argv = [node, str(HERE / "stream_pay.js"),
            "--receiver", f"btp+ws://:{SECRETS['bob']}@127.0.0.1:{ports['bob']}",
            "--sender", f"btp+ws://:{SECRETS['alice']}@127.0.0.1:{ports['alice']}",
            "--amount", str(AMOUNT), "--timeout", "60000"]
    try:
        result = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=PAYMENT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"stream_pay.js did not finish in {PAYMENT_TIMEOUT_S} s\n{exc.stderr}\n{connector.output()}")
    report = (f"stream_pay.js exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
              f"{connector.output()}")
    assert result.returncode == 0, report
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["sent"] == str(AMOUNT), report
    assert outcome["received"] == str(AMOUNT), report
    assert outcome["senderAddress"] == f"{ILP_ADDRESS}.alice", report
    assert outcome["receiverAddress"] == f"{ILP_ADDRESS}.bob", report


def test_stream_payment_through_reference_connector(tmp_path, processes):
    """The harness moves exactly 1,000,000 through the JS reference connector, which exits 0 on SIGTERM."""
    node = require_node()
    ports = dict(zip(("alice", "bob"), free_ports(2), strict=True))
    config = tmp_path / "reference.json"
    config.write_text(json.dumps(connector_config(ports)))
    connector = processes.run([node, str(HERE / "run_reference_connector.js"), "--config", str(config)])
    pay_through(connector, ports, node)
    assert connector.stop() == 0, connector.output()


def test_stream_payment_through_ilptx(tmp_path, processes):
    """A 1,000,000 STREAM payment from the JS stack crosses ``twistd -n ilpconnector`` exactly; SIGTERM stops it cleanly."""
    node = require_node()
    ports = dict(zip(("alice", "bob"), free_ports(2), strict=True))
    config = tmp_path / "connector.yml"
    config.write_text(yaml.safe_dump(connector_config(ports)))
    connector = processes.connector(["--config", str(config)])
    pay_through(connector, ports, node)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
