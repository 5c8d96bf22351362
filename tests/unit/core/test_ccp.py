"""CCP route broadcasting: selection, epochs, expiry, withdrawal and resync, with task.Clock.

The network tests build real connectors (``build_connector``) linked by in-memory plugins
and drive them with one fake clock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock

from ilptx.codec.ccp import MODE_SYNC, Route as CcpRoute, RouteControlRequest, RouteUpdateRequest
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.core.accounts import Account, Accounts
from ilptx.core.ccp import CcpReceiver, RouteManager
from ilptx.core.routing import RoutingTable
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, fulfilling_handler

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FULFILLMENT = b"\x44" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
TABLE = b"\x01" * 16


def update(from_epoch, to_epoch, new=(), withdrawn=(), table=TABLE, hold_down=45000):
    return RouteUpdateRequest(table, to_epoch, from_epoch, to_epoch, hold_down, "test.peer",
                              tuple(CcpRoute(p, tuple(path), b"\x00" * 32, ()) for p, path in new),
                              tuple(withdrawn))


def manager_with(*accounts, configured=()):
    accts = Accounts()
    for account_id, relation in accounts:
        plugin = MemoryPlugin(account_id)
        accts.add(Account(account_id, relation, "USD", 9, plugin=plugin))
    table = RoutingTable()
    clock = Clock()
    manager = RouteManager(accts, table, lambda: "test.me", clock, configured=configured, routing_secret="")
    for account in accts:
        manager.receivers[account.id] = CcpReceiver(account, clock)
    return manager, table, clock


# -- receiver ---------------------------------------------------------------------------------

def test_receiver_applies_updates_and_withdrawals():
    """New routes are added, withdrawn ones removed, and the epoch advances."""
    account = Account("p", "peer", "USD", 9, plugin=MemoryPlugin("p"))
    receiver = CcpReceiver(account, Clock())
    changed, gap = receiver.handle_route_update(update(0, 2, new=[("test.x", ["test.peer"]), ("test.y", ["test.peer"])]))
    assert sorted(changed) == ["test.x", "test.y"] and not gap and receiver.epoch == 2
    changed, gap = receiver.handle_route_update(update(2, 3, withdrawn=["test.x"]))
    assert changed == ["test.x"] and set(receiver.routes) == {"test.y"} and receiver.epoch == 3


def test_receiver_detects_an_epoch_gap_and_ignores_old_updates():
    """An update starting after our epoch is a gap (resync); an update older than ours is ignored."""
    receiver = CcpReceiver(Account("p", "peer", "USD", 9, plugin=MemoryPlugin("p")), Clock())
    receiver.handle_route_update(update(0, 5, new=[("test.x", ["test.peer"])]))
    assert receiver.handle_route_update(update(7, 9, new=[("test.z", ["test.peer"])])) == ([], True)
    assert receiver.handle_route_update(update(0, 3, new=[("test.old", ["test.peer"])])) == ([], False)
    assert set(receiver.routes) == {"test.x"}


def test_new_routing_table_id_resets_the_epoch():
    """A peer that restarted (new routing table id) is followed from epoch 0."""
    receiver = CcpReceiver(Account("p", "peer", "USD", 9, plugin=MemoryPlugin("p")), Clock())
    receiver.handle_route_update(update(0, 5, new=[("test.x", ["test.peer"])]))
    changed, gap = receiver.handle_route_update(update(0, 1, new=[("test.y", ["test.peer"])], table=b"\x02" * 16))
    assert changed == ["test.y"] and not gap and receiver.epoch == 1


# -- selection ------------------------------------------------------------------------------------

def test_selection_configured_beats_local_beats_learned():
    """configured > local > learned."""
    manager, table, _ = manager_with(("kid", "child"), ("p", "peer"), configured=[("test.me.kid", "p")])
    manager.receivers["p"].routes["test.me.kid"] = manager.best_route("test.me.kid")
    manager.start()
    assert table.resolve("test.me.kid") == "p"  # the configured route wins over the child's local route


def test_selection_child_peer_parent_then_path_then_id():
    """Learned routes: child > peer > parent, then the shorter path, then the account id."""
    manager, table, _ = manager_with(("up", "parent"), ("p2", "peer"), ("p1", "peer"), ("kid", "child"))
    for account_id, path in (("up", ["test.up"]), ("p2", ["test.a"]), ("p1", ["test.a"])):
        manager.receivers[account_id].handle_route_update(update(0, 1, new=[("test.far", path)]))
    manager._update_prefixes(["test.far"])
    assert table.resolve("test.far") == "p1"  # peers beat the parent; equal paths: lower id
    manager.receivers["p2"].handle_route_update(update(1, 2, new=[("test.far", [])]))
    manager._update_prefixes(["test.far"])
    assert table.resolve("test.far") == "p2"  # shorter path
    manager.receivers["kid"].handle_route_update(update(0, 1, new=[("test.far", ["test.x", "test.y", "test.z"])]))
    manager._update_prefixes(["test.far"])
    assert table.resolve("test.far") == "kid"  # a child beats everything learned


def test_routes_through_us_and_outside_the_global_prefix_are_dropped():
    """A path containing our address (a loop) or a prefix outside the global prefix is not learned."""
    manager, table, _ = manager_with(("p", "peer"))
    manager.add_peer = None  # not used here
    manager.senders = {}
    manager.handle_route_update(manager.accounts.get("p"), update(0, 1, new=[
        ("test.loop", ["test.p", "test.me"]), ("g.other", ["test.p"]), ("test", ["test.p"]), ("test.ok", ["test.p"])]))
    assert table.resolve("test.loop.x") is None and table.resolve("g.other") is None
    assert table.resolve("test.ok") == "p"


def test_forwarding_log_records_each_change_once():
    """Every change of next hop is an epoch; a superseded epoch is blanked."""
    manager, table, _ = manager_with(("p", "peer"), ("q", "peer"))
    manager.start()
    start = manager.current_epoch
    manager.receivers["p"].handle_route_update(update(0, 1, new=[("test.far", ["test.p"])]))
    manager._update_prefixes(["test.far"])
    manager.receivers["q"].handle_route_update(update(0, 1, new=[("test.far", [])]))
    manager._update_prefixes(["test.far"])
    assert manager.current_epoch == start + 2
    assert manager.log_entries[start] is None  # superseded by q's shorter route
    prefix, route = manager.log_entries[start + 1]
    assert prefix == "test.far" and route.next_hop == "q" and route.path == ("test.me",)
    assert manager.status()["localRoutingTable"]["test.far"] == {"nextHop": "q", "path": ""}


# -- a network of real connectors ------------------------------------------------------------------

class Network:
    """Connectors linked by memory plugins. ``links``: ((conn, account), (conn, account)) pairs."""

    def __init__(self, configs: dict, links):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.plugins: dict = {}
        self.clients: dict = {}
        self.partner = {}
        for a, b in links:
            self.partner[a], self.partner[b] = b, a
        self.connectors = {}
        for name, cfg in configs.items():
            self.connectors[name] = build_connector(
                parse_config(cfg), reactor=self.clock, plugin_factories={"mem": self._factory(name)},
                store=MemoryStore(), custom_middleware_factories={})
        for (conn, account), plugin in self.plugins.items():
            other = self.partner.get((conn, account))
            if other is not None:
                plugin.peer = self.plugins[other]
        for connector in self.connectors.values():
            connector.startService()
        for client in self.clients.values():
            client.connect()
        self.clock.advance(0)

    def _factory(self, conn):
        def make(options, *, account_id, services):
            plugin = MemoryPlugin(f"{conn}:{account_id}")
            self.plugins[(conn, account_id)] = plugin
            if (conn, account_id) not in self.partner:  # an app: give it a client side
                client = MemoryPlugin(f"{conn}:{account_id}-client")
                plugin.peer, client.peer = client, plugin
                self.clients[(conn, account_id)] = client
            return plugin
        return make

    def settle(self, seconds=1.0, step=0.05):
        for _ in range(int(seconds / step)):
            self.clock.advance(step)

    def pay(self, conn, account, destination, expires_in=20):
        expires = EPOCH + timedelta(seconds=self.clock.seconds() + expires_in)
        out = []
        self.clients[(conn, account)].send_data(encode_packet(
            Prepare(10, expires, CONDITION, destination, b""))).addCallback(out.append)
        self.clock.advance(0)
        return decode_response(out[0]) if out else None


def acct(relation, **extra):
    return {"relation": relation, "plugin": "mem", "assetCode": "USD", "assetScale": 9, **extra}


def line():
    return Network({
        "A": {"ilpAddress": "test.a", "spread": 0, "accounts": {"b": acct("peer"), "alice": acct("child")}},
        "B": {"ilpAddress": "test.b", "spread": 0, "accounts": {"a": acct("peer"), "c": acct("peer")}},
        "C": {"ilpAddress": "test.c", "spread": 0, "accounts": {"b": acct("peer"), "carol": acct("child")}},
    }, links=[(("A", "b"), ("B", "a")), (("B", "c"), ("C", "b"))])


def test_line_routes_propagate_and_a_payment_crosses():
    """A–B–C: A learns test.c through B; alice (child of A) pays carol (child of C)."""
    net = line()
    net.settle(1.0)
    a = net.connectors["A"]
    assert a.routing_table.resolve("test.c.carol.x") == "b"
    assert a.switch.route_manager.best["test.c"].path == ("test.b", "test.c")
    carol = fulfilling_handler([FULFILLMENT], address="test.c.carol")
    net.clients[("C", "carol")].register_data_handler(carol)
    assert net.pay("A", "alice", "test.c.carol.x") == Fulfill(FULFILLMENT, b"")
    assert carol.received[0].destination == "test.c.carol.x"
    # and C learned A's address the other way
    assert net.connectors["C"].routing_table.resolve("test.a.alice") == "b"


def test_link_drop_withdraws_routes_and_return_restores_them():
    """When B–C drops A's route to C is withdrawn at once (F02, not a timeout); when it returns payments flow."""
    net = line()
    net.settle(1.0)
    carol = fulfilling_handler([FULFILLMENT], address="test.c.carol")
    net.clients[("C", "carol")].register_data_handler(carol)
    net.plugins[("B", "c")].disconnect()
    net.settle(0.5)
    a = net.connectors["A"]
    assert a.routing_table.resolve("test.c.carol") is None
    reject = net.pay("A", "alice", "test.c.carol.x")
    assert isinstance(reject, Reject) and reject.code == "F02" and reject.triggered_by == "test.a"
    net.plugins[("B", "c")].connect()
    net.settle(1.0)
    assert a.routing_table.resolve("test.c.carol") == "b"
    assert net.pay("A", "alice", "test.c.carol.y") == Fulfill(FULFILLMENT, b"")


def test_learned_routes_expire_after_the_hold_down_time():
    """A peer that stops sending updates has its routes dropped after the hold-down time."""
    net = Network({
        "A": {"ilpAddress": "test.a", "accounts": {"b": acct("peer")}},
        "B": {"ilpAddress": "test.b", "routeBroadcastInterval": 600000, "routeExpiry": 5000,
              "accounts": {"a": acct("peer")}},
    }, links=[(("A", "b"), ("B", "a"))])
    net.settle(1.0)
    manager = net.connectors["A"].switch.route_manager
    assert net.connectors["A"].routing_table.resolve("test.b") == "b"
    # B goes silent (it accepts route control but never sends updates again); its routes
    # were announced with a 5 s hold-down, so they expire on A
    b_manager = net.connectors["B"].switch.route_manager
    b_manager.senders["a"].stop()
    b_manager.handle_route_control = lambda account, control: None
    net.settle(6.0)
    assert net.connectors["A"].routing_table.resolve("test.b") is None
    assert "test.b" not in manager.receivers["b"].routes


def test_triangle_picks_the_shorter_path():
    """A–B, B–C, A–C: A reaches C directly, not through B."""
    net = Network({
        "A": {"ilpAddress": "test.a", "accounts": {"b": acct("peer"), "c": acct("peer")}},
        "B": {"ilpAddress": "test.b", "accounts": {"a": acct("peer"), "c": acct("peer")}},
        "C": {"ilpAddress": "test.c", "accounts": {"a": acct("peer"), "b": acct("peer")}},
    }, links=[(("A", "b"), ("B", "a")), (("B", "c"), ("C", "b")), (("A", "c"), ("C", "a"))])
    net.settle(1.0)
    assert net.connectors["A"].routing_table.resolve("test.c") == "c"
    assert net.connectors["A"].switch.route_manager.best["test.c"].path == ("test.c",)
    net.plugins[("A", "c")].disconnect()
    net.settle(1.0)
    assert net.connectors["A"].routing_table.resolve("test.c") == "b"  # falls back to the longer path


def test_routes_from_peers_are_not_announced_to_parents():
    """A parent does not learn our peers' routes from us."""
    net = Network({
        "UP": {"ilpAddress": "test.up", "accounts": {"down": acct("child", sendRoutes=True, receiveRoutes=True)}},
        "D": {"ilpAddress": "test.d", "accounts": {"up": acct("parent"), "side": acct("peer")}},
        "S": {"ilpAddress": "test.s", "accounts": {"d": acct("peer")}},
    }, links=[(("UP", "down"), ("D", "up")), (("D", "side"), ("S", "d"))])
    net.settle(1.0)
    assert net.connectors["D"].routing_table.resolve("test.s") == "side"
    assert net.connectors["UP"].routing_table.resolve("test.s") is None
    assert net.connectors["UP"].routing_table.resolve("test.d") == "down"


def test_broadcast_disabled_still_routes_children_configured_and_default():
    """routeBroadcastEnabled false: no CCP, but children, static routes and the default route work."""
    net = Network({
        "A": {"ilpAddress": "test.a", "routeBroadcastEnabled": False,
              "routes": [{"targetPrefix": "test.far", "peerId": "b"}],
              "accounts": {"b": acct("peer"), "up": acct("parent"), "kid": acct("child")}},
    }, links=[])
    a = net.connectors["A"]
    assert a.switch.route_manager is None
    assert a.routing_table.resolve("test.a.kid") == "kid"
    assert a.routing_table.resolve("test.far.x") == "b"
    assert a.routing_table.resolve("test.anything") == "up"


def test_admin_routing_shows_ccp_state():
    """GET /routing has the reference's shape with real CCP state (table id, epoch, log, peers)."""
    import json as jsonlib

    from treq.testing import StubTreq

    from ilptx.admin.api import AdminApi

    net = line()
    net.settle(1.0)
    api = AdminApi(net.connectors["B"])
    treq = StubTreq(api.app.resource())
    out = []
    treq.get("http://admin/routing").addCallback(treq.content).addCallback(out.append)
    treq.flush()
    body = jsonlib.loads(out[0])
    assert set(body) == {"routingTableId", "currentEpoch", "localRoutingTable", "forwardingRoutingTable",
                         "routingLog", "peers"}
    assert body["localRoutingTable"]["test.c"] == {"nextHop": "c", "path": "test.c"}
    assert body["forwardingRoutingTable"]["test.c"] == {"nextHop": "c", "path": "test.b test.c"}
    assert body["peers"]["a"]["send"]["mode"] == "MODE_SYNC" and body["currentEpoch"] >= 3
    assert len(body["routingTableId"]) == 36


class RecordingPlugin(MemoryPlugin):
    """A connected plugin that records what it sends and fulfills CCP messages."""

    def __init__(self, account_id):
        super().__init__(account_id)
        self.sent = []

    def is_connected(self):
        return True

    def send_data(self, data):
        from twisted.internet.defer import succeed

        from ilptx.codec.ilp import decode_prepare

        self.sent.append(decode_prepare(data))
        return succeed(encode_packet(Fulfill(bytes(32), b"")))


def recording_manager(relation="peer", **settings):
    accts = Accounts()
    plugin = RecordingPlugin("p")
    accts.add(Account("p", relation, "USD", 9, plugin=plugin, settings=settings))
    clock = Clock()
    manager = RouteManager(accts, RoutingTable(), lambda: "test.me", clock, routing_secret="c2VjcmV0",
                           broadcast_interval_ms=30000)
    return manager, plugin, clock, accts.get("p")


def test_epoch_gap_triggers_a_resync():
    """An update that skips epochs is not applied; a route control with our last epoch goes out."""
    from ilptx.codec.ccp import decode_route_control

    manager, plugin, clock, peer = recording_manager()
    manager.add_peer(peer)
    manager.handle_route_update(peer, update(0, 4, new=[("test.x", ["test.p"])]))
    plugin.sent.clear()
    manager.handle_route_update(peer, update(9, 12, new=[("test.y", ["test.p"])]))
    assert manager.table.resolve("test.y") is None
    (control,) = [p for p in plugin.sent if p.destination == "peer.route.control"]
    request = decode_route_control(control.data)
    assert request.mode == MODE_SYNC and request.last_known_epoch == 4 and request.last_known_routing_table_id == TABLE


def test_updates_carry_at_most_50_epochs_and_continue_from_the_peers_epoch():
    """A peer behind by 120 epochs gets 50, 50 and 20, each from where the last ended."""
    manager, plugin, clock, peer = recording_manager()
    manager.start()
    for i in range(120 - manager.current_epoch):
        manager.configured[f"test.c{i}"] = "p"
        manager._update_prefixes([f"test.c{i}"])
    assert manager.current_epoch == 120
    manager.handle_route_control(peer, RouteControlRequest(MODE_SYNC, manager.routing_table_id, 0, ()))
    for _ in range(20):
        clock.advance(0.2)
    from ilptx.codec.ccp import decode_route_update

    updates = [decode_route_update(p.data) for p in plugin.sent if p.destination == "peer.route.update"]
    assert [(u.from_epoch_index, u.to_epoch_index) for u in updates[:3]] == [(0, 50), (50, 100), (100, 120)]
    assert all(u.routing_table_id == manager.routing_table_id and u.speaker == "test.me" for u in updates)


def test_heartbeat_every_broadcast_interval():
    """An up-to-date peer in SYNC still gets an (empty) update every routeBroadcastInterval."""
    manager, plugin, clock, peer = recording_manager()
    manager.start()
    manager.handle_route_control(peer, RouteControlRequest(MODE_SYNC, manager.routing_table_id, 0, ()))
    clock.advance(0.2)
    count = len([p for p in plugin.sent if p.destination == "peer.route.update"])
    clock.advance(29.0)
    assert len([p for p in plugin.sent if p.destination == "peer.route.update"]) == count
    clock.advance(1.1)
    assert len([p for p in plugin.sent if p.destination == "peer.route.update"]) == count + 1


def test_children_do_not_exchange_routes_by_default():
    """sendRoutes/receiveRoutes default off for a child (F00 for its CCP messages), on when configured."""
    import pytest as _pytest

    from ilptx.errors import BadRequestError

    manager, plugin, clock, child = recording_manager("child")
    manager.add_peer(child)
    assert plugin.sent == [] and manager.senders == {} and manager.receivers == {}
    with _pytest.raises(BadRequestError):
        manager.handle_route_control(child, RouteControlRequest(MODE_SYNC, ZERO, 0, ()))
    manager2, plugin2, _, child2 = recording_manager("child", sendRoutes=True, receiveRoutes=True)
    manager2.add_peer(child2)
    assert [p.destination for p in plugin2.sent] == ["peer.route.control"]


ZERO = bytes(16)


def test_route_auth_is_the_references_hmac_and_forwarded_auth_its_hash():
    """auth = HMAC-SHA256(base64-decoded routingSecret, prefix); announced auth = SHA-256(auth)."""
    import hmac

    manager, plugin, clock, peer = recording_manager()
    manager.start()
    expected = hmac.new(b"secret", b"test.me", hashlib.sha256).digest()
    assert manager.local_routes["test.me"].auth == expected
    epoch, route = manager.forwarding["test.me"]
    assert route.auth == hashlib.sha256(expected).digest() and route.path == ("test.me",)
