"""IL-DCP client: the connector takes its address from its parent (RFC 31), with timeouts and retries."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import Fulfill, Reject, decode_prepare, encode_packet
from ilptx.config import parse_config
from ilptx.errors import ConfigError
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin


class Parent:
    """The parent connector's side of the link: answers IL-DCP as told."""

    def __init__(self):
        self.answers = []  # each: IldcpResponse, a Deferred (never answered) or a Reject
        self.requests = []

    def handler(self, data):
        prepare = decode_prepare(data)
        if prepare.destination.startswith("peer.route."):
            return encode_packet(Fulfill(bytes(32), b""))  # CCP from our route manager: accepted
        self.requests.append(prepare)
        answer = self.answers.pop(0)
        if isinstance(answer, IldcpResponse):
            return encode_packet(response_fulfill(answer))
        if isinstance(answer, Reject):
            return encode_packet(answer)
        return answer


def build(extra=None):
    clock = Clock()
    clock.advance(1_700_000_000)
    clients = {}

    def factory(options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        clients[account_id] = client
        return plugin

    data = {"accounts": {
        "up": {"relation": "parent", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
        "kid": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
    }, **(extra or {})}
    connector = build_connector(parse_config(data), reactor=clock, plugin_factories={"mem": factory},
                                store=MemoryStore(), custom_middleware_factories={})
    parent = Parent()
    clients["up"].register_data_handler(parent.handler)
    return connector, clients, parent, clock


def start(connector, clients):
    connector.startService()
    for client in clients.values():
        client.connect()


def test_address_and_child_routes_come_from_the_parent():
    """Without ilpAddress the parent's IL-DCP answer becomes our address; children route under it."""
    connector, clients, parent, clock = build()
    parent.answers.append(IldcpResponse("test.up.me", 9, "USD"))
    assert connector.address == "unknown"
    start(connector, clients)
    assert parent.requests[0].destination == "peer.config" and parent.requests[0].amount == 0
    assert connector.address == "test.up.me"
    assert connector.routing_table.resolve("test.up.me.kid.x") == "kid"
    assert connector.routing_table.resolve("test.elsewhere") == "up"  # default route: the parent
    ready = []
    connector.ready.addCallback(ready.append)
    assert ready == [None]


def test_request_times_out_and_is_retried():
    """An unanswered request times out (10 s) and is retried after 1 s; ready waits for the address."""
    connector, clients, parent, clock = build({"initialConnectTimeout": 60000})
    parent.answers += [Deferred(), Reject("T00", "test.up", "busy", b""), IldcpResponse("test.up.me", 9, "USD")]
    start(connector, clients)
    ready = []
    connector.ready.addCallback(ready.append)
    assert connector.address == "unknown" and len(parent.requests) == 1
    clock.advance(10)  # first request times out
    clock.advance(1)  # retry → Reject
    assert len(parent.requests) == 2 and connector.address == "unknown" and ready == []
    clock.advance(2)  # second retry → answer
    assert connector.address == "test.up.me" and ready == [None]


def test_reconnecting_parent_is_asked_again_and_routes_move():
    """When the parent reconnects the address is fetched again; child routes follow a new address."""
    connector, clients, parent, clock = build()
    parent.answers += [IldcpResponse("test.up.me", 9, "USD"), IldcpResponse("test.up.renamed", 9, "USD")]
    start(connector, clients)
    plugin = connector.accounts.get("up").plugin
    plugin.disconnect()
    plugin.connect()
    assert connector.address == "test.up.renamed"
    assert connector.routing_table.resolve("test.up.renamed.kid") == "kid"
    assert connector.routing_table.resolve("test.up.me.kid") == "up"  # old child route gone


def test_parent_asset_wins_over_config():
    """A parent that reports another asset code/scale is believed (and logged)."""
    connector, clients, parent, clock = build()
    parent.answers.append(IldcpResponse("test.up.me", 6, "XRP"))
    start(connector, clients)
    up = connector.accounts.get("up")
    assert (up.asset_code, up.asset_scale) == ("XRP", 6)


def test_configured_address_is_not_inherited():
    """With ilpAddress set no IL-DCP request goes to the parent."""
    connector, clients, parent, clock = build({"ilpAddress": "test.mine"})
    start(connector, clients)
    assert parent.requests == [] and connector.address == "test.mine"


def test_inherit_from_names_the_account_and_must_exist():
    """ilpAddressInheritFrom picks the account; an unknown one is a config error."""
    with pytest.raises(ConfigError) as info:
        build({"ilpAddressInheritFrom": "nobody"})
    assert str(info.value) == "ilpAddressInheritFrom: no account named 'nobody'"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": {"p": {"relation": "peer", "plugin": "btp", "assetCode": "X", "assetScale": 1}}})
    assert str(info.value).startswith("ilpAddress: is required")
