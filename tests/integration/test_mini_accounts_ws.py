"""mini-accounts over real WebSocket sockets on 127.0.0.1 (real reactor, pytest-twisted), with
our BtpPlugin as its clients."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint

from ilptx.codec.ildcp import IldcpResponse, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.errors import PeerUnreachableError
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpAuthError, BtpPlugin
from ilptx.plugins.mini_accounts import MiniAccountsPlugin
from ilptx.transport.btp_ws import BtpClientFactory

pytestmark = pytest.mark.integration

ACCT = "test.conn.mini"
FULFILLMENT = b"\x05" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
TIMEOUT = 15  # seconds; only ever reached when something is broken


def expires(seconds=30):
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


@pytest.fixture
def made():
    """Plugins on the real reactor; all disconnected at teardown."""
    plugins = []
    yield plugins
    pytest_twisted.blockon(gatherResults([p.disconnect() for p in plugins]))


@pytest_twisted.inlineCallbacks
def start(made, **options):
    server = MiniAccountsPlugin({"listener": {"port": 0, "host": "127.0.0.1"}, **options},
                                account_id="mini", reactor=reactor)
    server.set_account_address(ACCT, "XRP", 9)
    made.append(server)
    yield server.connect()
    return server


@pytest_twisted.inlineCallbacks
def client(made, server, name, token):
    c = BtpPlugin({"server": f"btp+ws://{name}:{token}@127.0.0.1:{server.port}/",
                   "reconnectIntervals": [0.05]}, account_id=name, reactor=reactor)
    made.append(c)
    yield c.connect().addTimeout(TIMEOUT, reactor)
    return c


@pytest_twisted.inlineCallbacks
def test_two_clients_exchange_a_packet_through_the_listener(made):
    """alice's Prepare reaches the in-test handler, which sends it on to bob; bob's Fulfill comes back."""
    server = yield start(made)
    forwarded = []

    def handler(data):  # a one-line "connector": everything goes to bob
        p = decode_prepare(data)
        forwarded.append(p)
        return server.send_data(encode_packet(
            Prepare(p.amount, p.expires_at, p.execution_condition, f"{ACCT}.bob.wallet", p.data)))

    server.register_data_handler(handler)
    alice = yield client(made, server, "alice", "alice-token")
    bob = yield client(made, server, "bob", "bob-token")
    bob_got = []
    bob.register_data_handler(lambda data: bob_got.append(decode_prepare(data)) or
                              encode_packet(Fulfill(FULFILLMENT, b"thanks")))

    # each client learns its own address from the plugin
    for c, name in ((alice, "alice"), (bob, "bob")):
        reply = yield c.send_data(encode_packet(request_prepare(expires(60)))).addTimeout(TIMEOUT, reactor)
        assert IldcpResponse.decode(decode_response(reply).data) == IldcpResponse(f"{ACCT}.{name}", 9, "XRP")

    reply = yield alice.send_data(encode_packet(Prepare(25, expires(), CONDITION, "test.somewhere", b"hi"))
                                  ).addTimeout(TIMEOUT, reactor)
    assert decode_response(reply) == Fulfill(FULFILLMENT, b"thanks")
    assert [p.destination for p in forwarded] == ["test.somewhere"]
    assert [(p.destination, p.amount, p.data) for p in bob_got] == [(f"{ACCT}.bob.wallet", 25, b"hi")]
    assert server.client_balance("alice").balance == 25 and server.client_balance("bob").balance == -25
    assert server.clients() == ["alice", "bob"]


@pytest_twisted.inlineCallbacks
def test_wrong_token_for_a_registered_name_is_refused(made):
    """A second client using a registered name with another token fails to connect (BTP auth error)."""
    server = yield start(made)
    yield client(made, server, "alice", "alice-token")
    with pytest.raises(BtpAuthError):
        yield client(made, server, "alice", "not-alices")
    assert server.clients() == ["alice"]


@pytest_twisted.inlineCallbacks
def test_gone_client_is_peer_unreachable(made):
    """After a client disconnects, a Prepare for it fails with T01."""
    server = yield start(made)
    carol = yield client(made, server, "carol", "c")
    d = server.send_data(encode_packet(Prepare(1, expires(), CONDITION, f"{ACCT}.carol", b"")))
    carol.register_data_handler(lambda data: encode_packet(Reject("F99", f"{ACCT}.carol", "no", b"")))
    reply = yield d.addTimeout(TIMEOUT, reactor)
    assert decode_response(reply).code == "F99"
    server_side_closed = server._clients["carol"][0].when_closed()
    yield carol.disconnect()
    yield server_side_closed.addTimeout(TIMEOUT, reactor)  # the server sees the close a moment later
    assert server.clients() == []
    with pytest.raises(PeerUnreachableError):
        yield server.send_data(encode_packet(Prepare(1, expires(), CONDITION, f"{ACCT}.carol", b"")))


@pytest_twisted.inlineCallbacks
def test_browser_origin_not_allowed_is_refused_at_the_handshake(made):
    """A WebSocket handshake with an Origin outside allowedOrigins fails; an allowed one opens."""
    server = yield start(made, allowedOrigins=[r"^https://wallet\.example$"])

    class Quiet:
        def data_received(self, data):
            pass

        def connection_lost(self, reason):
            pass

    def attempt(origin):
        outcome = Deferred()
        url = f"ws://127.0.0.1:{server.port}/"

        def opened(protocol):
            outcome.callback("open")
            protocol.close_connection()
            return Quiet()

        factory = BtpClientFactory(url, reactor=reactor, on_open=opened,
                                   on_failed=lambda p, r: outcome.callback("failed"))
        factory.origin = origin
        TCP4ClientEndpoint(reactor, "127.0.0.1", server.port).connect(factory)
        return outcome.addTimeout(TIMEOUT, reactor)

    assert (yield attempt("https://evil.example")) == "failed"
    assert (yield attempt("https://wallet.example")) == "open"


@pytest_twisted.inlineCallbacks
def test_behind_a_real_connector_clients_pay_each_other(made):
    """In build_connector, a child mini-accounts account learns test.conn.mini by IL-DCP through
    the connector, and alice pays bob through the connector (reflected to the same account)."""
    connector = build_connector(parse_config({"ilpAddress": "test.conn", "spread": 0, "accounts": {
        "mini": {"relation": "child", "plugin": "mini-accounts", "assetCode": "XRP", "assetScale": 6,
                 "options": {"listener": {"host": "127.0.0.1", "port": 0}}}}}), reactor=reactor)
    connector.startService()
    try:
        yield connector.ready
        server = connector.accounts.get("mini").plugin
        assert (server.account_address, server.asset_code, server.asset_scale) == (ACCT, "XRP", 6)
        alice = yield client(made, server, "alice", "a")
        bob = yield client(made, server, "bob", "b")
        bob.register_data_handler(lambda data: encode_packet(Fulfill(FULFILLMENT, b"")))
        reply = yield alice.send_data(encode_packet(Prepare(7, expires(), CONDITION, f"{ACCT}.bob.x", b""))
                                      ).addTimeout(TIMEOUT, reactor)
        assert decode_response(reply) == Fulfill(FULFILLMENT, b"")
        assert server.client_balance("alice").balance == 7 and server.client_balance("bob").balance == -7
    finally:
        yield gatherResults([p.disconnect() for p in made[:]])
        del made[:]
        yield connector.stopService()
