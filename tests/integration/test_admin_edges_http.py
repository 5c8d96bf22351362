"""Admin API edges over real HTTP against a live ``twistd -n ilpconnector`` (issue 8, defect 6):
bad bodies are 4xx and the process stays up; accounts that cannot start are refused and not
kept across a restart; runtime listeners bind loopback."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from integration.procs import free_ports, wait_for_port

pytestmark = pytest.mark.integration


def config(admin_port: int, alice_port: int, store_path: Path) -> dict:
    return {"ilpAddress": "test.edges", "store": "sqlite", "storePath": str(store_path),
            "adminApi": True, "adminApiPort": admin_port, "adminApiHost": "127.0.0.1",
            "accounts": {"alice": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                                   "balance": {"maximum": "1000"},
                                   "options": {"listener": {"host": "127.0.0.1", "port": alice_port,
                                                            "secret": "alice"}}}}}


def call(port: int, method: str, path: str, body: bytes | None = None):
    """:returns: (status, body text)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def listening_addresses(port: int) -> set:
    """The local IPv4 addresses a socket LISTENs on at ``port`` (from /proc/net/tcp)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            out.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return out


def test_bad_bodies_are_4xx_and_the_connector_stays_up(processes, tmp_path):
    """amountDiff "5\\n" or of 5000 digits, a 5000-digit JSON number, deep nesting: 400; 10 MB: 413; nothing moves."""
    admin, alice = free_ports(2)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(admin, alice, tmp_path / "store.sqlite")))
    connector = processes.connector(["--config", str(path)])
    wait_for_port(admin, connector)

    for diff in ("5\n", "1" * 5000):
        status, text = call(admin, "POST", "/balance", json.dumps({"accountId": "alice", "amountDiff": diff}).encode())
        assert status == 400 and text.startswith("invalid balance update: amountDiff must be"), (status, text)
    status, text = call(admin, "POST", "/balance", b'{"accountId": "alice", "amountDiff": 1' + b"0" * 5000 + b"}")
    assert (status, text) == (400, "invalid JSON body: a number has more than 100 digits\n")
    status, text = call(admin, "POST", "/balance", b"[" * 200000)
    assert (status, text) == (400, "invalid JSON body: nested deeper than 32 levels\n")
    status, text = call(admin, "PUT", "/accounts/carol", b" " * (10 * 1024 * 1024))
    assert (status, text) == (413, f"request body too large: the admin API reads at most {1 << 20} bytes\n")

    status, text = call(admin, "GET", "/balance")
    assert status == 200 and json.loads(text)["accounts"]["alice"]["balance"] == "0"
    assert "Unhandled" not in connector.full_output() and "internal error" not in connector.full_output()
    assert connector.proc.poll() is None


def test_accounts_that_cannot_start_are_refused_and_listeners_default_to_loopback(processes, tmp_path):
    """PUT with a port in use or a host not on this machine: 409 with the cause, nothing kept (the
    restart is clean); a mini-accounts account with only a port listens on 127.0.0.1 only."""
    admin, alice, taken, mini = free_ports(4)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(admin, alice, tmp_path / "store.sqlite")))
    connector = processes.connector(["--config", str(path)])
    wait_for_port(admin, connector)

    def btp(host, port):
        return json.dumps({"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                           "options": {"listener": {"host": host, "port": port, "secret": "s"}}}).encode()

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        status, text = call(admin, "PUT", "/accounts/carol", btp("127.0.0.1", taken))
    assert status == 409, text
    assert text.startswith("accounts.carol.options: the btp plugin did not start: Couldn't listen on "
                           f"127.0.0.1:{taken}") and "Address already in use" in text, text
    status, text = call(admin, "PUT", "/accounts/dave", btp("192.0.2.1", taken))  # TEST-NET-1: not ours
    assert status == 409 and "Cannot assign requested address" in text, text
    status, text = call(admin, "PUT", "/accounts/erin", json.dumps(
        {"relation": "child", "plugin": "mini-accounts", "assetCode": "USD", "assetScale": 9,
         "options": {"port": mini}}).encode())
    assert status == 201, text
    assert listening_addresses(mini) == {"127.0.0.1"}
    accounts = json.loads(call(admin, "GET", "/accounts")[1])["accounts"]
    assert sorted(accounts) == ["alice", "erin"]

    assert connector.stop(signal.SIGTERM) in (0, -signal.SIGTERM), connector.output()
    again = processes.connector(["--config", str(path)])
    wait_for_port(admin, again)
    wait_for_port(mini, again)
    accounts = json.loads(call(admin, "GET", "/accounts")[1])["accounts"]
    assert sorted(accounts) == ["alice", "erin"]
    assert listening_addresses(mini) == {"127.0.0.1"}
    out = again.full_output()
    assert "did not start" not in out and "failed to start" not in out and "not added" not in out, again.output()
