"""Three real ``twistd -n ilpconnector`` processes on ganache: S with ``plugin: ilp-plugin-ethereum``, ``role: server``
(mini-accounts), and two client connectors A and B (``role: client``) dialling it. Users alice (on A) and bob (on B)
pay each other over S across the clients' settle threshold several times: per-client state in S's admin API, every
side's balance back to 0, and after SIGTERM of all three every channel claimed and every on-chain balance moved by
exactly the claims net of its own gas."""

from __future__ import annotations

import hashlib
import signal
from datetime import datetime, timedelta, timezone

import pytest_twisted
from eth_helpers import free_ports
from eth_utils import keccak
from test_eth_twistd import Connector, _get
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler

from ilptx_ethereum.claims import address_of

GWEI = 10 ** 9
PACKET = 1_000_000  # gwei
A_TO_B, B_TO_A = 6, 3  # packets each way (the clients settle every 3: settleThreshold -2500000)


def _server_config(ganache, key: str, port: int, admin: int) -> dict:
    return {"ilpAddress": "test.s", "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1", "adminApiPort": admin,
            "accounts": {"clients": {
                "relation": "child", "plugin": "ilp-plugin-ethereum", "assetCode": "ETH", "assetScale": 9,
                "options": {"role": "server", "listener": {"host": "127.0.0.1", "port": port},
                            "ethereumPrivateKey": key, "ethereumProvider": ganache.url,
                            "contractAddress": ganache.contract_address, "outgoingChannelAmount": 10_000_000,
                            "clientBalance": {"maximum": "7000000"}}}}}  # room while a channel opens


def _client_config(name: str, ganache, key: str, server_port: int, user_port: int, admin: int) -> dict:
    return {"ilpAddress": f"test.s.clients.{name}", "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1",
            "adminApiPort": admin,
            "accounts": {
                "parent": {"relation": "parent", "plugin": "ilp-plugin-ethereum", "assetCode": "ETH", "assetScale": 9,
                           "balance": {"maximum": "100000000", "settleThreshold": "-2500000", "settleTo": "0"},
                           "options": {"server": f"btp+ws://{name}:{name}-token@127.0.0.1:{server_port}",
                                       "ethereumPrivateKey": key, "ethereumProvider": ganache.url,
                                       "contractAddress": ganache.contract_address,
                                       "outgoingChannelAmount": 10_000_000}},
                "user": {"relation": "child", "plugin": "btp", "assetCode": "ETH", "assetScale": 9,
                         "options": {"listener": {"host": "127.0.0.1", "port": user_port, "secret": "user"}}}}}


@pytest_twisted.inlineCallbacks
def _pay(sender: BtpPlugin, destination: str, preimages: list):
    for preimage in preimages:
        prepare = Prepare(PACKET, datetime.now(timezone.utc) + timedelta(seconds=30),
                          hashlib.sha256(preimage).digest(), destination, b"")
        reply = decode_response((yield sender.send_data(encode_packet(prepare))))
        assert isinstance(reply, Fulfill), reply


@pytest_twisted.inlineCallbacks
def _until_admin(port: int, path: str, done, what: str, timeout: float = 30.0):
    for _ in range(int(timeout / 0.05)):
        info = yield _get(port, path)
        if done(info):
            return info
        yield deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}: {info}")


def _channel_gone(ganache, channel_id: str) -> bool:
    selector = keccak(text="channels(bytes32)")[:4].hex()
    onchain = ganache.rpc("eth_call", [{"to": ganache.contract_address, "data": "0x" + selector + channel_id[2:]},
                                       "latest"])
    return int(onchain[2:66], 16) == 0  # channels(id).sender is 0: the channel is deleted


@pytest_twisted.inlineCallbacks
def test_twistd_server_role_settles_with_two_client_connectors_exactly(ganache, installed):
    """alice→bob 6 × 1e6 gwei and bob→alice 3 × 1e6 over a role-server twistd connector and two client connectors:
    S's admin shows each client's channels and balances, every balance ends at 0; SIGTERM of all three claims the
    four channels and each address moves by exactly its claims in minus out, net of its own gas."""
    key_s, key_a, key_b = ganache.keys[6], ganache.keys[7], ganache.keys[8]
    addr = {"s": address_of(key_s), "a": address_of(key_a), "b": address_of(key_b)}
    start_block = ganache.block_number()
    before = {name: ganache.balance(address) for name, address in addr.items()}
    server_port, user_a, user_b, admin_s, admin_a, admin_b = free_ports(6)
    started, users = [], []
    try:
        s = Connector(_server_config(ganache, key_s, server_port, admin_s), installed)
        started.append(s)
        s.wait_for_ports(server_port, admin_s)
        a = Connector(_client_config("a", ganache, key_a, server_port, user_a, admin_a), installed)
        b = Connector(_client_config("b", ganache, key_b, server_port, user_b, admin_b), installed)
        started += [a, b]
        a.wait_for_ports(user_a, admin_a)
        b.wait_for_ports(user_b, admin_b)
        alice = BtpPlugin({"server": f"btp+ws://alice:user@127.0.0.1:{user_a}"}, account_id="alice", reactor=reactor)
        bob = BtpPlugin({"server": f"btp+ws://bob:user@127.0.0.1:{user_b}"}, account_id="bob", reactor=reactor)
        users += [alice, bob]
        to_bob = [bytes([i]) * 32 for i in range(1, A_TO_B + 1)]
        to_alice = [bytes([100 + i]) * 32 for i in range(1, B_TO_A + 1)]
        bob.register_data_handler(fulfilling_handler(to_bob, address="test.s.clients.b.user"))
        alice.register_data_handler(fulfilling_handler(to_alice, address="test.s.clients.a.user"))
        yield alice.connect()
        yield bob.connect()
        # both clients logged in and exchanged info with S
        yield _until_admin(admin_s, "/accounts/clients", lambda r: all(
            r["info"]["clients"].get(c, {}).get("ethereum", {}).get("peerAddress") for c in ("a", "b")),
            "both clients' info exchange")

        yield _pay(alice, "test.s.clients.b.user.x", to_bob)
        yield _pay(bob, "test.s.clients.a.user.x", to_alice)

        def settled(r):
            clients = r["info"]["clients"]
            return all(clients[c]["balance"] == "0" and clients[c]["pendingPayouts"] == "0" for c in ("a", "b")) \
                and clients["a"]["earned"] == str(B_TO_A * PACKET) and clients["b"]["earned"] == str(A_TO_B * PACKET)

        server = (yield _until_admin(admin_s, "/accounts/clients", settled, "S to settle with both clients"))["info"]
        clients = server["clients"]
        for c, incoming, outgoing in (("a", A_TO_B, B_TO_A), ("b", B_TO_A, A_TO_B)):
            eth = clients[c]["ethereum"]
            assert eth["incomingChannel"]["bestClaim"] == str(incoming * PACKET * GWEI), server
            assert eth["outgoingChannel"]["claimed"] == str(outgoing * PACKET * GWEI), server
            assert eth["outgoingChannel"]["deposited"] == str(10_000_000 * GWEI)
            assert clients[c]["settlement"]["credited"] == str(incoming * PACKET * GWEI)
        assert clients["a"]["ethereum"]["incomingChannel"]["channelId"] != \
            clients["b"]["ethereum"]["incomingChannel"]["channelId"]
        for port, paid, credited in ((admin_a, A_TO_B, B_TO_A), (admin_b, B_TO_A, A_TO_B)):
            wanted = str(credited * PACKET * GWEI)
            info = (yield _until_admin(port, "/accounts/parent", lambda r, w=wanted: r["info"]["settlement"][
                "credited"] == w, "a client to be credited"))["info"]
            assert info["settlement"]["paid"] == str(paid * PACKET)
            assert not info["settlement"]["queuedPayouts"]
            balances = (yield _get(port, "/balance"))["accounts"]
            assert balances["parent"]["balance"] == "0", balances
        channels = [clients[c]["ethereum"][k]["channelId"] for c in ("a", "b")
                    for k in ("incomingChannel", "outgoingChannel")]

        for user in list(users):
            yield user.disconnect()
            users.remove(user)
        for connector in (a, b, s):  # the clients claim S's channels, then S claims theirs
            assert connector.stop() in (0, -signal.SIGTERM), connector.output()
            assert "Traceback" not in connector.output(), connector.output()
        assert all(_channel_gone(ganache, channel) for channel in channels), [s.output(), a.output(), b.output()]
        moved = {name: ganache.balance(address) - before[name] for name, address in addr.items()}
        fees = {name: ganache.fees_since(address, start_block) for name, address in addr.items()}
        assert all(fee > 0 for fee in fees.values())
        net = (A_TO_B - B_TO_A) * PACKET * GWEI
        assert moved == {"s": -fees["s"], "a": -net - fees["a"], "b": net - fees["b"]}, (moved, fees)
    finally:
        for user in users:
            yield user.disconnect()
        for connector in reversed(started):
            connector.stop()
            connector.close()
