"""ilptx.testing.ConnectorHarness: a plugin author's connector on a fake network, proven with the built-in
btp plugin in the account under test and a BtpPlugin as its counterparty."""

from __future__ import annotations

import pytest

from ilptx.codec.ccp import MODE_SYNC, RouteControlRequest, decode_route_control
from ilptx.codec.ildcp import PEER_PROTOCOL_CONDITION, PEER_PROTOCOL_FULFILLMENT
from ilptx.codec.ilp import Fulfill, Reject, decode_response, encode_packet
from ilptx.errors import ConfigError
from ilptx.plugins.btp import btp_factory
from ilptx.testing import ConnectorHarness, MemoryPlugin, fulfilling_handler, plugin_services, result_of

FULFILLMENT = b"\x42" * 32
LISTENER = {"listener": {"host": "127.0.0.1", "port": 7768, "secret": "tok"}}


@pytest.fixture
def harness():
    """A harness whose account ``plugin`` is a btp listener, with a connected BtpPlugin counterparty."""
    harness = ConnectorHarness(btp_factory, LISTENER, relation="peer",
                               settings={"balance": {"minimum": "-1000", "maximum": "1000"}})
    counterparty = btp_factory({"server": "btp+ws://:tok@localhost:7768/"}, account_id="counterparty",
                               services=plugin_services(harness.network.reactor, account_id="counterparty"))
    handler = fulfilling_handler([FULFILLMENT, PEER_PROTOCOL_FULFILLMENT], address="test.peer")
    counterparty.register_data_handler(handler)
    harness.start()
    connected = counterparty.connect()
    harness.network.settle()
    result_of(connected)
    harness.counterparty, harness.counterparty_handler = counterparty, handler
    yield harness
    harness.stop()
    result_of(counterparty.disconnect())


def test_prepare_from_memory_account_reaches_the_plugins_counterparty(harness):
    """harness.send: a Prepare from the memory account goes through the plugin to its counterparty and is fulfilled."""
    response = result_of(harness.send(harness.prepare(25, FULFILLMENT)))
    assert response == Fulfill(FULFILLMENT, b"")
    payments = [p for p in harness.counterparty_handler.received if p.destination == "test.peer.x"]
    assert [p.amount for p in payments] == [25]
    assert harness.balance("plugin") == -25  # we owe the counterparty what it was paid


def test_prepare_from_the_counterparty_reaches_the_memory_account(harness):
    """A Prepare the plugin's counterparty sends to test.harness.memory.x comes out at the memory client."""
    handler = harness.receive([FULFILLMENT])
    prepare = harness.prepare(9, FULFILLMENT, "test.harness.memory.x")
    d = harness.counterparty.send_data(encode_packet(prepare))
    harness.network.settle()
    assert decode_response(result_of(d)) == Fulfill(FULFILLMENT, b"")
    assert [p.destination for p in handler.received] == ["test.harness.memory.x"]
    assert harness.balance("plugin") == 9


def test_unknown_destination_is_rejected_by_the_connector(harness):
    """A Prepare nobody routes gets the connector's F02 Reject through the harness."""
    response = result_of(harness.send(harness.prepare(1, FULFILLMENT, "test.nowhere.x")))
    assert isinstance(response, Reject) and response.code == "F02"


def test_peer_plugin_receives_ccp_route_control_right_after_connecting(harness):
    """Right after a peer's plugin connects, its counterparty gets one peer.route.control Prepare: SYNC from epoch 0."""
    [control] = [p for p in harness.counterparty_handler.received if p.destination == "peer.route.control"]
    assert control.amount == 0 and control.execution_condition == PEER_PROTOCOL_CONDITION
    assert decode_route_control(control.data) == RouteControlRequest(MODE_SYNC, bytes(16), 0, ())


def test_harness_refuses_a_factory_the_connector_would_refuse():
    """The harness builds the plugin as the connector does: a factory with the wrong signature is a ConfigError."""
    with pytest.raises(ConfigError, match=r"^accounts\.plugin\.plugin: .*cannot be called as factory\(options, \*, "
                                          r"account_id, services\)"):
        ConnectorHarness(lambda options, account_id, reactor: MemoryPlugin(account_id))
