"""Accounts added at run time are kept in the store (``account:<id>``) and come back on restart."""

from __future__ import annotations

import json

from twisted.internet.defer import fail
from twisted.logger import capturedLogs, formatEvent

from admin_harness import Node, child, result_of
from ilptx.codec.ilp import Fulfill, encode_packet
from ilptx.node import RUNTIME_ACCOUNT_PREFIX, runtime_account_config
from ilptx.stores.memory import MemoryStore

CAROL = {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
         "balance": {"maximum": "50"}, "options": {"secret": "c"}}


def restart(node: Node, **kwargs) -> Node:
    """Stop ``node`` and start a new connector on the same store."""
    result_of(node.connector.stopService())
    return Node(store=node.store, **kwargs)


def test_runtime_account_survives_a_restart():
    """An account PUT through the API is built, routed and connected again after a restart."""
    node = Node()
    assert node.request("PUT", "/accounts/carol", CAROL).code == 201
    assert node.request("POST", "/balance", {"accountId": "carol", "amountDiff": "-4"}).code == 200
    again = restart(node)
    carol = again.connector.accounts.get("carol")
    assert (carol.relation, carol.options) == ("child", {"secret": "c"})
    assert again.connector.routing_table.resolve("test.node.carol") == "carol"
    assert again.request("GET", "/balance").json["accounts"]["carol"]["balance"] == "-4"
    assert again.request("GET", "/status").json["connected"]["carol"] is True
    again.clients["carol"].register_data_handler(lambda data: encode_packet(Fulfill(b"\x33" * 32, b"")))
    assert isinstance(again.send(amount=3, destination="test.node.carol.z"), Fulfill)


def test_deleted_account_does_not_come_back():
    """DELETE forgets the stored account; the next start does not add it."""
    node = Node()
    node.request("PUT", "/accounts/carol", CAROL)
    assert node.request("DELETE", "/accounts/carol").code == 204
    assert "carol" not in restart(node).connector.accounts


def test_connector_add_and_remove_account_persist_directly():
    """Connector.add_account stores the settings as JSON; remove_account deletes the key even if
    the plugin fails to disconnect (and still reports that failure)."""
    node = Node()
    account = result_of(node.connector.add_account(runtime_account_config("carol", CAROL, "test.node")))
    assert json.loads(node.store.data[RUNTIME_ACCOUNT_PREFIX + "carol"]) == CAROL
    account.plugin.disconnect = lambda: fail(RuntimeError("stuck"))
    failures = []
    node.connector.remove_account("carol").addErrback(failures.append)
    assert failures and failures[0].check(RuntimeError)
    assert RUNTIME_ACCOUNT_PREFIX + "carol" not in node.store.data


def test_config_file_wins_over_a_stored_account():
    """A stored account whose id the config file defines is skipped, with a warning."""
    store = MemoryStore()
    store.data["account:alice"] = json.dumps({**CAROL, "assetCode": "EUR"})
    with capturedLogs() as events:
        node = Node(store=store)
    assert node.connector.accounts.get("alice").asset_code == "USD"
    assert any("the config file defines it" in formatEvent(e) for e in events)


def test_invalid_stored_accounts_are_skipped_with_an_error():
    """Stored accounts that no longer validate (bad JSON, schema, unknown plugin) are logged and
    skipped; the connector still starts with the others."""
    store = MemoryStore()
    store.data["account:broken"] = "{not json"
    store.data["account:scale"] = json.dumps({**CAROL, "assetScale": 300})
    store.data["account:gone"] = json.dumps({**CAROL, "plugin": "uninstalled"})
    store.data["account:fine"] = json.dumps(CAROL)
    with capturedLogs() as events:
        node = Node(store=store, accounts={"alice": child()})
    assert [a.id for a in node.connector.accounts] == ["alice", "fine"]
    assert result_of(node.connector.ready) is None
    errors = [formatEvent(e) for e in events if "not added" in formatEvent(e)]
    assert len(errors) == 3
    assert any("accounts.scale.assetScale: must be an integer 0..255" in e for e in errors)
    assert any("unknown plugin 'uninstalled'" in e for e in errors)
