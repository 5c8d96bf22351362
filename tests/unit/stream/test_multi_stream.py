"""STREAM sender on several streams (RFC 29): money split by shares per stream, each stream's
receiver limit, data reassembled per stream, StreamClose per stream. Our StreamServer behind an
in-test connector, memory plugins and task.Clock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import AmountTooLargeData, Reject, decode_prepare, encode_packet
from ilptx.codec.stream import StreamClose, StreamData, StreamMoney
from ilptx.stream import crypto
from ilptx.stream.sender import PaymentResult, SendState, StreamPaymentError, send_payment
from ilptx.stream.server import StreamServer
from ilptx.testing import linked_plugins


class Connector:
    """Answers the payer's IL-DCP and forwards its Prepares to the shop's StreamServer, at
    ``rate``, rejecting bigger packets than ``max_packet`` with F08; records each Prepare's
    decrypted STREAM packet (once ``secret`` is set)."""

    def __init__(self, to_shop, rate=Decimal(1), max_packet=None):
        self.to_shop = to_shop
        self.rate = Decimal(rate)
        self.max_packet = max_packet
        self.secret = None
        self.packets = []  # (amount, StreamPacket)

    def handle(self, data: bytes):
        prepare = decode_prepare(data)
        if prepare.destination == "peer.config":
            return encode_packet(response_fulfill(IldcpResponse("test.conn.payer", 6, "USD")))
        if self.secret is not None:
            enc, _ = crypto.derive_keys(self.secret)
            self.packets.append((prepare.amount, crypto.decrypt_packet(enc, prepare.data)))
        if self.max_packet is not None and prepare.amount > self.max_packet:
            return encode_packet(Reject("F08", "test.conn", "too large",
                                        AmountTooLargeData(prepare.amount, self.max_packet).encode()))
        return self.to_shop.send_data(encode_packet(replace(prepare, amount=int(prepare.amount * self.rate))))


@pytest.fixture
def net():
    """``net(server_options, **connector_options)`` → (payer plugin, server, connector, clock);
    the server collects each stream's bytes in ``server.got``."""

    def build(server_options=None, **options):
        clock = Clock()
        shop, connector_shop = linked_plugins("shop", "connector-shop")
        connector_shop.register_data_handler(
            lambda data: encode_packet(response_fulfill(IldcpResponse("test.conn.shop", 6, "USD"))))
        connector_shop.connect()
        got: dict = {}
        server = StreamServer(shop, clock, server_secret=b"\x09" * 32,
                              on_stream_data=lambda conn, sid, data: got.setdefault(sid, []).append(data),
                              **(server_options or {}))
        server.connect()
        server.got = got
        payer, connector_payer = linked_plugins("payer", "connector-payer")
        connector = Connector(connector_shop, **options)
        connector_payer.register_data_handler(connector.handle)
        connector_payer.connect()
        payer.connect()
        return payer, server, connector, clock

    return build


def pay(payer, server, connector, clock, streams, **kwargs):
    """Run send_payment on ``streams`` to the end; :returns: (result or error, the connection)."""
    credentials = server.generate_address_and_secret()
    connector.secret = credentials.shared_secret
    d = send_payment(payer, credentials.destination_account, credentials.shared_secret, None, clock=clock,
                     streams=streams, **kwargs)
    outcome = []
    d.addBoth(outcome.append)
    for _ in range(2000):
        if outcome:
            break
        clock.advance(0.1)
    assert outcome, "the payment did not finish"
    connection = server.connections[credentials.destination_account.rsplit(".", 1)[1]]
    if isinstance(outcome[0], PaymentResult):
        return outcome[0], connection
    return outcome[0].value, connection


def money_frames(connector):
    return [[f for f in packet.frames if type(f) is StreamMoney] for _, packet in connector.packets]


def test_two_streams_with_different_amounts_are_both_delivered_exactly(net):
    """One packet, a StreamMoney frame per stream with shares = its part; the server credits
    each stream exactly its amount."""
    payer, server, connector, clock = net()
    result, connection = pay(payer, server, connector, clock, {1: {"amount": 700}, 3: {"amount": 300}})
    assert isinstance(result, PaymentResult), result
    assert (result.sent, result.delivered) == (1000, 1000)
    assert connection.streams[1].total_received == 700 and connection.streams[3].total_received == 300
    assert result.streams == {1: (700, 700, 0), 3: (300, 300, 0)}
    assert [StreamMoney(1, 700), StreamMoney(3, 300)] in money_frames(connector)


def test_small_packets_split_by_what_each_stream_still_needs(net):
    """With packets capped at 99 (F08), every packet's parts follow the streams' remaining
    needs and never over-fill a stream; totals come out exact at rate 1."""
    payer, server, connector, clock = net(max_packet=99)
    result, connection = pay(payer, server, connector, clock,
                             {1: {"amount": 500}, 3: {"amount": 251}, 5: {"amount": 7}})
    assert isinstance(result, PaymentResult), result
    assert {sid: s.total_received for sid, s in connection.streams.items()} == {1: 500, 3: 251, 5: 7}
    assert result.streams == {1: (500, 500, 0), 3: (251, 251, 0), 5: (7, 7, 0)}
    parts = money_frames(connector)
    assert len(parts) > 8 and all(sum(f.shares for f in frames) <= 99 for frames in parts[1:] if len(frames) > 1)


def test_delivered_per_stream_follows_the_receivers_floor_split_at_a_rate(net):
    """At rate 2 each stream gets twice its part; the sender's per-stream delivered totals are
    the server's."""
    payer, server, connector, clock = net(rate=2)
    result, connection = pay(payer, server, connector, clock, {1: {"amount": 333}, 7: {"amount": 667}})
    assert isinstance(result, PaymentResult), result
    assert connection.streams[1].total_received == 666 and connection.streams[7].total_received == 1334
    assert result.streams[1][:2] == (333, 666) and result.streams[7][:2] == (667, 1334)


def test_a_stream_at_its_receiver_limit_stops_while_the_other_completes(net):
    """receive_max 500 per stream: stream 3 (asking 800) gets 500 and stops, stream 1 (300)
    completes; the payment finishes with the per-stream totals."""
    payer, server, connector, clock = net({"receive_max": 500})
    result, connection = pay(payer, server, connector, clock, {1: {"amount": 300}, 3: {"amount": 800}})
    assert isinstance(result, PaymentResult), result
    assert connection.streams[1].total_received == 300 and connection.streams[3].total_received == 500
    assert result.streams[1] == (300, 300, 0) and result.streams[3] == (500, 500, 0)
    assert result.sent == 800


def test_every_stream_at_its_limit_fails_the_payment(net):
    """When no stream can be paid in full the payment fails (as a single stream does)."""
    payer, server, connector, clock = net({"receive_max": 100})
    error, connection = pay(payer, server, connector, clock, {1: {"amount": 300}, 3: {"amount": 800}})
    assert isinstance(error, StreamPaymentError) and error.kind == "rejected", error
    assert connection.streams[1].total_received == 100 and connection.streams[3].total_received == 100


def test_data_on_two_streams_is_reassembled_separately(net):
    """Each stream's bytes arrive in their own StreamData frames and come out whole, apart."""
    payer, server, connector, clock = net()
    one, three = bytes(range(256)) * 20, b"hello stream three " * 300
    result, connection = pay(payer, server, connector, clock,
                             {1: {"amount": 1000, "data": one}, 3: {"data": three}}, data_chunk_size=700)
    assert isinstance(result, PaymentResult), result
    assert b"".join(server.got[1]) == one and b"".join(server.got[3]) == three
    assert result.streams == {1: (1000, 1000, len(one)), 3: (0, 0, len(three))}
    assert result.data_sent == len(one) + len(three)
    assert connection.streams[1].total_received == 1000


def test_data_streams_stay_within_each_advertised_window(net):
    """A small stream window, learned from the F99 replies: no flow-control close, and each
    stream's offsets stay within what was advertised."""
    payer, server, connector, clock = net({"max_stream_data": 1500, "max_connection_data": 2500})
    one, three = b"a" * 5000, b"b" * 4000
    result, connection = pay(payer, server, connector, clock, {1: {"data": one}, 3: {"data": three}},
                             data_chunk_size=1000)
    assert isinstance(result, PaymentResult), result
    assert b"".join(server.got[1]) == one and b"".join(server.got[3]) == three
    assert not any(f.error_code != 1 for _, p in connector.packets for f in p.frames if type(f) is StreamClose)


def test_each_stream_is_closed_when_done_and_the_server_sees_it(net):
    """The finished stream's StreamClose rides an early packet (a money packet of the other
    stream); the other is closed at the end with the connection."""
    payer, server, connector, clock = net(max_packet=100)
    result, connection = pay(payer, server, connector, clock, {1: {"data": b"hi"}, 3: {"amount": 450}})
    assert isinstance(result, PaymentResult), result
    assert connection.streams[1].closed and connection.streams[3].closed and connection.closed
    closes = [(i, f.stream_id) for i, (_, p) in enumerate(connector.packets) for f in p.frames
              if type(f) is StreamClose]
    assert sorted(sid for _, sid in closes) == [1, 3]
    (first, _), (last, _) = sorted(closes)
    assert first < last == len(connector.packets) - 1  # stream 1 closed before the end
    assert any(type(f) is StreamMoney for f in connector.packets[first][1].frames)
    assert result.streams == {1: (0, 0, 2), 3: (450, 450, 0)} and server.got[1] == [b"hi"]


def test_single_stream_callers_are_unchanged(net):
    """Without streams= the payment goes on stream 1 with StreamMoney(1, 1), as before, and
    the result's streams has stream 1's totals."""
    payer, server, connector, clock = net()
    credentials = server.generate_address_and_secret()
    connector.secret = credentials.shared_secret
    d = send_payment(payer, credentials.destination_account, credentials.shared_secret, 1234, clock=clock,
                     data=b"xyz")
    out = []
    d.addBoth(out.append)
    clock.advance(1)
    assert isinstance(out[0], PaymentResult) and out[0].streams == {1: (1234, 1234, 3)}
    assert [StreamMoney(1, 1)] in money_frames(connector)
    assert PaymentResult(1, 1, 1, 1, 0, None, "a", "b").streams == {}


@pytest.mark.parametrize("streams", [
    {2: {"amount": 5}}, {0: {"amount": 5}}, {-1: {"amount": 5}}, {True: {"amount": 5}}, {},
    {1: {"amount": -1}}, {1: {}}, {1: {"amount": 1, "bogus": 1}}, {1: {"data": "text"}}, {1: 5},
])
def test_bad_streams_are_refused(streams):
    """Odd positive stream ids only (RFC 29: the client's), something to send on each."""
    with pytest.raises(ValueError):
        SendState(None, source_address="a", destination="b", streams=streams)
    with pytest.raises(ValueError):
        send_payment(None, "b", b"\x00" * 32, None, clock=Clock(), source_address="a", streams=streams)


def test_amount_and_data_may_not_contradict_streams():
    """``amount`` must be 0, None or the streams' total; ``data`` goes in the streams."""
    SendState(10, source_address="a", destination="b", streams={1: {"amount": 4}, 3: {"amount": 6}})
    with pytest.raises(ValueError):
        SendState(11, source_address="a", destination="b", streams={1: {"amount": 4}})
    with pytest.raises(ValueError):
        SendState(0, source_address="a", destination="b", data=b"x", streams={1: {"amount": 4}})


def test_the_sender_learns_small_windows_from_an_f99_reply():
    """StreamMaxData in an F99 reply (the rate probe's, here) shrinks each stream's window below
    the 16384 assumed until then; the next packet's data frames stay within it."""
    from ilptx.codec.stream import PACKET_TYPE_REJECT, ConnectionMaxData, StreamMaxData, StreamPacket

    state = SendState(None, source_address="a", destination="b", data_chunk_size=4000,
                      streams={1: {"amount": 10, "data": b"x" * 5000}, 3: {"data": b"y" * 5000}})
    hello = state.next()
    state.rejected("F99", b"", StreamPacket(hello.packet.sequence, PACKET_TYPE_REJECT, 0, (ConnectionMaxData(10**6),)))
    probe = state.next()
    state.rejected("F99", b"", StreamPacket(probe.packet.sequence, PACKET_TYPE_REJECT, probe.amount,
                                            (StreamMaxData(1, 1500), StreamMaxData(3, 1200))))
    money = state.next()
    data = {f.stream_id: (f.offset, len(f.data)) for f in money.packet.frames if type(f) is StreamData}
    assert data == {1: (0, 1500), 3: (0, 1200)}
    assert [f for f in money.packet.frames if type(f) is StreamMoney] == [StreamMoney(1, 1)]
