"""STREAM receiver (RFC 29) without sockets: packets crafted with our crypto, a memory plugin."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.codec.stream import (
    PACKET_TYPE_FULFILL,
    PACKET_TYPE_PREPARE,
    PACKET_TYPE_REJECT,
    ConnectionAssetDetails,
    ConnectionNewAddress,
    StreamClose,
    StreamMaxMoney,
    StreamMoney,
    StreamPacket,
)
from ilptx.stream import crypto
from ilptx.stream.server import StreamServer
from ilptx.testing import linked_plugins

EXPIRES = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def server():
    """A StreamServer whose plugin's counterparty answers IL-DCP with test.conn.shop (USD, 6)."""
    ours, connector = linked_plugins("shop", "connector")
    connector.register_data_handler(
        lambda data: encode_packet(response_fulfill(IldcpResponse("test.conn.shop", 6, "USD"))))
    connector.connect()
    received = []
    srv = StreamServer(ours, Clock(), on_money=lambda conn, stream_id, amount: received.append((stream_id, amount)),
                       server_secret=b"\x09" * 32)
    srv.connect()
    srv.received = received
    return srv


class Sender:
    """Crafts STREAM Prepares for one connection of ``server``."""

    def __init__(self, server, destination=None, secret=None):
        credentials = server.generate_address_and_secret()
        self.server = server
        self.destination = destination or credentials.destination_account
        self.enc, self.ful = crypto.derive_keys(secret or credentials.shared_secret)
        self.sequence = 0

    def send(self, amount, frames, prepare_amount=0, fulfillable=True):
        self.sequence += 1
        data = crypto.encrypt_packet(self.enc, StreamPacket(self.sequence, PACKET_TYPE_PREPARE, prepare_amount,
                                                            tuple(frames)))
        condition = self.last_condition = crypto.condition(self.ful, data) if fulfillable else b"\x00" * 32
        reply = decode_response(self.server.handle_data(encode_packet(
            Prepare(amount, EXPIRES, condition, self.destination, data))))
        response = crypto.decrypt_packet(self.enc, reply.data) if reply.data else None
        return reply, response


def test_connect_takes_the_address_by_ildcp(server):
    """connect() learns the server's address, asset code and scale from the connector."""
    assert (server.address, server.asset_code, server.asset_scale) == ("test.conn.shop", "USD", 6)
    assert server.generate_address_and_secret().destination_account.startswith("test.conn.shop.")


def test_money_is_fulfilled_split_by_shares_and_counted(server):
    """A fulfillable Prepare is fulfilled; the amount is split over StreamMoney shares (floored)."""
    sender = Sender(server)
    reply, response = sender.send(1000, [StreamMoney(1, 1), StreamMoney(3, 2)])
    assert isinstance(reply, Fulfill)
    assert hashlib.sha256(reply.fulfillment).digest() == sender.last_condition
    assert response.ilp_packet_type == PACKET_TYPE_FULFILL and response.sequence == 1
    assert response.prepare_amount == 1000
    assert server.received == [(1, 333), (3, 666)] and server.total_received == 999
    assert StreamMaxMoney(1, 2**64 - 1, 333) in response.frames


def test_test_packet_is_rejected_f99_with_the_amount_seen(server):
    """An unfulfillable (rate-probe) Prepare gets F99 carrying what arrived; nothing is credited."""
    sender = Sender(server)
    reply, response = sender.send(777, [ConnectionNewAddress("test.conn.payer")], fulfillable=False)
    assert isinstance(reply, Reject) and reply.code == "F99" and reply.triggered_by == "test.conn.shop"
    assert response.ilp_packet_type == PACKET_TYPE_REJECT and response.prepare_amount == 777
    assert ConnectionAssetDetails("USD", 6) in response.frames  # answer to ConnectionNewAddress
    assert server.total_received == 0


def test_too_little_for_the_senders_minimum_is_rejected(server):
    """prepare_amount above the amount that arrived → F99, nothing credited."""
    reply, _ = Sender(server).send(99, [StreamMoney(1, 1)], prepare_amount=100)
    assert reply.code == "F99" and server.total_received == 0


def test_receive_max_is_enforced(server):
    """A stream never receives more than receive_max; the Reject tells the sender the limit."""
    server.receive_max = 500
    sender = Sender(server)
    assert isinstance(sender.send(400, [StreamMoney(1, 1)])[0], Fulfill)
    reply, response = sender.send(200, [StreamMoney(1, 1)])
    assert reply.code == "F99" and StreamMaxMoney(1, 500, 400) in response.frames
    assert server.total_received == 400


def test_closed_stream_refuses_money(server):
    """After the sender closes a stream, money for it is refused with StreamClose."""
    sender = Sender(server)
    sender.send(0, [StreamClose(1, 1, "")])
    reply, response = sender.send(10, [StreamMoney(1, 1)])
    assert reply.code == "F99" and any(type(f) is StreamClose for f in response.frames)


def test_foreign_token_is_f02_and_garbage_is_f06(server):
    """A token the server did not make is unreachable (F02); undecryptable data is F06."""
    other = StreamServer(server.plugin, Clock(), server_secret=b"\x01" * 32)
    other.address = server.address
    foreign = other.generate_address_and_secret()
    reply, _ = Sender(server, destination=foreign.destination_account, secret=foreign.shared_secret).send(
        5, [StreamMoney(1, 1)])
    assert reply.code == "F02"
    good = server.generate_address_and_secret()
    reply, _ = Sender(server, destination=good.destination_account, secret=b"\x07" * 32).send(5, [StreamMoney(1, 1)])
    assert reply.code == "F06"


def test_respond_with_returns_data_in_the_fulfill_at_increasing_offsets(server):
    """respond_with's bytes come back as StreamData frames, offsets counting what was sent."""
    from ilptx.codec.stream import StreamData

    server.respond_with = lambda connection, stream_id, amount: b"x" * amount
    sender = Sender(server)
    _, first = sender.send(3, [StreamMoney(1, 1)])
    _, second = sender.send(2, [StreamMoney(1, 1)])
    assert StreamData(1, 0, b"xxx") in first.frames and StreamData(1, 3, b"xx") in second.frames


def test_idle_connections_are_forgotten(server):
    """A connection with no packet for idle_timeout seconds is dropped; its address still works afterwards."""
    clock = server._clock
    sender = Sender(server)
    sender.send(10, [StreamMoney(1, 1)])
    assert len(server.connections) == 1
    clock.advance(30)
    assert len(server.connections) == 1
    clock.advance(31)
    assert server.connections == {}
    reply, _ = sender.send(5, [StreamMoney(1, 1)])
    assert isinstance(reply, Fulfill) and len(server.connections) == 1
