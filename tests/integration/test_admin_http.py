"""The admin API over real HTTP, served by a live ``twistd -n ilpconnector``."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration

TOKEN = "integration-token"


def config(admin_port: int, btp_ports, **extra) -> dict:
    accounts = {name: {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                       "balance": {"maximum": "1000"},
                       "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": name}}}
                for name, port in zip(("alice", "bob"), btp_ports, strict=True)}
    return {"ilpAddress": "test.admin", "accounts": accounts, "adminApi": True, "adminApiPort": admin_port,
            "adminApiHost": "127.0.0.1", **extra}


def get(port: int, path: str, token=None):
    """:returns: (status, content type, body bytes)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_status_and_metrics_over_http_with_token(processes, tmp_path):
    """twistd serves /status and /metrics on adminApiPort; without the token it is 401."""
    admin_port, *btp_ports = free_ports(3)
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(config(admin_port, btp_ports, adminApiToken=TOKEN)))
    connector = processes.connector(["--config", str(path)])
    wait_for_port(admin_port, connector)

    status, kind, body = get(admin_port, "/status", TOKEN)
    assert (status, kind) == (200, "application/json"), body
    assert json.loads(body) == {
        "balances": {"alice": "0", "bob": "0"},
        "connected": {"alice": False, "bob": False},
        "localRoutingTable": {"test.admin": {"nextHop": "", "path": ""},
                              "test.admin.alice": {"nextHop": "alice", "path": ""},
                              "test.admin.bob": {"nextHop": "bob", "path": ""}},
    }

    status, kind, body = get(admin_port, "/metrics", TOKEN)
    assert (status, kind) == (200, "text/plain; version=0.0.4; charset=utf-8")
    text = body.decode()
    assert "# TYPE ilp_connector_incoming_ilp_packets counter\n" in text
    assert "# TYPE ilp_connector_balance gauge\n" in text
    assert "_total" not in text

    for token in (None, "wrong"):
        status, _, body = get(admin_port, "/status", token)
        assert status == 401, body
    assert get(admin_port, "/metrics")[0] == 401

    assert_clean_twistd_stop(connector.stop(signal.SIGTERM), signal.SIGTERM, connector)


def test_public_binding_without_token_refused_at_start(tmp_path):
    """adminApiHost 0.0.0.0 without adminApiToken: one config-error line, non-zero exit, nothing served."""
    admin_port, *btp_ports = free_ports(3)
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(config(admin_port, btp_ports, adminApiHost="0.0.0.0")))
    result = subprocess.run(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", "--config", str(path)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        "ilpconnector: config error: adminApiHost: binding 0.0.0.0 needs adminApiToken"]
