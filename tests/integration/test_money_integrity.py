"""Money is neither created nor lost by a real ``twistd -n ilpconnector``: an unverified BTP
Transfer moves no balance, duplicate Prepares are charged once, and a disk that fills up
leaves no phantom payment behind.

Clients are real :class:`~ilptx.plugins.btp.BtpPlugin` instances dialling the connector over
loopback WebSockets; balances are read through the admin API (memory) or the SQLite file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import DeferredList

from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin, BtpRemoteError
from ilptx.testing import fulfilling_handler
from integration.procs import free_ports, wait_for_port

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x42" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
NO_SETTLEMENT = {"message": "No sendMoney functionality is included in this module"}


def btp_child(port: int, secret: str, balance: dict) -> dict:
    return {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9, "balance": balance,
            "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": secret}}}


def start(processes, tmp_path, accounts: dict, admin_port: int, listen_ports, **top):
    config = {"ilpAddress": "test.money", "spread": 0, "accounts": accounts, "adminApi": True,
              "adminApiHost": "127.0.0.1", "adminApiPort": admin_port, **top}
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(config))
    connector = processes.connector(["--config", str(path)])
    for port in (admin_port, *listen_ports):
        wait_for_port(port, connector)
    return connector


def prepare(amount: int, data: bytes = b"", destination: str = "test.money.bob.x") -> Prepare:
    return Prepare(amount, datetime.now(timezone.utc) + timedelta(seconds=20), CONDITION, destination, data)


@pytest_twisted.inlineCallbacks
def send(client: BtpPlugin, packet: Prepare):
    raw = yield client.send_data(encode_packet(packet))
    return decode_response(raw)


@pytest_twisted.inlineCallbacks
def balances(admin_port: int):
    """:returns: account id -> the admin API's ``/balance`` entry (what the running connector holds)."""
    response = yield treq.get(f"http://127.0.0.1:{admin_port}/balance")
    body = yield treq.json_content(response)
    return body["accounts"]


@pytest_twisted.inlineCallbacks
def test_unverified_btp_transfer_is_refused_and_moves_no_balance(processes, tmp_path):
    """A child's Transfer(2**64-1) gets F00; its balance stays 0 and it still cannot spend past its maximum."""
    admin, alice_port, bob_port, mini_port = free_ports(4)
    accounts = {
        "alice": btp_child(alice_port, "a", {"minimum": "-50", "maximum": "1000"}),
        "bob": btp_child(bob_port, "b", {"minimum": "-1000000", "maximum": "0"}),
        "mini": {"relation": "child", "plugin": "mini-accounts", "assetCode": "USD", "assetScale": 9,
                 "balance": {"maximum": "1000000"},
                 "options": {"listener": {"host": "127.0.0.1", "port": mini_port},
                             "clientBalance": {"maximum": "10"}}},
    }
    connector = start(processes, tmp_path, accounts, admin, (alice_port, bob_port, mini_port))
    bob = BtpPlugin({"server": f"btp+ws://:b@127.0.0.1:{bob_port}"}, account_id="bob", reactor=reactor)
    handler = fulfilling_handler([FULFILLMENT], address="test.money.bob")
    bob.register_data_handler(handler)
    alice = BtpPlugin({"server": f"btp+ws://:a@127.0.0.1:{alice_port}"}, account_id="alice", reactor=reactor)
    carol = BtpPlugin({"server": f"btp+ws://carol:c@127.0.0.1:{mini_port}"}, account_id="carol", reactor=reactor)
    clients = (bob, alice, carol)
    try:
        for client in clients:
            yield client.connect()
        for client in (alice, carol):
            with pytest.raises(BtpRemoteError) as refused:
                yield client.send_money(2**64 - 1)
            error = refused.value.btp_error
            assert (error.code, error.name, json.loads(error.data)) == ("F00", "NotAcceptedError", NO_SETTLEMENT)
            assert client.is_connected()
        before = yield balances(admin)
        assert before["alice"]["balance"] == "0" and before["mini"]["balance"] == "0", before
        # alice can spend up to her maximum and not one unit more
        assert isinstance((yield send(alice, prepare(1000, b"1"))), Fulfill)
        over = yield send(alice, prepare(1, b"2"))
        assert isinstance(over, Reject) and (over.code, over.message) == ("T04", "exceeded maximum balance.")
        # carol (a mini-accounts client) cannot spend past her clientBalance maximum of 10
        over = yield send(carol, prepare(11, b"3"))
        assert isinstance(over, Reject) and over.code == "T04"
        assert [p.amount for p in handler.received] == [1000]
        after = yield balances(admin)
        assert (after["alice"]["balance"], after["bob"]["balance"], after["mini"]["balance"]) == ("1000", "-1000", "0")
    finally:
        for client in clients:
            yield client.disconnect()
    assert "Traceback" not in connector.full_output(), connector.output()


@pytest_twisted.inlineCallbacks
def test_six_copies_of_a_prepare_move_the_outgoing_balance_once(processes, tmp_path):
    """Six identical Prepares at once: bob sees one, bob's balance moves once; each copy gets the Fulfill."""
    admin, alice_port, bob_port = free_ports(3)
    accounts = {"alice": btp_child(alice_port, "a", {"maximum": "1000000"}),
                "bob": btp_child(bob_port, "b", {"minimum": "-1000000", "maximum": "0"})}
    start(processes, tmp_path, accounts, admin, (alice_port, bob_port))
    bob = BtpPlugin({"server": f"btp+ws://:b@127.0.0.1:{bob_port}"}, account_id="bob", reactor=reactor)
    handler = fulfilling_handler([FULFILLMENT], address="test.money.bob")
    bob.register_data_handler(handler)
    alice = BtpPlugin({"server": f"btp+ws://:a@127.0.0.1:{alice_port}"}, account_id="alice", reactor=reactor)
    try:
        yield bob.connect()
        yield alice.connect()
        packet = prepare(250, b"the same one")
        results = yield DeferredList([send(alice, packet) for _ in range(6)], fireOnOneErrback=True)
        assert [r for _, r in results] == [Fulfill(FULFILLMENT, b"")] * 6
        assert len(handler.received) == 1
        state = yield balances(admin)
        assert (state["bob"]["balance"], state["bob"]["outgoingReserved"]) == ("-250", "0"), state
    finally:
        yield alice.disconnect()
        yield bob.disconnect()
