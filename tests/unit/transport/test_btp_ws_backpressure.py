"""Backpressure in the Autobahn adapters, at the cause: the protocol is its transport's push
producer, stops reading while the write buffer is full, drops a peer past maxUnsentBytes, and
lets go of the transport when the connection is lost (StringTransport, fake clock)."""

from __future__ import annotations

import gc
import platform
import weakref

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from ilptx.codec.btp import Message, auth_message, encode_frame
from ilptx.errors import PeerUnreachableError
from ilptx.transport.btp_session import BtpSession, Role
from ilptx.transport.btp_ws import BtpServerFactory

PEER = IPv4Address("TCP", "127.0.0.1", 50000)
UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class Owner:
    """A BtpSession owner that records the end of the session."""

    data_handler = money_handler = None

    def __init__(self):
        self.closed = []

    def session_open(self, session):
        pass

    def session_closed(self, session, reason):
        self.closed.append(reason)


def opened(max_unsent_bytes=1000):
    """:returns: ``(protocol, transport, session, events, owner)`` of an open, authenticated server connection."""
    reactor, owner, events = MemoryReactorClock(), Owner(), []
    made = []

    def on_open(protocol):
        made.append(BtpSession(role=Role.SERVER, send=protocol.send_frame, close=protocol.close_connection,
                               clock=reactor, owner=owner, secret=b"s", account_id="alice"))
        return made[-1]

    factory = BtpServerFactory(reactor=reactor, on_open=on_open, ping_interval=0, ping_timeout=0,
                               max_unsent_bytes=max_unsent_bytes, log=Logger(observer=events.append),
                               account_id="alice")
    protocol = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    protocol.dataReceived(UPGRADE)
    session = made[0]
    session.data_received(encode_frame(auth_message(1, "s")))
    transport.clear()
    return protocol, transport, session, events, owner


def test_protocol_is_the_streaming_producer_of_its_transport():
    """Once the WebSocket is open the protocol is its transport's push producer (not during TLS/HTTP handshakes)."""
    protocol, transport, *_ = opened()
    assert transport.producer is protocol and transport.streaming is True


def test_full_write_buffer_stops_reading_and_drained_buffer_resumes():
    """pauseProducing (buffer over the high-water mark) pauses the socket's reading; resumeProducing restarts it."""
    protocol, transport, *_ = opened()
    protocol.pauseProducing()
    assert transport.producerState == "paused"
    protocol.pauseProducing()  # Twisted repeats it on every write while full
    protocol.resumeProducing()
    assert transport.producerState == "producing"


def test_frames_queued_past_the_cap_abort_the_connection_and_log_the_account():
    """While paused, more than max_unsent_bytes of frames aborts the connection; nothing more is written."""
    protocol, transport, session, events, _ = opened(max_unsent_bytes=1000)
    protocol.pauseProducing()
    protocol.send_frame(b"\x06" + bytes(600))
    protocol.pauseProducing()  # a repeated pause must not restart the count
    assert not transport.disconnecting
    protocol.send_frame(b"\x06" + bytes(600))
    assert transport.disconnecting  # abortConnection: the buffer is discarded
    written = len(transport.value())
    protocol.send_frame(b"\x06" + bytes(10))
    assert len(transport.value()) == written
    warned = [e for e in events if "maxUnsentBytes" in e.get("log_format", "")]
    assert len(warned) == 1 and warned[0]["account"] == "alice" and warned[0]["cap"] == 1000
    assert warned[0]["queued"] <= 1000  # what reached the transport while paused never passes the cap


def test_writes_below_the_cap_or_while_producing_keep_the_connection():
    """Frames written while the transport keeps up are never counted against the cap."""
    protocol, transport, *_ = opened(max_unsent_bytes=1000)
    for _ in range(10):
        protocol.send_frame(b"\x06" + bytes(600))
    protocol.pauseProducing()
    protocol.resumeProducing()
    protocol.pauseProducing()
    protocol.send_frame(b"\x06" + bytes(600))
    assert not transport.disconnecting


def test_dropped_connection_fails_pending_requests_with_t01():
    """The requests in flight on a dropped connection fail with PeerUnreachableError (T01)."""
    protocol, transport, session, _, owner = opened(max_unsent_bytes=100)
    pending = session.request(lambda rid: Message(rid, ()))
    failures = []
    pending.addErrback(failures.append)
    protocol.pauseProducing()
    protocol.send_frame(bytes(200))
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert failures and failures[0].check(PeerUnreachableError)
    assert len(owner.closed) == 1


@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="CPython's reference counting and cycle collector; PyPy has neither")
def test_lost_connection_frees_the_transport_without_garbage_collection():
    """After connectionLost nothing keeps the transport (and its unsent buffer) alive: no reference cycle."""
    protocol, transport, session, *_ = opened()
    gc.disable()
    try:
        protocol.connectionLost(Failure(ConnectionAborted()))
        transport_ref = weakref.ref(transport)
        del transport, protocol, session
        assert transport_ref() is None
    finally:
        gc.enable()
