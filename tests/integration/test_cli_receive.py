"""``ilptx receive`` as a real process: SPSP endpoint, payments printed; an unreachable uplink fails clearly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from integration.procs import REPO, free_ports, wait_for_port

pytestmark = pytest.mark.integration

ILPTX = [sys.executable, "-m", "ilptx"]
INTEROP = REPO / "tests" / "interop"


def read_line(process, timeout=20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = process.full_output()
        for line in text.splitlines():
            if line.startswith("{"):
                return line
        if process.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no JSON line printed\n{process.output()}")


def test_receive_serves_spsp_and_prints_payments(tmp_path, processes):
    """A JS STREAM sender pays the SPSP credentials of `ilptx receive`; every unit is printed."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    shop, payer, spsp = free_ports(3)
    config = {"ilpAddress": "test.cli", "spread": 0, "accounts": {
        name: {"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 2,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": name}}}
        for name, port in (("shop", shop), ("payer", payer))}}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    connector = processes.connector(["--config", str(tmp_path / "c.yml")])
    wait_for_port(shop, connector)
    wait_for_port(payer, connector)
    receiver = processes.run(ILPTX + ["receive", "--uplink", f"btp+ws://:shop@127.0.0.1:{shop}",
                                      "--port", str(spsp), "--json"])
    ready = json.loads(read_line(receiver))
    assert ready == {"event": "ready", "address": "test.cli.shop", "asset": "EUR", "scale": 2,
                     "spsp": f"http://127.0.0.1:{spsp}/"}
    with urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{spsp}/.well-known/pay", headers={"Accept": "application/spsp4+json"})) as reply:
        assert reply.headers["Content-Type"] == "application/spsp4+json"
        credentials = json.loads(reply.read())
    result = subprocess.run([node, str(INTEROP / "stream_send.js"), "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}",
                             "--destination", credentials["destination_account"],
                             "--secret", credentials["shared_secret"], "--amount", "12345"],
                            capture_output=True, text=True, timeout=90, cwd=REPO)
    assert result.returncode == 0, result.stderr + receiver.output()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in receiver.full_output().splitlines() if line.startswith("{")]
        money = [e for e in events if e["event"] == "money"]
        if money and money[-1]["total"] == "12345":
            break
        time.sleep(0.1)
    assert sum(int(e["amount"]) for e in money) == 12345, receiver.output()
    assert receiver.stop(signal.SIGTERM) in (0, -signal.SIGTERM), receiver.output()
    assert "Traceback" not in receiver.full_output()
    connector.stop()


def test_receive_with_unreachable_uplink_fails_with_exit_3():
    """No connector listening: one clear line and exit code 3."""
    (port,) = free_ports(1)
    result = subprocess.run(ILPTX + ["receive", "--uplink", f"btp+ws://:x@127.0.0.1:{port}", "--port", "0",
                                     "--uplink-timeout", "1"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ilptx: the uplink 127.0.0.1:")
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
