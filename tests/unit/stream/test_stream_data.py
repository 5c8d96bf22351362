"""STREAM data streams and flow control (RFC 29): the receiver's in-order reassembly and its
advertised windows, and our sender's data sending within them. Memory plugins and task.Clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_prepare, decode_response, encode_packet
from ilptx.codec.stream import (
    PACKET_TYPE_PREPARE,
    ConnectionClose,
    ConnectionMaxData,
    ErrorCode,
    StreamData,
    StreamDataBlocked,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
    StreamPacket,
)
from ilptx.stream import crypto
from ilptx.stream.sender import PaymentResult, SendState, StreamPaymentError, send_payment
from ilptx.stream.server import StreamServer
from ilptx.testing import linked_plugins

EXPIRES = datetime(2030, 1, 1, tzinfo=timezone.utc)


def make_server(clock, **options):
    """A StreamServer at test.conn.shop collecting its streams' bytes in ``server.got``."""
    shop, connector = linked_plugins("shop", "connector-shop")
    connector.register_data_handler(
        lambda data: encode_packet(response_fulfill(IldcpResponse("test.conn.shop", 6, "USD"))))
    connector.connect()
    got: dict = {}
    server = StreamServer(shop, clock, server_secret=b"\x05" * 32,
                          on_stream_data=lambda conn, sid, data: got.setdefault(sid, []).append(data), **options)
    server.connect()
    server.got = got
    server.connector = connector
    return server


class Crafter:
    """Hand-made STREAM Prepares for one connection of ``server``."""

    def __init__(self, server):
        credentials = server.generate_address_and_secret()
        self.server = server
        self.destination = credentials.destination_account
        self.enc, self.ful = crypto.derive_keys(credentials.shared_secret)
        self.sequence = 0

    def send(self, frames, amount=0, fulfillable=True):
        self.sequence += 1
        data = crypto.encrypt_packet(self.enc, StreamPacket(self.sequence, PACKET_TYPE_PREPARE, 0, tuple(frames)))
        condition = crypto.condition(self.ful, data) if fulfillable else b"\x00" * 32
        reply = decode_response(self.server.handle_data(encode_packet(
            Prepare(amount, EXPIRES, condition, self.destination, data))))
        return reply, crypto.decrypt_packet(self.enc, reply.data)


def frames_of(response, kind):
    return [f for f in response.frames if type(f) is kind]


def test_out_of_order_and_duplicate_frames_are_reassembled_in_order():
    """Frames ahead of the read offset are held; duplicates and overlaps are dropped."""
    server = make_server(Clock())
    sender = Crafter(server)
    payload = bytes(range(256)) * 4
    sender.send([StreamData(1, 500, payload[500:800])])
    assert server.got == {}
    sender.send([StreamData(1, 0, payload[:300]), StreamData(1, 0, payload[:100])])
    assert b"".join(server.got[1]) == payload[:300]
    sender.send([StreamData(1, 200, payload[200:600])], fulfillable=False)  # overlaps both sides
    assert b"".join(server.got[1]) == payload[:800]
    sender.send([StreamData(1, 800, payload[800:]), StreamData(1, 700, payload[700:900])])
    assert b"".join(server.got[1]) == payload
    assert server.connections[sender.destination.rsplit(".", 1)[1]].streams[1].pending == {}


def test_replies_advertise_the_windows_beyond_what_was_delivered():
    """ConnectionMaxData in every reply, StreamMaxData per stream in a Fulfill's reply."""
    server = make_server(Clock(), max_stream_data=1000, max_connection_data=3000)
    sender = Crafter(server)
    reply, response = sender.send([StreamData(1, 0, b"x" * 400)])
    assert isinstance(reply, Fulfill)
    assert frames_of(response, ConnectionMaxData) == [ConnectionMaxData(3400)]
    assert frames_of(response, StreamMaxData) == [StreamMaxData(1, 1400)]
    # held out of order: the stream window stays, the connection window shrinks by what is held
    reply, response = sender.send([StreamData(1, 1000, b"y" * 100)], fulfillable=False)
    assert isinstance(reply, Reject) and reply.code == "F99"
    assert frames_of(response, ConnectionMaxData) == [ConnectionMaxData(3300)]


def test_bytes_beyond_the_stream_window_close_with_flow_control_error():
    """As ilp-protocol-stream: F99 with ConnectionClose(FlowControlError); nothing delivered."""
    server = make_server(Clock(), max_stream_data=1000)
    sender = Crafter(server)
    reply, response = sender.send([StreamData(1, 0, b"a" * 1001)])
    assert isinstance(reply, Reject) and reply.code == "F99"
    (close,) = frames_of(response, ConnectionClose)
    assert close.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert server.got == {}
    reply, response = sender.send([StreamMoney(1, 1)], amount=10)
    assert isinstance(reply, Reject)  # the connection is closed


def test_bytes_beyond_the_connection_window_close_with_flow_control_error():
    """Two streams together may not pass the connection's window."""
    server = make_server(Clock(), max_stream_data=1000, max_connection_data=1200)
    sender = Crafter(server)
    sender.send([StreamData(1, 0, b"a" * 900)])
    reply, _ = sender.send([StreamData(3, 500, b"b" * 400)])  # held: 1800 <= 900 - 0 + 1200
    assert isinstance(reply, Fulfill)
    reply, response = sender.send([StreamData(5, 500, b"c" * 400)])  # 2700 > 900 - 400 + 1200
    assert isinstance(reply, Reject) and reply.code == "F99"
    (close,) = frames_of(response, ConnectionClose)
    assert close.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert 5 not in server.got


def test_money_and_data_on_one_packet():
    """A fulfillable packet with money and data credits both."""
    server = make_server(Clock())
    sender = Crafter(server)
    reply, _ = sender.send([StreamMoney(1, 1), StreamData(1, 0, b"hello")], amount=50)
    assert isinstance(reply, Fulfill)
    assert server.total_received == 50 and server.got == {1: [b"hello"]}


# -- the sender ---------------------------------------------------------------------------------


def make_net(clock, **server_options):
    """payer plugin -> a recording forwarder (IL-DCP for the payer) -> the server."""
    server = make_server(clock, **server_options)
    credentials = server.generate_address_and_secret()
    enc, _ = crypto.derive_keys(credentials.shared_secret)
    packets = []  # (amount, decrypted StreamPacket) the payer sent

    def forward(data):
        prepare = decode_prepare(data)
        if prepare.destination == "peer.config":
            return encode_packet(response_fulfill(IldcpResponse("test.conn.payer", 6, "USD")))
        packets.append((prepare.amount, crypto.decrypt_packet(enc, prepare.data)))
        return server.connector.send_data(encode_packet(replace(prepare)))

    payer, connector_payer = linked_plugins("payer", "connector-payer")
    connector_payer.register_data_handler(forward)
    connector_payer.connect()
    payer.connect()
    return payer, server, credentials, packets


def run(d, clock):
    outcome = []
    d.addBoth(outcome.append)
    for _ in range(2000):
        if outcome:
            break
        clock.advance(0.1)
    assert outcome, "the payment did not finish"
    return outcome[0] if isinstance(outcome[0], PaymentResult) else outcome[0].value


def test_ten_kilobytes_arrive_in_order_across_several_packets():
    """Data rides on the money packet, then on packets of 0, in chunks; all acknowledged."""
    clock = Clock()
    payer, server, credentials, packets = make_net(clock)
    payload = bytes(i * 7 % 251 for i in range(10_000))
    result = run(send_payment(payer, credentials.destination_account, credentials.shared_secret, 1000,
                              clock=clock, data=payload), clock)
    assert isinstance(result, PaymentResult), result
    assert result.sent == 1000 and result.data_sent == 10_000
    assert b"".join(server.got[1]) == payload
    data_frames = [f for _, p in packets for f in p.frames if type(f) is StreamData]
    assert len(data_frames) == 10 and all(len(f.data) <= 1000 for f in data_frames)
    assert [f.offset for f in data_frames] == list(range(0, 10_000, 1000))


def test_data_only_without_money():
    """amount=0 with data: no rate probe, data packets of 0, then the close."""
    clock = Clock()
    payer, server, credentials, packets = make_net(clock)
    result = run(send_payment(payer, credentials.destination_account, credentials.shared_secret, 0,
                              clock=clock, data=b"z" * 2500), clock)
    assert isinstance(result, PaymentResult), result
    assert result.data_sent == 2500 and b"".join(server.got[1]) == b"z" * 2500
    assert all(amount == 0 for amount, _ in packets)


def test_the_sender_never_exceeds_the_advertised_window():
    """With a small stream window the sender stays within each advertised StreamMaxData."""
    clock = Clock()
    payer, server, credentials, packets = make_net(clock, max_stream_data=16384, max_connection_data=20_000)
    payload = bytes(range(256)) * 160  # 40960 bytes
    result = run(send_payment(payer, credentials.destination_account, credentials.shared_secret, 0,
                              clock=clock, data=payload, data_chunk_size=7000), clock)
    assert isinstance(result, PaymentResult), result
    assert b"".join(server.got[1]) == payload
    acked = 0  # what the receiver had delivered (and advertised +16384 / +20000 on) before each packet
    for _, packet in packets:
        for f in packet.frames:
            assert type(f) is not ConnectionClose or f.error_code == ErrorCode.NO_ERROR
            if type(f) is StreamData:
                assert f.offset == acked and f.offset + len(f.data) <= acked + 16384
                acked = f.offset + len(f.data)
    assert acked == len(payload)


def test_a_blocked_sender_sends_stream_data_blocked_and_gives_up_if_the_window_stays_shut():
    """A receiver that never opens its window: StreamDataBlocked, back-off, then an error."""
    state = SendState(0, source_address="a", destination="b", data=b"q" * 20_000)
    state.next()
    state.rejected("F99", b"", StreamPacket(1, 14, 0, (ConnectionMaxData(100_000),)))
    sent = 0
    blocked_seen = False
    for _ in range(200):
        action = state.next()
        if action is None:
            break
        if not hasattr(action, "packet"):
            continue  # Wait
        frames = action.packet.frames
        if any(type(f) is StreamDataBlocked for f in frames):
            blocked_seen = True
        for f in frames:
            if type(f) is StreamData:
                assert f.offset + len(f.data) <= 16384  # the initial stream window
                sent = f.offset + len(f.data)
        state.fulfilled(StreamPacket(action.packet.sequence, 13, 0, ()))
    assert blocked_seen and sent == 16384
    assert isinstance(state.error, StreamPaymentError) and state.error.kind == "rejected"
    assert state.data_acked == 16384


def test_f99_replies_advertise_each_open_streams_windows():
    """An F99 reply (a test packet) carries StreamMaxData and StreamMaxMoney per open stream,
    so a sender learns a small window without overrunning it first."""
    server = make_server(Clock(), max_stream_data=500, receive_max=7000)
    sender = Crafter(server)
    reply, response = sender.send([StreamData(1, 0, b"a" * 100), StreamData(3, 0, b"b" * 200)], fulfillable=False)
    assert isinstance(reply, Reject) and reply.code == "F99"
    assert sorted((f.stream_id, f.max_offset) for f in frames_of(response, StreamMaxData)) == [(1, 600), (3, 700)]
    assert sorted((f.stream_id, f.receive_max, f.total_received) for f in frames_of(response, StreamMaxMoney)) \
        == [(1, 7000, 0), (3, 7000, 0)]
