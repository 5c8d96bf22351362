"""mini-accounts inside a connector: many clients on one port, IL-DCP per client, payments between them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor

from ilptx.codec.ildcp import IldcpResponse, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpPlugin
from ilptx.transport.btp_session import BtpAuthError
from ilptx.stores.memory import MemoryStore
from ilptx.testing import fulfilling_handler

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x77" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def soon(seconds=10):
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest_twisted.inlineCallbacks
def test_two_clients_of_one_mini_accounts_account_pay_each_other():
    """Clients alice and bob of account 'mini' get test.hub.mini.<name> by IL-DCP; alice pays bob; tokens are kept."""
    store = MemoryStore()
    hub = build_connector(parse_config({"ilpAddress": "test.hub", "spread": 0, "accounts": {
        "mini": {"relation": "child", "plugin": "ilp-plugin-mini-accounts", "assetCode": "USD", "assetScale": 6,
                 "options": {"listener": {"host": "127.0.0.1", "port": 0}}}}}), reactor=reactor, store=store)
    hub.startService()
    clients = []
    try:
        yield hub.ready
        port = hub.accounts.get("mini").plugin.port
        alice = BtpPlugin({"server": f"btp+ws://alice:a-token@127.0.0.1:{port}"}, account_id="alice", reactor=reactor)
        bob = BtpPlugin({"server": f"btp+ws://bob:b-token@127.0.0.1:{port}"}, account_id="bob", reactor=reactor)
        clients += [alice, bob]
        handler = fulfilling_handler([FULFILLMENT], address="test.hub.mini.bob")
        bob.register_data_handler(handler)
        yield alice.connect()
        yield bob.connect()
        for client, name in ((alice, "alice"), (bob, "bob")):
            raw = yield client.send_data(encode_packet(request_prepare(soon(30))))
            assert IldcpResponse.decode(decode_response(raw).data) == IldcpResponse(f"test.hub.mini.{name}", 6, "USD")
        result = decode_response((yield alice.send_data(encode_packet(
            Prepare(250, soon(), CONDITION, "test.hub.mini.bob.inv", b"")))))
        assert result == Fulfill(FULFILLMENT, b"")
        assert handler.received[0].amount == 250
        # the first login registered alice's token in the connector's store, hashed
        keys = yield store.keys("mini-accounts:")
        assert any("alice" in key for key in keys)
        assert all("a-token" not in (store.data[key]) for key in keys)
        # someone else cannot log in as alice
        impostor = BtpPlugin({"server": f"btp+ws://alice:other@127.0.0.1:{port}"}, account_id="x", reactor=reactor)
        clients.append(impostor)
        with pytest.raises(BtpAuthError):
            yield impostor.connect()
    finally:
        for client in clients:
            yield client.disconnect()
        yield hub.stopService()
