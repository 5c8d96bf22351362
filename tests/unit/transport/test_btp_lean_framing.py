"""Lean BTP framing over Autobahn: our integer unmasker (byte for byte against Autobahn's), no
debug formatting on writes, no per-message event, one Deferred per ILP request (StringTransport,
iosim, fake clock)."""

from __future__ import annotations

import os
import random
import struct

import pytest
from autobahn.websocket.xormasker import create_xor_masker
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger

from ilptx.codec.btp import ProtocolDataEntry, Response, auth_message, decode_frame, encode_frame
from ilptx.errors import PeerUnreachableError
from ilptx.transport.btp_session import BtpSession, BtpTimeoutError, Role
from ilptx.transport.btp_ws import SMALL_FRAME, BtpServerFactory, IntXorMasker

PEER = IPv4Address("TCP", "127.0.0.1", 50000)
UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
SIZES = [0, 1, 2, 3, 4, 5, 7, 100, 125, 126, 1023, SMALL_FRAME]


def chunks(data: bytes, rng: random.Random):
    """``data`` cut at random points (some chunks empty)."""
    i = 0
    while i < len(data):
        j = i + rng.randint(0, 9)
        yield data[i:j]
        i = j


@pytest.mark.parametrize("size", SIZES)
def test_int_masker_matches_autobahns_byte_for_byte(size):
    """IntXorMasker gives Autobahn's masker's bytes and pointer, whole or fed in random chunks."""
    rng = random.Random(size)
    for _ in range(20):
        mask, data = os.urandom(4), os.urandom(size)
        expected = create_xor_masker(mask, size).process(data) if size else b""
        whole = IntXorMasker(mask)
        assert whole.process(data) == expected and whole.pointer() == size
        pieces = IntXorMasker(mask)
        assert b"".join(pieces.process(c) for c in chunks(data, rng)) == expected
        assert pieces.pointer() == size
        pieces.reset()
        assert pieces.pointer() == 0 and pieces.process(data) == expected


class Recorder:
    """Stands in for the session (frames received) and for Autobahn's log/fire (calls made)."""

    def __init__(self):
        self.received, self.calls = [], []

    def on_open(self, protocol):
        return self

    def data_received(self, data):
        self.received.append(data)

    def connection_lost(self, reason):
        pass

    def debug(self, *args, **kwargs):
        self.calls.append(("debug", args[0] if args else None))

    def fire(self, event, *args, **kwargs):
        self.calls.append(("fire", event))


def open_server():
    rec = Recorder()
    factory = BtpServerFactory(reactor=MemoryReactorClock(), on_open=rec.on_open, ping_interval=0,
                               ping_timeout=0)
    proto = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    proto.makeConnection(transport)
    proto.dataReceived(UPGRADE)
    assert proto.state == proto.STATE_OPEN
    transport.clear()
    return proto, transport, rec


def masked_frame(payload: bytes, opcode: int = 2, fin: bool = True) -> bytes:
    """A client frame (RFC 6455 §5.2), masked with Autobahn's own masker."""
    mask, n = os.urandom(4), len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n <= 125:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + (create_xor_masker(mask, n).process(payload) if n else b"")


def test_server_unmasks_messages_of_every_size_in_any_chunks():
    """Masked messages of 1 B..70 kB, and one in two fragments, arrive intact however TCP cuts them."""
    proto, transport, rec = open_server()
    rng = random.Random(1)
    payloads = [os.urandom(n) for n in (1, 100, 125, 126, SMALL_FRAME, SMALL_FRAME + 1, 70000)]
    for payload in payloads:
        for piece in chunks(masked_frame(payload), rng) if len(payload) < 2000 else [masked_frame(payload)]:
            proto.dataReceived(piece)
    first, second = os.urandom(60), os.urandom(3000)
    for piece in chunks(masked_frame(first, fin=False) + masked_frame(second, opcode=0), rng):
        proto.dataReceived(piece)
    assert rec.received == payloads + [first + second]
    assert proto.state == proto.STATE_OPEN


def test_server_uses_the_integer_masker_up_to_small_frame_only():
    """A frame of SMALL_FRAME payload bytes is unmasked by IntXorMasker, a larger one by Autobahn's."""
    proto, transport, rec = open_server()
    proto.dataReceived(masked_frame(os.urandom(SMALL_FRAME))[:-1])  # header in, payload not complete
    assert type(proto.current_frame_masker) is IntXorMasker
    proto.dataReceived(b"\x00")
    proto.dataReceived(masked_frame(os.urandom(SMALL_FRAME + 1))[:-1])
    assert type(proto.current_frame_masker) is not IntXorMasker


def test_masked_ping_gets_its_payload_back_unmasked():
    """Control frames are unmasked too: a ping's payload comes back in the pong."""
    proto, transport, rec = open_server()
    proto.dataReceived(masked_frame(b"are you there", opcode=9))
    assert transport.value() == b"\x8a\x0dare you there"


def test_open_connection_writes_frames_without_autobahn_debug_call():
    """send_frame writes the frame to the transport and makes no (argument-formatting) log.debug call."""
    proto, transport, rec = open_server()
    proto.log = rec
    proto.send_frame(b"\x01\x00\x00\x00\x01\x01\x00")
    assert transport.value() == b"\x82\x07\x01\x00\x00\x00\x01\x01\x00"
    assert rec.calls == []


def test_reads_make_no_autobahn_debug_call():
    """dataReceived passes the bytes to Autobahn's frame parser without its (argument-formatting) log.debug."""
    proto, transport, rec = open_server()
    proto.log = rec
    frame = masked_frame(b"\x06\x00\x00\x00\x01\x01\x00")
    proto.dataReceived(frame[:3])
    proto.dataReceived(frame[3:])
    assert rec.received == [b"\x06\x00\x00\x00\x01\x01\x00"]
    assert rec.calls == []


def test_messages_reach_the_session_without_the_message_event():
    """A received message goes to the session; Autobahn's per-message "message" event is not fired."""
    proto, transport, rec = open_server()
    proto.fire = rec.fire
    proto.dataReceived(masked_frame(b"\x06\x00\x00\x00\x01\x01\x00"))
    assert rec.received == [b"\x06\x00\x00\x00\x01\x01\x00"]
    assert rec.calls == []


class Owner:
    """A BtpSession owner with no handlers."""

    data_handler = money_handler = None

    def session_open(self, session):
        pass

    def session_closed(self, session, reason):
        pass


def open_session():
    clock, sent = Clock(), []
    session = BtpSession(role=Role.SERVER, send=sent.append, close=lambda code, reason: None, clock=clock,
                         owner=Owner(), secret=b"s", log=Logger(observer=lambda e: None))
    session.data_received(encode_frame(auth_message(7, "s", "alice")))
    sent.clear()
    return session, clock, sent


def outcome(d):
    out = []
    d.addBoth(out.append)
    assert out, "expected the Deferred to have fired"
    return out[0]


@pytest.mark.parametrize("entries, expected", [
    ((ProtocolDataEntry("other", 0, b"x"), ProtocolDataEntry("ilp", 0, b"fulfill")), b"fulfill"),
    ((), b""),
])
def test_request_ilp_is_one_deferred_firing_with_the_ilp_entry(entries, expected):
    """request_ilp sends one ilp Message; its Deferred fires with the Response's ilp bytes (b"" if none)."""
    session, clock, sent = open_session()
    d = session.request_ilp(b"prepare")
    frame = decode_frame(sent[-1])
    assert frame.protocol_data == (ProtocolDataEntry("ilp", 0, b"prepare"),)
    session.data_received(encode_frame(Response(frame.request_id, entries)))
    assert outcome(d) == expected
    assert session.pending_count == 0 and clock.getDelayedCalls() == []


def test_request_ilp_times_out_cancels_and_fails_t01_as_request_does():
    """request_ilp: BtpTimeoutError at 35 s, cancel forgets it, a close fails it with T01."""
    session, clock, sent = open_session()
    d = session.request_ilp(b"a")
    clock.advance(34.999)
    assert not d.called
    clock.advance(0.001)
    failure = outcome(d)
    assert failure.check(BtpTimeoutError) and failure.value.message == f"{decode_frame(sent[-1]).request_id} timed out"
    d = session.request_ilp(b"b")
    d.cancel()
    assert outcome(d).check(CancelledError) and session.pending_count == 0 and clock.getDelayedCalls() == []
    d = session.request_ilp(b"c")
    session.close()
    failure = outcome(d)
    assert failure.check(PeerUnreachableError) and failure.value.code == "T01"
    assert outcome(session.request_ilp(b"d")).check(PeerUnreachableError)
