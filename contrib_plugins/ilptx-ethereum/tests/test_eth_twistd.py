"""Two real ``twistd -n ilpconnector`` processes with the plugin installed by pip (``--target``, found through its
``ilptx`` entry point), peered with ``plugin: ethereum`` on ganache: settlements seen in both admin APIs, and the
payee's SIGTERM claims its incoming channel on chain for exactly the claimed wei net of gas."""

from __future__ import annotations

import hashlib
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest_twisted
from eth_helpers import free_ports
import treq
from eth_utils import keccak
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler
from ilptx.testing_procs import start_connector

GWEI = 10 ** 9
PACKET = 1_000_000


def Connector(config: dict, site: Path):
    """One ``twistd -n ilpconnector --config <json>`` child with ``site`` (this distribution) on its path."""
    return start_connector(config, site=site)


def _config(address: str, ganache, key: str, btp: dict, child: str, child_port: int, admin: int, route: str):
    balance = {"maximum": "100000000", "settleThreshold": "-2500000", "settleTo": "0"}
    return {"ilpAddress": address, "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin,
            "accounts": {
                "peer": {"relation": "peer", "plugin": "ilp-plugin-ethereum", "assetCode": "ETH", "assetScale": 9,
                         "balance": balance,
                         "options": {**btp, "ethereumPrivateKey": key, "ethereumProvider": ganache.url,
                                     "contractAddress": ganache.contract_address,
                                     "outgoingChannelAmount": 10_000_000}},
                child: {"relation": "child", "plugin": "btp", "assetCode": "ETH", "assetScale": 9,
                        "options": {"listener": {"host": "127.0.0.1", "port": child_port, "secret": child}}}},
            "routes": [{"targetPrefix": route, "peerId": "peer"}]}


@pytest_twisted.inlineCallbacks
def _get(port: int, path: str):
    response = yield treq.get(f"http://127.0.0.1:{port}{path}")
    assert response.code == 200, (path, response.code)
    return (yield treq.json_content(response))


@pytest_twisted.inlineCallbacks
def test_two_twistd_connectors_settle_and_sigterm_claims_on_chain(ganache, installed):
    """6 Prepares a→b over two twistd connectors: 2 claims, admin APIs agree (balances 0, paid = credited); SIGTERM of
    b claims a's channel on chain: b gains exactly 6e15 wei minus the claim's gas, the channel is gone."""
    key_a, key_b = ganache.keys[4], ganache.keys[5]
    peer_port, alice_port, bob_port, admin_a, admin_b = free_ports(5)
    started, clients = [], []
    try:
        a = Connector(_config("test.a", ganache, key_a, {"listener": {"host": "127.0.0.1", "port": peer_port,
                                                                      "secret": "ab"}},
                              "alice", alice_port, admin_a, "test.b"), installed)
        started.append(a)
        a.wait_for_ports(peer_port, alice_port, admin_a)
        b = Connector(_config("test.b", ganache, key_b, {"server": f"btp+ws://b:ab@127.0.0.1:{peer_port}"},
                              "bob", bob_port, admin_b, "test.a"), installed)
        started.append(b)
        b.wait_for_ports(bob_port, admin_b)

        alice = BtpPlugin({"server": f"btp+ws://:alice@127.0.0.1:{alice_port}"}, account_id="alice", reactor=reactor)
        bob = BtpPlugin({"server": f"btp+ws://:bob@127.0.0.1:{bob_port}"}, account_id="bob", reactor=reactor)
        clients += [alice, bob]
        preimages = [bytes([i]) * 32 for i in range(1, 7)]
        bob.register_data_handler(fulfilling_handler(preimages, address="test.b.bob"))
        yield alice.connect()
        yield bob.connect()
        for preimage in preimages:
            prepare = Prepare(PACKET, datetime.now(timezone.utc) + timedelta(seconds=30),
                              hashlib.sha256(preimage).digest(), "test.b.bob.x", b"")
            assert isinstance(decode_response((yield alice.send_data(encode_packet(prepare)))), Fulfill)

        for _ in range(400):
            info_a = (yield _get(admin_a, "/accounts/peer"))["info"]
            info_b = (yield _get(admin_b, "/accounts/peer"))["info"]
            if info_b["settlement"]["credited"] == str(6 * PACKET * GWEI) and not info_a["settlement"]["queuedPayouts"]:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        assert info_a["settlement"]["paid"] == str(6 * PACKET)
        assert info_b["settlement"]["credited"] == str(6 * PACKET * GWEI), (info_a, info_b, b.output())
        channel = info_a["ethereum"]["outgoingChannel"]
        assert channel["channelId"] == info_b["ethereum"]["incomingChannel"]["channelId"]
        assert channel["claimed"] == info_b["ethereum"]["incomingChannel"]["bestClaim"] == str(6 * PACKET * GWEI)
        balances_a = (yield _get(admin_a, "/balance"))["accounts"]
        balances_b = (yield _get(admin_b, "/balance"))["accounts"]
        assert balances_a["peer"]["balance"] == balances_b["peer"]["balance"] == "0", (balances_a, balances_b)

        yield bob.disconnect()
        clients.remove(bob)
        address_b = info_b["ethereum"]["address"]
        before = ganache.balance(address_b)
        assert b.stop() in (0, -signal.SIGTERM), b.output()
        out = b.output()
        assert "claimed channel" in out and "Traceback" not in out, out
        tx = next(line for line in out.splitlines() if "claimed channel" in line).split("tx ")[1].split(",")[0]
        receipt = ganache.rpc("eth_getTransactionReceipt", [tx])
        fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        assert ganache.balance(address_b) - before == 6 * PACKET * GWEI - fee
        selector = keccak(text="channels(bytes32)")[:4].hex()
        onchain = ganache.rpc("eth_call", [{"to": ganache.contract_address,
                                            "data": "0x" + selector + channel["channelId"][2:]}, "latest"])
        assert int(onchain[2:66], 16) == 0  # channels(id).sender is 0: the channel is deleted
    finally:
        for client in clients:
            yield client.disconnect()
        for connector in reversed(started):
            connector.stop()
            connector.close()


def test_bad_option_stops_twistd_with_one_line_naming_the_key(ganache, installed):
    """A malformed ethereumPrivateKey: twistd exits 2 with one 'config error' line naming the key, no traceback."""
    admin, peer, child = free_ports(3)
    config = _config("test.a", ganache, "0x1234", {"listener": {"host": "127.0.0.1", "port": peer, "secret": "x"}},
                     "alice", child, admin, "test.b")
    connector = Connector(config, installed)
    try:
        status = connector.proc.wait(60)
        out = connector.output()
        assert status == 2, out
        assert "accounts.peer.options.ethereumPrivateKey: required: the account's secp256k1 private key" in out, out
        assert "Traceback" not in out and "1234" not in out.split("ethereumPrivateKey", 1)[1], out
    finally:
        connector.close()
