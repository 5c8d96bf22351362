"""The composition root: plugins found by name, routes built, service lifecycle."""

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.errors import ConfigError
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, fulfilling_handler

FULFILLMENT = b"\x01" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


class Factory:
    """A ledger plugin factory that hands out MemoryPlugins and keeps the client sides."""

    def __init__(self):
        self.clients = {}
        self.options = {}

    def __call__(self, options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        self.clients[account_id] = client
        self.options[account_id] = options
        return plugin


def config(**extra):
    data = {
        "ilpAddress": "test.node",
        "spread": 0,
        "accounts": {
            "alice": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
                      "options": {"x": {"y": [1, 2]}}},
            "bob": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
                    "ilpAddressSegment": "robert"},
            "up": {"relation": "parent", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
            "side": {"relation": "peer", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
        },
        "routes": [{"targetPrefix": "g.side", "peerId": "side"}],
    }
    data.update(extra)
    return parse_config(data)


def build(**extra):
    factory = Factory()
    clock = Clock()
    clock.advance(1_700_000_000)
    connector = build_connector(config(**extra), reactor=clock, plugin_factories={"mem": factory},
                                store=MemoryStore(), custom_middleware_factories={})
    return connector, factory, clock


def test_unknown_plugin_names_the_key_and_installed_names():
    """An unknown plugin name stops start-up naming the account key and what is installed."""
    with pytest.raises(ConfigError) as info:
        build_connector(config(), reactor=Clock(), plugin_factories={"btp": Factory(), "other": Factory()},
                        store=MemoryStore(), custom_middleware_factories={})
    assert str(info.value) == "accounts.alice.plugin: unknown plugin 'mem'; installed: btp, other"


def test_routes_children_static_and_default_parent():
    """Children get <address>.<segment>, static routes apply, the parent is the default route."""
    connector, _, _ = build()
    table = connector.routing_table
    assert table.resolve("test.node.alice.x") == "alice"
    assert table.resolve("test.node.robert") == "bob"
    assert table.resolve("test.node.bob") == "up"  # not a child segment: default route
    assert table.resolve("g.side.1") == "side"
    assert table.resolve("g.elsewhere") == "up"


def test_default_route_can_be_disabled():
    """defaultRoute '' leaves unknown destinations unroutable."""
    connector, _, _ = build(defaultRoute="")
    assert connector.routing_table.resolve("g.elsewhere") is None


def test_plugin_gets_plain_options():
    """Plugins receive their options as plain, mutable dicts and lists."""
    _, factory, _ = build()
    assert factory.options["alice"] == {"x": {"y": [1, 2]}}
    assert type(factory.options["alice"]["x"]) is dict


def test_service_connects_forwards_and_stops_cleanly():
    """Start connects the plugins; a packet crosses; stop waits for in-flight packets then disconnects."""
    connector, factory, clock = build()
    connector.startService()
    for client in factory.clients.values():
        client.connect()
    factory.clients["bob"].register_data_handler(fulfilling_handler([FULFILLMENT]))
    expires = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=clock.seconds() + 10)
    out = []
    factory.clients["alice"].send_data(encode_packet(Prepare(5, expires, CONDITION, "test.node.robert.1", b""))
                                       ).addCallback(out.append)
    assert decode_response(out[0]) == Fulfill(FULFILLMENT, b"")

    pending = Deferred()
    factory.clients["bob"].deregister_data_handler()
    factory.clients["bob"].register_data_handler(lambda data: pending)
    # different data: an identical Prepare would be answered by deduplicate from its cache
    factory.clients["alice"].send_data(encode_packet(Prepare(5, expires, CONDITION, "test.node.robert.1", b"2"))
                                       ).addCallback(out.append)
    stopped = []
    connector.stopService().addCallback(stopped.append)
    assert stopped == [] and connector.accounts.get("alice").plugin.connected
    pending.callback(encode_packet(Fulfill(FULFILLMENT, b"")))
    assert len(stopped) == 1 and len(out) == 2
    assert not any(account.plugin.connected for account in connector.accounts)


def test_ready_fires_after_initial_connect_timeout_when_a_peer_never_connects():
    """ready fires after initialConnectTimeout (ms) even if a plugin is still connecting."""
    factory = Factory()
    clock = Clock()
    connector = build_connector(config(initialConnectTimeout=2500), reactor=clock, plugin_factories={"mem": factory},
                                store=MemoryStore(), custom_middleware_factories={})
    never = Deferred()
    connector.accounts.get("side").plugin.connect = lambda: never
    connector.startService()
    fired = []
    connector.ready.addCallback(fired.append)
    clock.advance(2.4)
    assert fired == []
    clock.advance(0.2)
    assert fired == [None]


def test_ready_fires_as_soon_as_all_plugins_connected():
    """ready fires at once when every plugin connects, and leaves no timer behind."""
    connector, _, clock = build()
    connector.startService()
    fired = []
    connector.ready.addCallback(fired.append)
    assert fired == [None]
    # the initialConnectTimeout timer is gone (deduplicate's cleanup loops remain, as they should)
    assert [c for c in clock.getDelayedCalls() if "give_up" in getattr(c.func, "__qualname__", "")] == []


def test_balance_gauge_starts_from_the_stored_balances():
    """At start-up every account's balance metric is set from the store (not left empty until a packet)."""
    from ilptx.core.balances import BalanceState
    from ilptx.core.stats import CountingStats

    store = MemoryStore()
    store.balances["alice"] = BalanceState(balance=-42)
    stats = CountingStats()
    connector = build_connector(config(), reactor=Clock(), plugin_factories={"mem": Factory()}, store=store,
                                stats=stats, custom_middleware_factories={})
    connector.startService()
    assert stats.balances == {"alice": -42}


def test_runtime_peer_exchanges_routes_until_removed():
    """A peer added at run time joins CCP route exchange once its plugin connects, and leaves it when removed."""
    from ilptx.node import runtime_account_config

    connector, factory, _ = build()
    connector.startService()
    manager = connector.switch.route_manager
    added = []
    connector.add_account(runtime_account_config(
        "carol", {"relation": "peer", "plugin": "mem", "assetCode": "USD", "assetScale": 9}, "test.node")
    ).addCallback(added.append)
    assert [a.id for a in added] == ["carol"]
    assert "carol" not in manager.senders  # its counterparty has not connected yet
    factory.clients["carol"].connect()
    assert "carol" in manager.senders and "carol" in manager.receivers
    connector.remove_account("carol")
    assert "carol" not in manager.senders and "carol" not in manager.receivers
