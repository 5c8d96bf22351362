"""The Autobahn adapters: WebSocket messages ⇄ BtpSession, on in-memory transports and a fake clock."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim

from ilptx.transport.btp_ws import BtpClientFactory, BtpServerFactory

SERVER_ADDR = IPv4Address("TCP", "127.0.0.1", 7768)
CLIENT_ADDR = IPv4Address("TCP", "127.0.0.1", 50000)


class RecordingSession:
    """Stands in for a BtpSession: records frames and the end of the connection."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.received, self.lost = [], []

    def data_received(self, data):
        self.received.append(data)

    def connection_lost(self, reason):
        self.lost.append(reason)


class Side:
    """on_open / on_failed callbacks for one side, remembering the sessions made."""

    def __init__(self):
        self.sessions, self.failed = [], []

    def on_open(self, protocol):
        self.sessions.append(RecordingSession(protocol))
        return self.sessions[-1]

    def on_failed(self, protocol, reason):
        self.failed.append(reason)


def linked(ping_interval=0, ping_timeout=0, max_message_size=1 << 20):
    reactor = MemoryReactorClock()
    server, client = Side(), Side()
    sf = BtpServerFactory(reactor=reactor, on_open=server.on_open, on_failed=server.on_failed,
                          ping_interval=ping_interval, ping_timeout=ping_timeout,
                          max_message_size=max_message_size)
    cf = BtpClientFactory("ws://localhost:7768/some/path", reactor=reactor, on_open=client.on_open,
                          on_failed=client.on_failed, ping_interval=0, ping_timeout=0)
    sp, cp = sf.buildProtocol(CLIENT_ADDR), cf.buildProtocol(SERVER_ADDR)
    st = iosim.FakeTransport(sp, isServer=True, hostAddress=SERVER_ADDR, peerAddress=CLIENT_ADDR)
    ct = iosim.FakeTransport(cp, isServer=False, hostAddress=CLIENT_ADDR, peerAddress=SERVER_ADDR)
    pump = iosim.connect(sp, st, cp, ct, greet=False)
    return reactor, server, client, pump


def test_websocket_open_creates_sessions_on_both_sides():
    """After the upgrade each side's on_open builds a session (any request path is accepted)."""
    reactor, server, client, pump = linked()
    pump.flush()
    assert len(server.sessions) == 1 and len(client.sessions) == 1


def test_frames_travel_as_binary_messages_both_ways():
    """send_frame on one side arrives as exactly one data_received on the other."""
    reactor, server, client, pump = linked()
    pump.flush()
    client.sessions[0].protocol.send_frame(b"\x06\x00\x00\x00\x01\x01\x00")
    server.sessions[0].protocol.send_frame(b"\x01\x00\x00\x00\x01\x01\x00")
    pump.flush()
    assert server.sessions[0].received == [b"\x06\x00\x00\x00\x01\x01\x00"]
    assert client.sessions[0].received == [b"\x01\x00\x00\x00\x01\x01\x00"]


def test_server_close_ends_both_sessions():
    """close_connection on the server ends the connection on both sides."""
    reactor, server, client, pump = linked()
    pump.flush()
    server.sessions[0].protocol.close_connection(1000, "bye")
    pump.flush()
    assert len(server.sessions[0].lost) == 1 and len(client.sessions[0].lost) == 1


def test_client_close_ends_both_sessions_without_waiting():
    """close_connection on the client closes TCP itself; both sides see the end."""
    reactor, server, client, pump = linked()
    pump.flush()
    client.sessions[0].protocol.close_connection()
    pump.flush()
    assert len(server.sessions[0].lost) == 1 and len(client.sessions[0].lost) == 1


def test_send_after_close_is_dropped():
    """send_frame on a closing WebSocket is a no-op, not an exception."""
    reactor, server, client, pump = linked()
    pump.flush()
    proto = server.sessions[0].protocol
    proto.close_connection()
    proto.send_frame(b"\x01\x00\x00\x00\x01\x01\x00")
    pump.flush()
    assert client.sessions[0].received == []


def test_dead_peer_is_dropped_by_pings_on_the_injected_clock():
    """With pings on, a peer that never answers is dropped after interval + timeout of fake time."""
    reactor, server, client, pump = linked(ping_interval=10, ping_timeout=5)
    pump.flush()
    reactor.advance(10)  # ping goes out, but we never pump it to the client
    reactor.advance(4.9)
    assert not pump.serverIO.disconnecting
    reactor.advance(0.1)
    assert pump.serverIO.disconnecting  # Autobahn aborted the connection
    pump.flush()
    assert len(server.sessions[0].lost) == 1


def test_live_peer_survives_pings():
    """A peer that answers pings stays connected across many ping intervals."""
    reactor, server, client, pump = linked(ping_interval=10, ping_timeout=5)
    pump.flush()
    for _ in range(5):
        reactor.advance(10)
        pump.flush()
        reactor.advance(1)
    assert server.sessions[0].lost == [] and client.sessions[0].lost == []


def test_oversized_message_fails_the_connection():
    """A message above max_message_size ends the connection."""
    reactor, server, client, pump = linked(max_message_size=1000)
    pump.flush()
    client.sessions[0].protocol.send_frame(b"x" * 2000)
    pump.flush()
    assert server.sessions[0].received == [] and len(server.sessions[0].lost) == 1


def test_connection_lost_before_open_reports_failure():
    """A connection that ends before the WebSocket opened goes to on_failed with the reason."""
    reactor, server, client, pump = linked()
    client_proto = pump.client
    client_proto.connectionLost(Failure(ConnectionLost("handshake failed")))
    assert client.sessions == [] and len(client.failed) == 1
    assert client.failed[0].check(ConnectionLost)


def test_client_close_while_paused_unregisters_the_producer_so_tcp_closes():
    """A paused client's close_connection unregisters its producer first (Twisted would not close otherwise)."""
    reactor, server, client, pump = linked()
    pump.flush()
    proto = client.sessions[0].protocol
    assert pump.clientIO.producer is proto
    proto.pauseProducing()
    proto.close_connection()
    assert pump.clientIO.producer is None and pump.clientIO.disconnecting
