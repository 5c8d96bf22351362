"""``ilptx pay`` and ``ilptx receive`` as real processes against running connectors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from integration.procs import REPO, free_ports, wait_for_port

pytestmark = pytest.mark.integration

ILPTX = [sys.executable, "-m", "ilptx"]


def children(address, **ports):
    return {"ilpAddress": address, "spread": 0, "accounts": {
        name: {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 6,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": name}}}
        for name, port in ports.items()}}


def start_receiver(processes, uplink, spsp_port):
    receiver = processes.run(ILPTX + ["receive", "--uplink", uplink, "--port", str(spsp_port), "--json"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if '"event": "ready"' in receiver.full_output():
            return receiver
        assert receiver.proc.poll() is None, receiver.output()
        time.sleep(0.1)
    raise AssertionError(receiver.output())


def test_pay_and_receive_end_to_end(tmp_path, processes):
    """`ilptx pay` sends 250000 to `ilptx receive`'s SPSP URL; both print what moved."""
    shop, payer, spsp = free_ports(3)
    (tmp_path / "c.yml").write_text(yaml.safe_dump(children("test.e2e", shop=shop, payer=payer)))
    connector = processes.connector(["--config", str(tmp_path / "c.yml")])
    wait_for_port(shop, connector)
    wait_for_port(payer, connector)
    receiver = start_receiver(processes, f"btp+ws://:shop@127.0.0.1:{shop}", spsp)

    result = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "250000", "--allow-http",
                                     "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}", "--json"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr + receiver.output()
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["sent"] == "250000" and summary["delivered"] == "250000"
    assert summary["exchangeRate"] in ("1", "1.0") and summary["packets"] >= 2
    assert summary["source"] == "test.e2e.payer" and summary["destination"].startswith("test.e2e.shop.")

    human = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "1000", "--allow-http",
                                    "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith(f"paid http://127.0.0.1:{spsp}/: sent 1000, delivered 1000 (exchange rate 1")

    deadline = time.monotonic() + 10
    total = None
    while time.monotonic() < deadline:
        money = [json.loads(line) for line in receiver.full_output().splitlines()
                 if line.startswith("{") and '"money"' in line]
        total = money[-1]["total"] if money else None
        if total == "251000":
            break
        time.sleep(0.1)
    assert total == "251000", receiver.output()


def test_pay_without_a_route_says_f02_and_what_was_delivered(tmp_path, processes):
    """Paying through a connector that has no route to the receiver: exit 1, F02 explained, 0 delivered."""
    shop, payer, spsp = free_ports(3)
    (tmp_path / "one.yml").write_text(yaml.safe_dump(children("test.one", shop=shop)))
    (tmp_path / "two.yml").write_text(yaml.safe_dump(children("test.two", payer=payer)))
    one = processes.connector(["--config", str(tmp_path / "one.yml")])
    two = processes.connector(["--config", str(tmp_path / "two.yml")])
    wait_for_port(shop, one)
    wait_for_port(payer, two)
    start_receiver(processes, f"btp+ws://:shop@127.0.0.1:{shop}", spsp)
    result = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "5000", "--allow-http",
                                     "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("ilptx: payment failed: no route to the receiver (F02)"), result.stderr
    assert "delivered 0" in line and "Traceback" not in result.stderr
    # the same receiver, but an uplink nobody listens on: exit 3, one line
    (closed,) = free_ports(1)
    result = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "5000", "--allow-http", "--uplink-timeout", "1",
                                     "--uplink", f"btp+ws://:payer@127.0.0.1:{closed}"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 3, result.stderr
    assert "unreachable" in result.stderr.strip().splitlines()[-1] and "Traceback" not in result.stderr


def test_pay_to_a_receiver_that_is_not_there_exits_4():
    """An SPSP endpoint nobody serves, or a host that does not resolve: exit 4."""
    spsp, uplink = free_ports(2)
    result = subprocess.run(ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "1", "--allow-http",
                                     "--uplink", f"btp+ws://:x@127.0.0.1:{uplink}"],
                            capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 4 and "cannot set up the payment" in result.stderr, result.stderr
    result = subprocess.run(ILPTX + ["pay", "https://example.invalid/x", "1", "--uplink", "btp+ws://:x@127.0.0.1:1"],
                            capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 4, result.stderr


def test_pay_out_of_liquidity_gives_up_promptly_with_one_line(tmp_path, processes):
    """The connector's account to the shop is at its balance minimum, so every Prepare gets T04:
    `ilptx pay` gives up after --liquidity-timeout (default 5 s) with one line, exit 1."""
    shop, payer, spsp = free_ports(3)
    config = children("test.dry", shop=shop, payer=payer)
    config["accounts"]["shop"]["balance"] = {"minimum": "0", "maximum": "1000000"}
    (tmp_path / "dry.yml").write_text(yaml.safe_dump(config))
    connector = processes.connector(["--config", str(tmp_path / "dry.yml")])
    wait_for_port(shop, connector)
    wait_for_port(payer, connector)
    start_receiver(processes, f"btp+ws://:shop@127.0.0.1:{shop}", spsp)
    pay = ILPTX + ["pay", f"http://127.0.0.1:{spsp}/", "5000", "--allow-http", "--uplink",
                   f"btp+ws://:payer@127.0.0.1:{payer}"]

    started = time.monotonic()
    result = subprocess.run(pay, capture_output=True, text=True, timeout=60, cwd=REPO)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ilptx: payment failed: the path is out of liquidity (T04): every packet was "
                           "rejected for 5 s of retries (insufficient funds. account=shop amount="), line
    assert line.endswith("; sent 0, delivered 0; try again later or with a smaller amount"), line
    assert line.count("sent") == 1 and line.count("delivered") == 1
    assert 5 <= took < 15, took  # 5 s of back-off, not 12 tries over 31 s

    started = time.monotonic()
    result = subprocess.run(pay + ["--liquidity-timeout", "0", "--json"], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 1 and time.monotonic() - started < 5, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("ok", "error", "code", "sent", "delivered")} == \
        {"ok": False, "error": "liquidity", "code": "T04", "sent": "0", "delivered": "0"}
    assert summary["message"].startswith("every packet was rejected for 0 s of retries (insufficient funds.")
