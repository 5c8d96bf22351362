"""A connector configured only through ``CONNECTOR_*`` variables (no file) carries a payment."""

from __future__ import annotations

import hashlib
import json
import signal
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor

from ilptx.codec.ildcp import IldcpResponse, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler
from integration.procs import assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x21" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def soon(seconds=10):
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest_twisted.inlineCallbacks
def test_env_only_connector_carries_a_payment(processes):
    """CONNECTOR_ACCOUNTS + CONNECTOR_ILP_ADDRESS, no config file: IL-DCP works and a payment is fulfilled."""
    alice_port, bob_port = free_ports(2)
    accounts = {
        name: {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "EUR", "assetScale": 2,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": f"{name}_s"}}}
        for name, port in (("alice", alice_port), ("bob", bob_port))
    }
    connector = processes.connector([], env={
        "CONNECTOR_ACCOUNTS": json.dumps(accounts),
        "CONNECTOR_ILP_ADDRESS": "test.quickstart",
        "CONNECTOR_SPREAD": "0.01",
        "CONNECTOR_MAX_HOLD_TIME": "20000",
    })
    wait_for_port(alice_port, connector)
    wait_for_port(bob_port, connector)
    bob = BtpPlugin({"server": f"btp+ws://:bob_s@127.0.0.1:{bob_port}"}, account_id="bob-client", reactor=reactor)
    alice = BtpPlugin({"server": f"btp+ws://:alice_s@127.0.0.1:{alice_port}"}, account_id="alice-client",
                      reactor=reactor)
    handler = fulfilling_handler([FULFILLMENT], address="test.quickstart.bob")
    bob.register_data_handler(handler)
    try:
        yield bob.connect()
        yield alice.connect()
        ildcp = decode_response((yield alice.send_data(encode_packet(request_prepare(soon(30))))))
        assert IldcpResponse.decode(ildcp.data) == IldcpResponse("test.quickstart.alice", 2, "EUR")
        result = decode_response((yield alice.send_data(encode_packet(
            Prepare(1000, soon(30), CONDITION, "test.quickstart.bob.shop", b"order 7")))))
        assert result == Fulfill(FULFILLMENT, b"")
        (arrived,) = handler.received
        assert arrived.amount == 990  # CONNECTOR_SPREAD=0.01 applied
        assert arrived.expires_at <= datetime.now(timezone.utc) + timedelta(milliseconds=20000)  # MAX_HOLD_TIME
    finally:
        yield alice.disconnect()
        yield bob.disconnect()
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    assert "test.quickstart" in connector.full_output()
