"""IL-DCP over a real BTP link: an ilptx connector without ilpAddress takes it from its parent."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x33" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def soon(seconds=10):
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest_twisted.inlineCallbacks
def test_child_connector_takes_its_address_from_the_parent():
    """Upstream test.up serves 'downstream' as a child; downstream (no ilpAddress) becomes test.up.downstream
    and a payment from downstream's own child reaches a client of the parent."""
    started, clients = [], []
    try:
        up = build_connector(parse_config({
            "ilpAddress": "test.up", "spread": 0, "accounts": {
                "downstream": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                               "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": "down"}}},
                "shop": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                         "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": "shop"}}}}}),
            reactor=reactor)
        up.startService()
        started.append(up)
        yield up.ready
        down = build_connector(parse_config({
            "spread": 0, "accounts": {
                "parent": {"relation": "parent", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                           "options": {"server": f"btp+ws://:down@127.0.0.1:{up.accounts.get('downstream').plugin.port}"}},
                "me": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                       "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": "me"}}}}}),
            reactor=reactor)
        down.startService()
        started.append(down)
        yield down.ready
        assert down.address == "test.up.downstream"

        shop = BtpPlugin({"server": f"btp+ws://:shop@127.0.0.1:{up.accounts.get('shop').plugin.port}"},
                         account_id="shop-client", reactor=reactor)
        clients.append(shop)
        handler = fulfilling_handler([FULFILLMENT], address="test.up.shop")
        shop.register_data_handler(handler)
        yield shop.connect()
        me = BtpPlugin({"server": f"btp+ws://:me@127.0.0.1:{down.accounts.get('me').plugin.port}"},
                       account_id="me-client", reactor=reactor)
        clients.append(me)
        yield me.connect()
        # downstream routes everything it does not know to its parent (defaultRoute auto)
        result = decode_response((yield me.send_data(encode_packet(
            Prepare(500, soon(), CONDITION, "test.up.shop.basket", b"")))))
        assert result == Fulfill(FULFILLMENT, b"")
        assert handler.received[0].amount == 500
        # and the parent routes test.up.downstream.* back down to it
        assert up.routing_table.resolve("test.up.downstream.me.x") == "downstream"
        assert down.routing_table.resolve("test.up.downstream.me.x") == "me"
    finally:
        for plugin in clients:
            yield plugin.disconnect()
        for connector in reversed(started):
            yield connector.stopService()
