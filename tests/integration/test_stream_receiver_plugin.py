"""A STREAM receiver inside the connector (plugin: stream-receiver): `ilptx pay` pays it through SPSP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
import yaml

from integration.procs import REPO, free_ports, wait_for_port

pytestmark = pytest.mark.integration


def test_pay_the_connectors_own_receiver(tmp_path, processes):
    """The shop account is a local STREAM receiver with an SPSP endpoint; 70000 arrive and its balance shows it."""
    payer, spsp, admin = free_ports(3)
    config = {"ilpAddress": "test.local", "spread": 0, "adminApi": True, "adminApiPort": admin, "accounts": {
        "payer": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 6,
                  "balance": {"maximum": "1000000"},
                  "options": {"listener": {"host": "127.0.0.1", "port": payer, "secret": "payer"}}},
        "shop": {"relation": "child", "plugin": "stream-receiver", "assetCode": "USD", "assetScale": 6,
                 "balance": {"minimum": "-1000000", "maximum": "0"},
                 "options": {"spsp": {"host": "127.0.0.1", "port": spsp}}}}}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    connector = processes.connector(["--config", str(tmp_path / "c.yml")])
    wait_for_port(payer, connector)
    wait_for_port(spsp, connector)
    result = subprocess.run([sys.executable, "-m", "ilptx", "pay", f"http://127.0.0.1:{spsp}/", "70000",
                             "--allow-http", "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}", "--json"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr + connector.output()
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["delivered"] == "70000" and summary["destination"].startswith("test.local.shop.")
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/balance") as reply:
        balances = json.loads(reply.read())["accounts"]
    assert balances["payer"]["balance"] == "70000" and balances["shop"]["balance"] == "-70000"
