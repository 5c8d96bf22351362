"""Interop: ilptx peered with the JS reference connector (ilp-connector 23.0.2), real processes.

* ``twistd -n ilpconnector`` (test.ilptx) and ilp-connector (test.ref) peer over BTP; routes
  propagate both ways through CCP (checked on both admin APIs).
* A STREAM sender on the reference's mini-accounts pays a STREAM receiver on ilptx's
  mini-accounts, and the reverse; the JS ilp-plugin-btp clients of ilptx's mini-accounts
  get their addresses through IL-DCP. Amounts arrive exactly.
* ilptx as a child of the reference (relation ``parent`` on our side) takes its address
  from it through IL-DCP.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from integration.procs import REPO, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
AMOUNT = 1_000_000


def require_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH; the interop tests need Node.js >= 18")
    if not (HERE / "node_modules" / "ilp-plugin-mini-accounts").is_dir():
        pytest.fail(f"{HERE / 'node_modules'} is incomplete: run `npm ci` in tests/interop (.ci/run does)")
    return node


def get_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def wait_for(condition, what: str, timeout: float = 30.0, processes=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError as exc:  # admin API not up yet
            last = exc
        time.sleep(0.2)
    logs = "\n".join(p.output() for p in processes)
    raise AssertionError(f"{what} did not happen within {timeout} s (last error: {last})\n{logs}")


def account(relation, plugin, options):
    return {"relation": relation, "plugin": plugin, "assetCode": "USD", "assetScale": 9, "options": options}


def pay(node, sender_url, receiver_url, processes):
    result = subprocess.run([node, str(HERE / "stream_pay.js"), "--sender", sender_url, "--receiver", receiver_url,
                             "--amount", str(AMOUNT), "--timeout", "60000"],
                            cwd=REPO, capture_output=True, text=True, timeout=90)
    report = f"stdout: {result.stdout}\nstderr: {result.stderr}\n" + "\n".join(p.output() for p in processes)
    assert result.returncode == 0, report
    return json.loads(result.stdout.strip().splitlines()[-1]), report


def test_peering_with_the_reference_connector(tmp_path, processes):
    """CCP routes both ways; STREAM between the two connectors' mini-accounts both ways, exact amounts."""
    node = require_node()
    peer_port, ref_mini, ref_admin, ilptx_mini, ilptx_admin = free_ports(5)
    reference = {
        "ilpAddress": "test.ref", "backend": "one-to-one", "spread": 0, "store": "memory",
        "adminApi": True, "adminApiPort": ref_admin,
        "accounts": {
            "ilptx": account("peer", "ilp-plugin-btp",
                             {"listener": {"host": "127.0.0.1", "port": peer_port, "secret": "peer_secret"}}),
            "mini": account("child", "ilp-plugin-mini-accounts", {"wsOpts": {"host": "127.0.0.1", "port": ref_mini}}),
        },
    }
    # maxHoldTime 5 s: the reference holds STREAM's closing packets to its mini-accounts clients
    # that already left until they expire; our graceful stop waits for them, so keep that short
    ours = {
        "ilpAddress": "test.ilptx", "backend": "one-to-one", "spread": 0, "maxHoldTime": 5000,
        "adminApi": True, "adminApiPort": ilptx_admin,
        "accounts": {
            "ref": account("peer", "btp", {"server": f"btp+ws://ilptx:peer_secret@127.0.0.1:{peer_port}"}),
            "mini": account("child", "mini-accounts", {"listener": {"host": "127.0.0.1", "port": ilptx_mini}}),
        },
    }
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    (tmp_path / "ilptx.yml").write_text(yaml.safe_dump(ours))
    ref = processes.run([node, str(HERE / "run_reference_connector.js"), "--config", str(tmp_path / "reference.json")])
    wait_for_port(peer_port, ref)
    wait_for_port(ref_mini, ref)
    ilptx = processes.connector(["--config", str(tmp_path / "ilptx.yml")])
    wait_for_port(ilptx_mini, ilptx)
    both = (ref, ilptx)

    wait_for(lambda: get_json(ilptx_admin, "/routing")["localRoutingTable"].get("test.ref", {}).get("nextHop") == "ref",
             "ilptx learning test.ref through CCP", processes=both)
    wait_for(lambda: get_json(ref_admin, "/routing")["localRoutingTable"].get("test.ilptx", {}).get("nextHop")
             == "ilptx", "the reference learning test.ilptx through CCP", processes=both)

    # reference mini-accounts → ilptx mini-accounts
    outcome, report = pay(node, f"btp+ws://sender1:s1@127.0.0.1:{ref_mini}",
                          f"btp+ws://receiver1:r1@127.0.0.1:{ilptx_mini}", both)
    assert outcome["received"] == str(AMOUNT) and outcome["sent"] == str(AMOUNT), report
    assert outcome["senderAddress"] == "test.ref.mini.sender1", report
    assert outcome["receiverAddress"] == "test.ilptx.mini.receiver1", report  # IL-DCP from ilptx's mini-accounts
    # ilptx mini-accounts → reference mini-accounts
    outcome, report = pay(node, f"btp+ws://sender2:s2@127.0.0.1:{ilptx_mini}",
                          f"btp+ws://receiver2:r2@127.0.0.1:{ref_mini}", both)
    assert outcome["received"] == str(AMOUNT) and outcome["sent"] == str(AMOUNT), report
    assert outcome["senderAddress"] == "test.ilptx.mini.sender2", report
    assert outcome["receiverAddress"] == "test.ref.mini.receiver2", report

    assert_clean_twistd_stop(ilptx.stop(timeout=20.0), signal.SIGTERM, ilptx)
    assert ref.stop() == 0, ref.output()


def test_ilptx_as_a_child_of_the_reference_takes_its_address(tmp_path, processes):
    """With relation parent on our side and no ilpAddress, ilptx becomes test.ref.down by IL-DCP."""
    node = require_node()
    child_port, ilptx_admin = free_ports(2)
    reference = {"ilpAddress": "test.ref", "backend": "one-to-one", "spread": 0, "store": "memory", "accounts": {
        "down": account("child", "ilp-plugin-btp",
                        {"listener": {"host": "127.0.0.1", "port": child_port, "secret": "child_secret"}})}}
    ours = {"backend": "one-to-one", "spread": 0, "adminApi": True, "adminApiPort": ilptx_admin, "accounts": {
        "up": account("parent", "btp", {"server": f"btp+ws://down:child_secret@127.0.0.1:{child_port}"})}}
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    (tmp_path / "ilptx.yml").write_text(yaml.safe_dump(ours))
    ref = processes.run([node, str(HERE / "run_reference_connector.js"), "--config", str(tmp_path / "reference.json")])
    wait_for_port(child_port, ref)
    ilptx = processes.connector(["--config", str(tmp_path / "ilptx.yml")])
    wait_for(lambda: get_json(ilptx_admin, "/accounts")["address"] == "test.ref.down",
             "ilptx taking its address from the reference", processes=(ref, ilptx))
    assert_clean_twistd_stop(ilptx.stop(), signal.SIGTERM, ilptx)
    assert ref.stop() == 0, ref.output()
