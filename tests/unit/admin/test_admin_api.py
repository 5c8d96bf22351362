"""Admin API: every endpoint's path and JSON shape (the reference connector's), and its errors."""

from __future__ import annotations

import json

import pytest
from zope.interface import implementer

from admin_harness import Node, child
from ilptx.codec.ilp import Fulfill, Reject, encode_packet
from ilptx.core.rates import StaticBackend
from ilptx.interfaces import IAdminInfoProvider, IAdminInfoReceiver


@pytest.fixture
def node():
    return Node()


# -- /status, /routing, /accounts -----------------------------------------------------------

def test_status_balances_connected_and_local_routes(node):
    """GET /status: balances as decimal strings, connection per account, local routing table."""
    assert isinstance(node.send(amount=25), Fulfill)
    reply = node.request("GET", "/status")
    assert (reply.code, reply.content_type) == (200, "application/json")
    assert reply.json == {
        "balances": {"alice": "25", "bob": "-25"},
        "connected": {"alice": True, "bob": True},
        "localRoutingTable": {"test.node": {"nextHop": "", "path": ""},
                              "test.node.alice": {"nextHop": "alice", "path": ""},
                              "test.node.bob": {"nextHop": "bob", "path": ""}},
    }


def test_status_lists_only_accounts_with_balance_settings():
    """GET /status: an account without balance settings has no balance entry (as the reference)."""
    node = Node(accounts={"alice": child(balance={"maximum": "10"}), "bob": child()})
    assert node.request("GET", "/status").json["balances"] == {"alice": "0"}


def test_routing_has_the_reference_keys(node):
    """GET /routing: routingTableId, currentEpoch, local and forwarding tables, log, peers."""
    reply = node.request("GET", "/routing").json
    assert set(reply) == {"routingTableId", "currentEpoch", "localRoutingTable", "forwardingRoutingTable",
                          "routingLog", "peers"}
    assert reply["localRoutingTable"]["test.node.bob"] == {"nextHop": "bob", "path": ""}
    assert reply["forwardingRoutingTable"]["test.node"] == {"nextHop": "", "path": "test.node"}
    # our own address is the first epoch of the forwarding log; no CCP peers in this node
    assert reply["routingLog"] == [{"prefix": "test.node", "route": {"nextHop": "", "path": "test.node"}, "epoch": 0}]
    assert reply["peers"] == {} and reply["currentEpoch"] == 1


def test_accounts_hides_plugin_options(node):
    """GET /accounts: address, each account's settings without options, connected, adminInfo."""
    secret = Node(accounts={"alice": child(options={"secret": "hunter2"}), "bob": child()})
    reply = secret.request("GET", "/accounts")
    assert reply.code == 200 and "hunter2" not in reply.text
    assert reply.json == {"address": "test.node", "accounts": {
        "alice": {"info": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
                  "connected": True, "adminInfo": False},
        "bob": {"info": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
                "connected": True, "adminInfo": False}}}


class UndeclaredAdminPlugin:
    """Adds the admin-info methods to a MemoryPlugin, without declaring the abilities."""

    def __init__(self, plugin):
        self._plugin = plugin
        self.sent = []

    def __getattr__(self, name):
        return getattr(self._plugin, name)

    def get_admin_info(self):
        return {"channel": "abc", "balance": "5"}

    def send_admin_info(self, body):
        self.sent.append(body)
        return {"ok": True}


@implementer(IAdminInfoProvider, IAdminInfoReceiver)
class AdminPlugin(UndeclaredAdminPlugin):
    """Adds the optional admin-info abilities to a MemoryPlugin."""


def test_account_admin_info_get_and_post(node):
    """GET/POST /accounts/ID: the plugin's get_admin_info()/send_admin_info(body) results."""
    account = node.connector.accounts.get("alice")
    account.plugin = AdminPlugin(account.plugin)
    reply = node.request("GET", "/accounts/alice")
    assert reply.code == 200
    assert reply.json == {"account": "alice", "plugin": "mem", "info": {"channel": "abc", "balance": "5"}}
    assert node.request("GET", "/accounts").json["accounts"]["alice"]["adminInfo"] is True
    reply = node.request("POST", "/accounts/alice", {"action": "close"})
    assert reply.json == {"account": "alice", "plugin": "mem", "result": {"ok": True}}
    assert account.plugin.sent == [{"action": "close"}]


def test_account_admin_info_is_declared_not_sniffed(node):
    """A plugin with get_admin_info/send_admin_info that does not declare IAdminInfoProvider/-Receiver gets 501."""
    account = node.connector.accounts.get("alice")
    account.plugin = UndeclaredAdminPlugin(account.plugin)
    assert not IAdminInfoProvider.providedBy(account.plugin) and hasattr(account.plugin, "get_admin_info")
    assert node.request("GET", "/accounts/alice").code == 501
    assert node.request("POST", "/accounts/alice", {"x": 1}).code == 501
    assert node.request("GET", "/accounts").json["accounts"]["alice"]["adminInfo"] is False


def test_account_admin_info_errors(node):
    """/accounts/ID: 404 unknown account, 501 plugin without admin info, 400 bad JSON body."""
    reply = node.request("GET", "/accounts/nobody")
    assert (reply.code, reply.text) == (404, "account does not exist. account=nobody\n")
    assert reply.content_type == "text/plain; charset=utf-8"
    assert node.request("GET", "/accounts/alice").code == 501
    assert node.request("POST", "/accounts/alice", {"x": 1}).code == 501
    assert node.request("POST", "/accounts/nobody", {"x": 1}).code == 404
    assert node.request("POST", "/accounts/alice", raw=b"{nope").code == 400


# -- PUT / DELETE /accounts/ID, POST /addAccount -------------------------------------------------

CAROL = {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, "balance": {"maximum": "50"}}


def test_put_account_adds_connects_routes_and_persists(node):
    """PUT /accounts/ID: 201, the account is live (route, pipelines, plugin) and stored as JSON."""
    reply = node.request("PUT", "/accounts/carol", CAROL)
    assert reply.code == 201
    assert reply.json == {"account": "carol", "info": {k: v for k, v in CAROL.items()},
                          "connected": False, "adminInfo": False}
    assert "carol" in node.connector.accounts
    assert node.connector.routing_table.resolve("test.node.carol.x") == "carol"
    assert json.loads(node.store.data["account:carol"]) == CAROL
    node.clients["carol"].connect()
    node.clients["carol"].register_data_handler(lambda data: encode_packet(Fulfill(b"\x33" * 32, b"")))
    assert isinstance(node.send(amount=5, destination="test.node.carol.y"), Fulfill)
    assert node.request("GET", "/balance").json["accounts"]["carol"]["balance"] == "-5"


def test_put_account_replaces_a_runtime_account(node):
    """PUT on an account added at run time replaces it (200) and keeps its balance."""
    assert node.request("PUT", "/accounts/carol", CAROL).code == 201
    node.clients["carol"].connect()
    assert node.request("POST", "/balance", {"accountId": "carol", "amountDiff": "7"}).code == 200
    replaced = {**CAROL, "balance": {"maximum": "99"}}
    reply = node.request("PUT", "/accounts/carol", replaced)
    assert reply.code == 200 and reply.json["info"]["balance"] == {"maximum": "99"}
    assert json.loads(node.store.data["account:carol"]) == replaced
    assert node.request("GET", "/balance").json["accounts"]["carol"]["balance"] == "7"


def test_put_account_errors(node):
    """PUT /accounts/ID: 400 bad JSON, 400 schema failure (config-file message), 400 unknown plugin,
    409 for an account of the config file."""
    reply = node.request("PUT", "/accounts/carol", raw=b'{"relation": ')
    assert reply.code == 400 and reply.text.startswith("invalid JSON body: ")
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "assetScale": 999})
    assert (reply.code, reply.text) == (400, "accounts.carol.assetScale: must be an integer 0..255\n")
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "colour": "red"})
    assert (reply.code, reply.text) == (400, "accounts.carol.colour: unknown key\n")
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "plugin": "nope"})
    assert reply.code == 400 and reply.text.startswith("accounts.carol.plugin: unknown plugin 'nope'")
    reply = node.request("PUT", "/accounts/alice", CAROL)
    assert (reply.code, reply.text) == (409, "accounts.alice is defined in the config file; change it there\n")
    assert "carol" not in node.connector.accounts and node.store.data == {}


def test_put_with_unknown_plugin_keeps_the_old_account(node):
    """A failed replacement (unknown plugin) puts the previous runtime account back."""
    assert node.request("PUT", "/accounts/carol", CAROL).code == 201
    assert node.request("PUT", "/accounts/carol", {**CAROL, "plugin": "nope"}).code == 400
    assert node.connector.accounts.get("carol").plugin_name == "mem"
    assert json.loads(node.store.data["account:carol"]) == CAROL


def test_delete_account_removes_and_forgets(node):
    """DELETE /accounts/ID: 204, no longer routed, no longer stored; 404 the second time."""
    node.request("PUT", "/accounts/carol", CAROL)
    reply = node.request("DELETE", "/accounts/carol")
    assert (reply.code, reply.body) == (204, b"")
    assert "carol" not in node.connector.accounts
    assert node.connector.routing_table.resolve("test.node.carol") is None
    assert "account:carol" not in node.store.data
    assert node.request("DELETE", "/accounts/carol").code == 404


def test_delete_config_file_account_until_restart(node):
    """DELETE works on a config-file account too (it comes back from the file on restart)."""
    assert node.request("DELETE", "/accounts/bob").code == 204
    assert "bob" not in node.connector.accounts
    assert node.send(amount=1).code == "F02"


def test_add_account_reference_form(node):
    """POST /addAccount {id, options}: the reference's shape {plugin: id, connected}, persisted."""
    reply = node.request("POST", "/addAccount", {"id": "dave", "options": CAROL})
    assert reply.code == 200 and reply.json == {"plugin": "dave", "connected": False}
    assert "dave" in node.connector.accounts and "account:dave" in node.store.data


def test_add_account_errors(node):
    """POST /addAccount: 400 bad JSON / missing id or options / schema, 409 existing id."""
    assert node.request("POST", "/addAccount", raw=b"nope").code == 400
    assert node.request("POST", "/addAccount").code == 400
    assert node.request("POST", "/addAccount", {"options": CAROL}).code == 400
    assert node.request("POST", "/addAccount", {"id": "dave"}).code == 400
    reply = node.request("POST", "/addAccount", {"id": "dave", "options": {**CAROL, "relation": "friend"}})
    assert (reply.code, reply.text) == (400, "accounts.dave.relation: must be one of parent, peer, child\n")
    reply = node.request("POST", "/addAccount", {"id": "alice", "options": CAROL})
    assert (reply.code, reply.text) == (409, "account already exists. id=alice\n")
    reply = node.request("POST", "/addAccount", {"id": "bad id", "options": CAROL})
    assert (reply.code, reply.text) == (400, "accounts: account ids may only hold letters, digits, _ ~ -\n")


# -- /balance ---------------------------------------------------------------------------------------

def test_get_balance_shape(node):
    """GET /balance: {accounts: {id: {balance, minimum, maximum, reservations}}} as decimal strings."""
    assert isinstance(node.send(amount=30), Fulfill)
    assert node.request("GET", "/balance").json == {"accounts": {
        "alice": {"balance": "30", "minimum": "-Infinity", "maximum": "1000",
                  "incomingReserved": "0", "outgoingReserved": "0", "settling": "0"},
        "bob": {"balance": "-30", "minimum": "-1000", "maximum": "0",
                "incomingReserved": "0", "outgoingReserved": "0", "settling": "0"}}}


def test_post_balance_adjusts_and_returns_the_new_balance(node):
    """POST /balance: applies amountDiff (exact past 2^64) and answers the account's new entry."""
    big = str(2**64 + 3)
    reply = node.request("POST", "/balance", {"accountId": "alice", "amountDiff": big})
    assert reply.code == 200
    assert reply.json == {"accountId": "alice", "balance": big, "minimum": "-Infinity", "maximum": "1000",
                          "incomingReserved": "0", "outgoingReserved": "0", "settling": "0"}
    reply = node.request("POST", "/balance", {"accountId": "alice", "amountDiff": "-" + big})
    assert reply.json["balance"] == "0"
    assert node.store.balances["alice"].balance == 0
    assert 'ilp_connector_balance{account="alice",asset="USD",scale="9"} 0' in node.request("GET", "/metrics").text


def test_post_balance_below_threshold_settles(node):
    """POST /balance with a negative diff past settleThreshold starts a settlement (as the reference)."""
    reply = node.request("POST", "/balance", {"accountId": "bob", "amountDiff": "-600"})
    assert reply.json["balance"] == "-600"  # the adjusted balance; the settlement follows
    assert node.connector.accounts.get("bob").plugin.sent_money == [600]
    assert node.request("GET", "/balance").json["accounts"]["bob"]["balance"] == "0"  # back to settleTo


@pytest.mark.parametrize("body, message", [
    ([1, 2], "invalid balance update: the body must be {\"accountId\": string, \"amountDiff\": string}"),
    ({"amountDiff": "1"}, "invalid balance update: accountId is required"),
    ({"accountId": "alice"}, "invalid balance update: amountDiff is required"),
    ({"accountId": "alice", "amountDiff": "1", "x": 1}, "invalid balance update: unknown key 'x'"),
    ({"accountId": 5, "amountDiff": "1"}, "invalid balance update: accountId must be a string"),
    ({"accountId": "alice", "amountDiff": "1.5"},
     "invalid balance update: amountDiff must be an integer written as a string, e.g. \"-1000\" (at most 100 digits)"),
    ({"accountId": "alice", "amountDiff": 15},
     "invalid balance update: amountDiff must be an integer written as a string, e.g. \"-1000\" (at most 100 digits)"),
    ({"accountId": "alice", "amountDiff": "-0"},
     "invalid balance update: amountDiff must be an integer written as a string, e.g. \"-1000\" (at most 100 digits)"),
    ({"accountId": "alice", "amountDiff": "007"},
     "invalid balance update: amountDiff must be an integer written as a string, e.g. \"-1000\" (at most 100 digits)"),
])
def test_post_balance_bad_body_is_400(node, body, message):
    """POST /balance: a body that fails the reference's BalanceUpdate schema is 400 with the reason."""
    reply = node.request("POST", "/balance", body)
    assert (reply.code, reply.text) == (400, message + "\n")
    assert node.store.balances.get("alice") is None


def test_post_balance_bad_json_unknown_account_and_untracked(node):
    """POST /balance: 400 malformed JSON or empty body, 404 unknown account, 409 no balance settings."""
    reply = node.request("POST", "/balance", raw=b'{"accountId": "alice",')
    assert reply.code == 400 and reply.text.startswith("invalid JSON body: ")
    assert node.request("POST", "/balance", raw=b"\xff\xfe").code == 400
    assert (node.request("POST", "/balance").code, node.request("POST", "/balance").text) == \
        (400, "a JSON body is required\n")
    reply = node.request("POST", "/balance", {"accountId": "nobody", "amountDiff": "1"})
    assert (reply.code, reply.text) == (404, "account does not exist. account=nobody\n")
    plain = Node(accounts={"alice": child()})
    assert plain.request("POST", "/balance", {"accountId": "alice", "amountDiff": "1"}).code == 409


# -- /rates, /stats, /alerts, /metrics --------------------------------------------------------------

def test_rates_between_every_pair(node):
    """GET /rates: {source: {destination: rate}} as JSON numbers (one-to-one, spread 0: 1)."""
    assert node.request("GET", "/rates").json == {"alice": {"bob": 1}, "bob": {"alice": 1}}


def test_rates_unknown_pair_is_null():
    """GET /rates: a pair the backend has no rate for is null (not a 500 for the whole table)."""
    node = Node(accounts={"alice": child(), "bob": child(assetCode="EUR", assetScale=2), "eve": child(assetCode="XYZ")})
    node.connector.rate_backend = StaticBackend({"USD": 1, "EUR": "0.5"})
    rates = node.request("GET", "/rates").json
    assert rates["alice"] == {"bob": 5e-08, "eve": None}
    assert rates["bob"]["alice"] == 20000000


def test_stats_is_get_metrics_as_json(node):
    """GET /stats: the ilp_connector_* families in prom-client's getMetricsAsJSON shape."""
    assert isinstance(node.send(amount=9), Fulfill)
    stats = node.request("GET", "/stats").json
    incoming = stats[0]
    assert (incoming["name"], incoming["type"], incoming["aggregator"]) == \
        ("ilp_connector_incoming_ilp_packets", "counter", "sum")
    assert incoming["values"] == [{"value": 1, "labels": {"result": "fulfilled", "account": "alice",
                                                         "asset": "USD", "scale": "9"}}]


def test_alerts_list_and_dismiss(node):
    """GET /alerts lists alerts in the reference's shape; DELETE /alerts/ID dismisses (204), then 404."""
    reject = Reject("T04", "test.node.bob", "exceeded maximum balance.", b"")
    node.clients["bob"].deregister_data_handler()
    node.clients["bob"].register_data_handler(lambda data: encode_packet(reject))
    assert node.send(amount=1) == reject
    (alert,) = node.request("GET", "/alerts").json["alerts"]
    assert {k: alert[k] for k in ("accountId", "triggeredBy", "message", "count")} == \
        {"accountId": "bob", "triggeredBy": "test.node.bob", "message": "exceeded maximum balance.", "count": 1}
    assert alert["createdAt"].endswith("Z")
    assert node.request("DELETE", f"/alerts/{alert['id']}").code == 204
    assert node.request("GET", "/alerts").json == {"alerts": []}
    assert node.request("DELETE", f"/alerts/{alert['id']}").code == 404
    reply = node.request("DELETE", "/alerts/x")
    assert (reply.code, reply.text) == (400, "invalid alert id 'x'\n")


def test_metrics_text_exposition(node):
    """GET /metrics: text format 0.0.4 with the reference's names and labels."""
    assert isinstance(node.send(amount=11), Fulfill)
    reply = node.request("GET", "/metrics")
    assert (reply.code, reply.content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert "# TYPE ilp_connector_outgoing_ilp_packets counter\n" in reply.text
    assert 'ilp_connector_outgoing_ilp_packet_value{result="fulfilled",account="bob",asset="USD",scale="9"} 11\n' \
        in reply.text


# -- routing errors --------------------------------------------------------------------------------

def test_unknown_path_404_and_wrong_method_405(node):
    """An unknown path is 404 'Not Found'; a known path with another method is 405 with Allow."""
    reply = node.request("GET", "/nope")
    assert (reply.code, reply.text) == (404, "Not Found\n")
    reply = node.request("DELETE", "/status")
    assert reply.code == 405 and "GET" in reply.headers.getRawHeaders("allow")[0]


def test_internal_error_is_500_text(node):
    """An unexpected exception becomes a one-line 500 (and is logged), not a traceback page."""

    def broken():
        raise RuntimeError("boom")

    node.connector.stats.exposition = broken
    reply = node.request("GET", "/metrics")
    assert (reply.code, reply.text) == (500, "internal error: boom\n")
