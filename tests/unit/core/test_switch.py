"""The packet switch: routing, expiry, rates, errors, IL-DCP, fulfillment validation."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, PEER_PROTOCOL_CONDITION, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.core.accounts import Account, Accounts
from ilptx.core.middleware.error_handler import ErrorHandlerMiddleware
from ilptx.core.middleware.expire import ExpireMiddleware
from ilptx.core.middleware.validate_fulfillment import ValidateFulfillmentMiddleware
from ilptx.core.rates import OneToOneBackend
from ilptx.core.routing import RoutingTable
from ilptx.core.switch import PacketSwitch
from ilptx.testing import fulfilling_handler, linked_plugins

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ADDRESS = "test.connector"
FULFILLMENT = b"\x07" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


class Harness:
    """A connector with accounts alice (child, scale 9), bob (child, scale 9), carol (peer, scale 6)."""

    def __init__(self, spread="0", reflect=True, mmw=1000, mht=30000):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.accounts = Accounts()
        self.clients = {}
        table = RoutingTable()
        for account_id, relation, scale in (("alice", "child", 9), ("bob", "child", 9), ("carol", "peer", 6)):
            connector_side, client = linked_plugins(account_id, account_id + "-client")
            account = Account(account_id, relation, "USD", scale, plugin=connector_side)
            self.accounts.add(account)
            self.clients[account_id] = client
            if relation == "child":
                table.add(f"{ADDRESS}.{account_id}", account_id)
        table.add("g.carol", "carol")
        self.switch = PacketSwitch(
            address=ADDRESS, accounts=self.accounts, routing_table=table,
            rate_backend=OneToOneBackend(Decimal(spread)), clock=self.clock,
            min_message_window_ms=mmw, max_hold_time_ms=mht, reflect_payments=reflect,
        )
        for account in self.accounts:
            self.switch.attach(account, [ErrorHandlerMiddleware(lambda: ADDRESS), ExpireMiddleware(self.clock),
                                         ValidateFulfillmentMiddleware()])
            account.plugin.register_data_handler(self.switch.data_handler(account))
            account.plugin.connect()
            self.clients[account.id].connect()

    def now(self):
        return EPOCH + timedelta(seconds=self.clock.seconds())

    def prepare(self, destination, amount=100, expires_in=10.0, condition=CONDITION, data=b"hi"):
        return Prepare(amount, self.now() + timedelta(seconds=expires_in), condition, destination, data)

    def send(self, from_account, packet):
        """Send from the account's client; returns the decoded response (must be synchronous)."""
        raw = packet if isinstance(packet, bytes) else encode_packet(packet)
        results = []
        self.clients[from_account].send_data(raw).addCallback(results.append)
        assert results, "no synchronous response"
        return decode_response(results[0])


def test_prepare_is_forwarded_and_fulfill_returned():
    """A Prepare to a child's address reaches that child and its Fulfill comes back."""
    h = Harness()
    handler = fulfilling_handler([FULFILLMENT])
    h.clients["bob"].register_data_handler(handler)
    result = h.send("alice", h.prepare("test.connector.bob.x"))
    assert result == Fulfill(FULFILLMENT, b"")
    (seen,) = handler.received
    assert seen.amount == 100 and seen.data == b"hi" and seen.destination == "test.connector.bob.x"
    assert seen.execution_condition == CONDITION


def test_outgoing_expiry_is_incoming_minus_min_message_window():
    """Outgoing expiresAt = incoming - minMessageWindow when that is sooner than maxHoldTime."""
    h = Harness()
    handler = fulfilling_handler([FULFILLMENT])
    h.clients["bob"].register_data_handler(handler)
    packet = h.prepare("test.connector.bob", expires_in=10.0)
    h.send("alice", packet)
    assert handler.received[0].expires_at == packet.expires_at - timedelta(milliseconds=1000)


def test_outgoing_expiry_is_capped_by_max_hold_time():
    """A far-off expiry is capped at now + maxHoldTime."""
    h = Harness()
    handler = fulfilling_handler([FULFILLMENT])
    h.clients["bob"].register_data_handler(handler)
    h.send("alice", h.prepare("test.connector.bob", expires_in=120.0))
    assert handler.received[0].expires_at == h.now() + timedelta(milliseconds=30000)


@pytest.mark.parametrize("expires_in", [-1.0, 0.5, 1.9])
def test_too_little_time_left_is_r02(expires_in):
    """R02 when the Prepare expired or would leave less than minMessageWindow downstream."""
    h = Harness()
    h.clients["bob"].register_data_handler(fulfilling_handler([FULFILLMENT]))
    result = h.send("alice", h.prepare("test.connector.bob", expires_in=expires_in))
    assert isinstance(result, Reject) and result.code == "R02"
    assert result.triggered_by == ADDRESS


def test_no_answer_before_expiry_is_r00_and_request_cancelled():
    """When the next hop does not answer in time the sender gets R00 and the request is cancelled."""
    h = Harness()
    pending = []

    def slow(data):
        d = Deferred(lambda _: pending.append("cancelled"))
        return d

    h.clients["bob"].register_data_handler(slow)
    results = []
    h.clients["alice"].send_data(encode_packet(h.prepare("test.connector.bob", expires_in=5.0))).addCallback(results.append)
    assert results == [] and h.switch.in_flight() == 1
    h.clock.advance(3.9)
    assert results == []
    h.clock.advance(0.2)
    reject = decode_response(results[0])
    assert reject.code == "R00" and reject.triggered_by == ADDRESS
    assert pending == ["cancelled"]
    assert h.switch.in_flight() == 0 and h.clock.getDelayedCalls() == []


def test_timer_cancelled_when_answer_arrives():
    """A timely answer leaves no timer behind."""
    h = Harness()
    d = Deferred()
    h.clients["bob"].register_data_handler(lambda data: d)
    results = []
    h.clients["alice"].send_data(encode_packet(h.prepare("test.connector.bob"))).addCallback(results.append)
    d.callback(encode_packet(Fulfill(FULFILLMENT, b"ok")))
    assert decode_response(results[0]) == Fulfill(FULFILLMENT, b"ok")
    assert h.clock.getDelayedCalls() == []


def test_no_route_is_f02():
    """No route → F02 Unreachable triggered by us."""
    h = Harness()
    result = h.send("alice", h.prepare("g.nowhere.x"))
    assert result.code == "F02" and result.triggered_by == ADDRESS
    assert "no route" in result.message


def test_segment_boundary_is_respected_in_forwarding():
    """A route for test.connector.bob does not catch test.connector.bobby."""
    h = Harness()
    h.clients["bob"].register_data_handler(fulfilling_handler([FULFILLMENT]))
    assert h.send("alice", h.prepare("test.connector.bobby")).code == "F02"


def test_reflect_payments_false_refuses_routing_back():
    """With reflectPayments off a packet cannot return to its sender's account."""
    h = Harness(reflect=False)
    h.clients["alice"].register_data_handler(fulfilling_handler([FULFILLMENT]))
    result = h.send("alice", h.prepare("test.connector.alice.x"))
    assert result.code == "F02" and "back to sender" in result.message


def test_reflect_payments_true_allows_routing_back():
    """With reflectPayments on (the default) a packet may go back to its sender's account."""
    h = Harness(reflect=True)
    h.clients["alice"].register_data_handler(fulfilling_handler([FULFILLMENT]))
    assert isinstance(h.send("alice", h.prepare("test.connector.alice.x")), Fulfill)


def test_next_hop_down_is_t01():
    """A next hop whose plugin is not connected gives T01."""
    h = Harness()
    h.clients["bob"].disconnect()
    result = h.send("alice", h.prepare("test.connector.bob"))
    assert result.code == "T01" and result.triggered_by == ADDRESS


def test_downstream_reject_is_relayed_unchanged():
    """A Reject from the next hop reaches the sender byte for byte."""
    h = Harness()
    reject = Reject("F99", "g.carol.receiver", "app says no", b"\x01\x02")
    h.clients["carol"].register_data_handler(lambda data: encode_packet(reject))
    assert h.send("alice", h.prepare("g.carol.x")) == reject


def test_wrong_fulfillment_becomes_f05():
    """A Fulfill that does not hash to the condition is turned into F05 Wrong Condition."""
    h = Harness()
    h.clients["bob"].register_data_handler(lambda data: encode_packet(Fulfill(b"\x01" * 32, b"")))
    result = h.send("alice", h.prepare("test.connector.bob"))
    assert isinstance(result, Reject) and result.code == "F05" and result.triggered_by == ADDRESS


def test_malformed_prepare_is_f01():
    """Garbage instead of a Prepare gives F01 Invalid Packet."""
    h = Harness()
    result = h.send("alice", b"\x0c\x05hello")
    assert result.code == "F01" and result.triggered_by == ADDRESS


def test_a_fulfill_sent_as_request_is_f01():
    """A Fulfill where a Prepare belongs is an invalid packet."""
    h = Harness()
    assert h.send("alice", encode_packet(Fulfill(FULFILLMENT, b""))).code == "F01"


def test_invalid_response_from_next_hop_is_t00():
    """Garbage back from the next hop becomes T00, not an exception."""
    h = Harness()
    h.clients["bob"].register_data_handler(lambda data: b"\xff\xff")
    assert h.send("alice", h.prepare("test.connector.bob")).code == "T00"


def test_exchange_rate_and_spread_applied_and_floored():
    """Amounts convert with (1 - spread) * 10^(scale diff), floored."""
    h = Harness(spread="0.01")
    handler = fulfilling_handler([FULFILLMENT])
    h.clients["carol"].register_data_handler(handler)
    h.send("alice", h.prepare("g.carol.x", amount=1_234_567))
    # 1234567 * 0.99 * 10^-3 = 1222.22133 → 1222
    assert handler.received[0].amount == 1222


def test_zero_spread_equal_scale_is_identity():
    """Spread 0 and equal scales forward the exact amount."""
    h = Harness()
    handler = fulfilling_handler([FULFILLMENT])
    h.clients["bob"].register_data_handler(handler)
    h.send("alice", h.prepare("test.connector.bob", amount=2**64 - 1))
    assert handler.received[0].amount == 2**64 - 1


def test_ildcp_answers_child_with_address_scale_and_code():
    """A child asking peer.config learns its address, asset scale and code."""
    h = Harness()
    result = h.send("alice", request_prepare(h.now() + timedelta(seconds=30)))
    assert isinstance(result, Fulfill) and result.fulfillment == bytes(32)
    assert IldcpResponse.decode(result.data) == IldcpResponse("test.connector.alice", 9, "USD")


def test_ildcp_refused_for_a_peer():
    """IL-DCP is served to children only."""
    h = Harness()
    result = h.send("carol", request_prepare(h.now() + timedelta(seconds=30)))
    assert isinstance(result, Reject) and result.code == "F00"


def test_peer_protocol_needs_peer_condition():
    """A peer.* packet without the peer protocol condition is F01."""
    h = Harness()
    result = h.send("alice", h.prepare("peer.config", amount=0))
    assert result.code == "F01"
    assert h.send("alice", h.prepare("peer.unknown", amount=0, condition=PEER_PROTOCOL_CONDITION)).code == "F01"


def test_stop_answers_in_flight_and_refuses_new():
    """stop() waits for in-flight packets and refuses new ones with T03."""
    h = Harness()
    d = Deferred()
    h.clients["bob"].register_data_handler(lambda data: d)
    results = []
    h.clients["alice"].send_data(encode_packet(h.prepare("test.connector.bob"))).addCallback(results.append)
    stopped = []
    h.switch.stop().addCallback(stopped.append)
    assert stopped == []
    assert h.send("alice", h.prepare("test.connector.bob")).code == "T03"
    d.callback(encode_packet(Fulfill(FULFILLMENT, b"")))
    assert stopped == [None]
    assert isinstance(decode_response(results[0]), Fulfill)


def test_unexpected_exception_becomes_t00():
    """A bug in a component becomes T00 and the switch keeps serving."""
    h = Harness()

    class Broken:
        def rate(self, *args):
            raise ZeroDivisionError("boom")

    h.switch.rate_backend = Broken()
    assert h.send("alice", h.prepare("test.connector.bob")).code == "T00"


def test_plugin_error_keeps_code_with_reference_wording():
    """A next hop's plugin failure keeps its ILP code; the message reads 'failed to send packet: ...'."""
    from twisted.internet.defer import fail

    from ilptx.errors import IlpError

    h = Harness()
    bob = h.accounts.get("bob").plugin
    bob.send_data = lambda data: fail(IlpError("peer said no", code="F02"))
    result = h.send("alice", h.prepare("test.connector.bob"))
    assert (result.code, result.message, result.triggered_by) == ("F02", "failed to send packet: peer said no", ADDRESS)


def test_plugin_crash_is_t01():
    """A non-ILP exception from the next hop's plugin becomes T01 Peer Unreachable."""
    from twisted.internet.defer import fail

    h = Harness()
    h.accounts.get("bob").plugin.send_data = lambda data: fail(ConnectionResetError("gone"))
    result = h.send("alice", h.prepare("test.connector.bob"))
    assert result.code == "T01" and "gone" in result.message
