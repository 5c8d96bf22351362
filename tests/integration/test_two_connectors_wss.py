"""Two ilptx connectors peered over wss (mutual TLS, certificates made at test time).

alice ──ws──▶ connector A (test.a) ──wss+client cert──▶ connector B (test.b) ──ws──▶ bob
Real sockets on 127.0.0.1, the real reactor, the real BTP plugin on both ends.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor

from ilptx.codec.ildcp import IldcpResponse, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler
from ilptx.testing_tls import make_test_pki

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x42" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def child(secret, **listener):
    return {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
            "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": secret, **listener}}}


def client(url, **tls):
    return BtpPlugin({"server": url, **tls}, account_id="test-client", reactor=reactor)


def soon(seconds=10):
    """An expiry ``seconds`` from now, in whole milliseconds (the wire's precision)."""
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest_twisted.inlineCallbacks
def test_prepare_crosses_two_connectors_over_wss_and_bad_token_is_refused(tmp_path):
    """alice's Prepare is fulfilled by bob across A and B over mTLS; a wrong token is refused and service goes on."""
    pki = make_test_pki(tmp_path)
    started, clients = [], []
    try:
        # Connector B: serves its peer A over wss and demands a client certificate from our CA.
        b = build_connector(parse_config({
            "ilpAddress": "test.b", "spread": 0,
            "accounts": {
                "a": {"relation": "peer", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                      "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": "a_to_b",
                                               "cert": pki.server_cert, "key": pki.server_key,
                                               "ca": pki.ca_cert}}},
                "bob": child("bob_secret"),
            },
            "routes": [{"targetPrefix": "test.a", "peerId": "a"}],
        }), reactor=reactor)
        b.startService()
        started.append(b)
        yield b.ready
        b_peer_port = b.accounts.get("a").plugin.port
        bob_port = b.accounts.get("bob").plugin.port

        # Connector A: dials B over wss, verifying B's certificate for "localhost".
        a = build_connector(parse_config({
            "ilpAddress": "test.a", "spread": 0,
            "accounts": {
                "b": {"relation": "peer", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
                      "options": {"server": f"btp+wss://a:a_to_b@localhost:{b_peer_port}",
                                  "ca": pki.ca_cert, "cert": pki.client_cert, "key": pki.client_key}},
                "alice": child("alice_secret"),
            },
            "routes": [{"targetPrefix": "test.b", "peerId": "b"}],
        }), reactor=reactor)
        a.startService()
        started.append(a)
        yield a.ready
        assert a.accounts.get("b").plugin.is_connected()
        alice_port = a.accounts.get("alice").plugin.port

        bob = client(f"btp+ws://:bob_secret@127.0.0.1:{bob_port}")
        clients.append(bob)
        handler = fulfilling_handler([FULFILLMENT], address="test.b.bob")
        bob.register_data_handler(handler)
        yield bob.connect()
        alice = client(f"btp+ws://:alice_secret@127.0.0.1:{alice_port}")
        clients.append(alice)
        yield alice.connect()

        # IL-DCP over the real link gives alice her address.
        config = IldcpResponse.decode((decode_response((yield alice.send_data(
            encode_packet(request_prepare(soon(30))))))).data)
        assert config == IldcpResponse("test.a.alice", 9, "USD")

        # A Prepare from alice crosses A and B and bob's Fulfill comes back.
        sent = Prepare(1000, soon(), CONDITION, "test.b.bob.invoice1", b"memo")
        result = decode_response((yield alice.send_data(encode_packet(sent))))
        assert result == Fulfill(FULFILLMENT, b"")
        (arrived,) = handler.received
        assert arrived.amount == 1000 and arrived.data == b"memo" and arrived.destination == "test.b.bob.invoice1"
        assert arrived.expires_at == sent.expires_at - timedelta(seconds=2)  # one minMessageWindow per connector

        # A receiver-side Reject travels back unchanged.
        unknown = Prepare(5, soon(), b"\x00" * 32, "test.b.bob.x", b"")
        reject = decode_response((yield alice.send_data(encode_packet(unknown))))
        assert isinstance(reject, Reject) and reject.code == "F05" and reject.triggered_by == "test.b.bob"

        # A client with a wrong token is refused ...
        intruder = client(f"btp+ws://:wrong@127.0.0.1:{alice_port}")
        clients.append(intruder)
        with pytest.raises(Exception) as refused:
            yield intruder.connect()
        assert "auth" in str(refused.value).lower() or "token" in str(refused.value).lower()
        assert not intruder.is_connected()

        # ... and the connector keeps serving the others.
        again = decode_response((yield alice.send_data(encode_packet(
            Prepare(7, soon(), CONDITION, "test.b.bob.invoice2", b"")))))
        assert again == Fulfill(FULFILLMENT, b"") and len(handler.received) == 3
    finally:
        for plugin in clients:
            yield plugin.disconnect()
        for connector in reversed(started):
            yield connector.stopService()


@pytest_twisted.inlineCallbacks
def test_peer_with_untrusted_certificate_is_not_connected(tmp_path):
    """A connector that does not trust the peer's CA never connects; start-up goes on after
    initialConnectTimeout and packets for that peer get T01."""
    pki = make_test_pki(tmp_path / "good")
    other = make_test_pki(tmp_path / "other")
    started = []
    try:
        b = build_connector(parse_config({
            "ilpAddress": "test.b", "accounts": {
                "a": {"relation": "peer", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                      "options": {"listener": {"host": "127.0.0.1", "port": 0, "secret": "s",
                                               "cert": pki.server_cert, "key": pki.server_key}}}}}),
            reactor=reactor)
        b.startService()
        started.append(b)
        yield b.ready
        a = build_connector(parse_config({
            "ilpAddress": "test.a", "initialConnectTimeout": 1500, "accounts": {
                "b": {"relation": "peer", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                      "options": {"server": f"btp+wss://:s@localhost:{b.accounts.get('a').plugin.port}",
                                  "ca": other.ca_cert}},
                "alice": child("alice_secret")},
            "routes": [{"targetPrefix": "test.b", "peerId": "b"}]}), reactor=reactor)
        a.startService()
        started.append(a)
        yield a.ready
        assert not a.accounts.get("b").plugin.is_connected()
        out = yield a.switch.handle_data(a.accounts.get("alice"),
                                         encode_packet(Prepare(1, soon(), CONDITION, "test.b.x", b"")))
        assert decode_response(out).code == "T01"
    finally:
        for connector in reversed(started):
            yield connector.stopService()
