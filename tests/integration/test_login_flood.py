"""Failed BTP logins against a real ``twistd -n ilpconnector`` (issue 8, defect 8): a flood of
wrong tokens from one address is slowed down to a handful of checks, while a client with the
right token from another address — or, for mini-accounts, another client name on the same
address — logs in at once, and a success clears its address."""

from __future__ import annotations

import json
import time

import pytest

from ilptx.codec.btp import Error, Response, auth_message, decode_frame, encode_frame
from integration.procs import free_ports, wait_for_port
from integration.raw_ws import RawWebSocket

pytestmark = pytest.mark.integration

FLOOD_SECONDS = 3.0


def start(processes, tmp_path):
    btp_port, mini_port = free_ports(2)
    accounts = {
        "door": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                 "options": {"listener": {"port": btp_port, "secret": "right"}}},  # all interfaces
        "mini": {"relation": "child", "plugin": "mini-accounts", "assetCode": "USD", "assetScale": 9,
                 "options": {"listener": {"port": mini_port}}},
    }
    path = tmp_path / "connector.json"
    path.write_text(json.dumps({"ilpAddress": "test.flood", "accounts": accounts}))
    connector = processes.connector(["--config", str(path)])
    wait_for_port(btp_port, connector)
    wait_for_port(mini_port, connector)
    return connector, btp_port, mini_port


def attempt(port: int, token: str, username: str = "", source: str = "127.0.0.1", timeout: float = 15.0):
    """:returns: ``(answer frame, seconds it took)`` of one login."""
    started = time.monotonic()
    ws = RawWebSocket(port, source=source, timeout=timeout)
    try:
        ws.send_binary(encode_frame(auth_message(1, token, username)))
        return decode_frame(ws.receive_binary()), time.monotonic() - started
    finally:
        ws.close()


def flood(port: int, username: str = "") -> int:
    """Wrong tokens from 127.0.0.1, one login after another, for FLOOD_SECONDS.

    :returns: how many were answered."""
    answered, deadline = 0, time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < deadline:
        answer, _ = attempt(port, "wrong", username)
        assert type(answer) is Error and answer.code == "F00", answer
        answered += 1
    return answered


def test_wrong_token_flood_is_slowed_and_other_sources_log_in_at_once(processes, tmp_path):
    """A few wrong-token checks in 3 s, not thousands; 127.0.0.2 gets in at once; 127.0.0.1 after one wait."""
    connector, port, _ = start(processes, tmp_path)
    answered = flood(port)
    assert answered <= 12, f"{answered} wrong-token logins answered in {FLOOD_SECONDS} s"
    answer, took = attempt(port, "right", source="127.0.0.2")
    assert type(answer) is Response and took < 1.0, (answer, took)
    answer, took = attempt(port, "right")  # the flooded address: waits its turn (at most 10 s), then succeeds
    assert type(answer) is Response, answer
    answer, took = attempt(port, "right")  # the success cleared the address
    assert type(answer) is Response and took < 1.0, (answer, took)


def test_mini_accounts_flood_on_one_name_does_not_slow_another_client_of_the_host(processes, tmp_path):
    """Wrong tokens for alice from 127.0.0.1 are slowed; bob from 127.0.0.1 still logs in at once."""
    connector, _, port = start(processes, tmp_path)
    answer, _ = attempt(port, "alice-token", "alice")  # registers alice
    assert type(answer) is Response, answer
    answered = flood(port, "alice")
    assert answered <= 12, f"{answered} wrong-token logins for alice answered in {FLOOD_SECONDS} s"
    answer, took = attempt(port, "bob-token", "bob")
    assert type(answer) is Response and took < 1.0, (answer, took)
