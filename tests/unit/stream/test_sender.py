"""STREAM sender (RFC 29) against our StreamServer, through a tiny in-memory "connector" that can
scale amounts (an exchange rate), run out of liquidity (T04), cap packets (F08) or lose the route
(F02). No sockets, no global reactor: memory plugins and task.Clock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import AmountTooLargeData, Reject, decode_prepare, encode_packet
from ilptx.codec.stream import (
    PACKET_TYPE_FULFILL,
    PACKET_TYPE_REJECT,
    ConnectionAssetDetails,
    ConnectionClose,
    ConnectionNewAddress,
    StreamClose,
    StreamMoney,
    StreamPacket,
)
from ilptx.stream.sender import (
    DEFAULT_LIQUIDITY_TIMEOUT,
    PaymentResult,
    Send,
    SendState,
    StreamPaymentError,
    send_payment,
)
from ilptx.stream.server import StreamServer
from ilptx.testing import linked_plugins


class Connector:
    """Answers the payer's IL-DCP and forwards its Prepares to the shop's StreamServer."""

    def __init__(self, to_shop, rate=Decimal(1), max_packet=None, t04_above=None, f02_when_received=None,
                 server=None, reject_code=None, hang=False):
        self.to_shop = to_shop
        self.reject_code = reject_code
        self.hang = hang
        self.rate = Decimal(rate)
        self.max_packet = max_packet
        self.t04_above = t04_above
        self.f02_when_received = f02_when_received
        self.server = server
        self.prepares = []  # amounts the payer sent, in order
        self.rejected = []  # (amount, code) the connector itself rejected

    def handle(self, data: bytes):
        prepare = decode_prepare(data)
        if prepare.destination == "peer.config":
            return encode_packet(response_fulfill(IldcpResponse("test.conn.payer", 6, "USD")))
        self.prepares.append(prepare.amount)
        if self.hang:
            return Deferred()  # never answers
        if self.reject_code is not None:
            return self._reject(prepare, self.reject_code, "injected")
        if self.f02_when_received is not None and self.server.total_received >= self.f02_when_received:
            return self._reject(prepare, "F02", "no route")
        if self.t04_above is not None and prepare.amount > self.t04_above:
            self.t04_above = None  # once
            return self._reject(prepare, "T04", "insufficient liquidity")
        if self.max_packet is not None and prepare.amount > self.max_packet:
            return self._reject(prepare, "F08", "too large",
                                AmountTooLargeData(prepare.amount, self.max_packet).encode())
        forwarded = replace(prepare, amount=int(prepare.amount * self.rate))
        return self.to_shop.send_data(encode_packet(forwarded))

    def _reject(self, prepare, code, message, data=b""):
        self.rejected.append((prepare.amount, code))
        return encode_packet(Reject(code, "test.conn", message, data))


@pytest.fixture
def net():
    """``net(**connector_options, receive_max=None)`` → (payer plugin, server, connector, clock)."""

    def build(receive_max=None, **options):
        clock = Clock()
        shop, connector_shop = linked_plugins("shop", "connector-shop")
        connector_shop.register_data_handler(
            lambda data: encode_packet(response_fulfill(IldcpResponse("test.conn.shop", 6, "USD"))))
        connector_shop.connect()
        server = StreamServer(shop, clock, server_secret=b"\x07" * 32, receive_max=receive_max)
        server.connect()
        payer, connector_payer = linked_plugins("payer", "connector-payer")
        connector = Connector(connector_shop, server=server, **options)
        connector_payer.register_data_handler(connector.handle)
        connector_payer.connect()
        payer.connect()
        return payer, server, connector, clock

    return build


def pay(payer, server, clock, amount, **kwargs):
    """Run send_payment to the end on ``clock``; :returns: the result, or the StreamPaymentError."""
    credentials = server.generate_address_and_secret()
    d = send_payment(payer, credentials.destination_account, credentials.shared_secret, amount, clock=clock,
                     **kwargs)
    outcome = []
    d.addBoth(outcome.append)
    for _ in range(1000):
        if outcome:
            break
        clock.advance(0.1)
    assert outcome, "the payment did not finish"
    if isinstance(outcome[0], PaymentResult):
        return outcome[0]
    return outcome[0].value


def test_exact_delivery_at_rate_one(net):
    """The whole amount arrives in one packet; handshake and close tell the receiver about us."""
    payer, server, connector, clock = net()
    progress = []
    result = pay(payer, server, clock, 1_000_000, progress=lambda s, d: progress.append((s, d)))
    assert isinstance(result, PaymentResult), result
    assert (result.sent, result.delivered, result.exchange_rate) == (1_000_000, 1_000_000, Decimal(1))
    assert server.total_received == 1_000_000
    assert result.source_address == "test.conn.payer"  # from IL-DCP
    assert result.fulfilled == 1 and result.packets == 4  # handshake, probe, money, close
    assert progress == [(1_000_000, 1_000_000)]
    (connection,) = server.connections.values()
    assert connection.source_address == "test.conn.payer"
    assert connection.closed and connection.streams[1].closed
    assert connector.prepares == [0, 1000, 1_000_000, 0]


def test_given_source_address_skips_ildcp(net):
    """With source_address given no IL-DCP request is made."""
    payer, server, connector, clock = net()
    result = pay(payer, server, clock, 10, source_address="test.elsewhere", source_asset=("EUR", 2))
    assert result.source_address == "test.elsewhere" and server.total_received == 10
    (connection,) = server.connections.values()
    assert connection.source_address == "test.elsewhere"


def test_half_rate_delivers_half_and_reports_the_rate(net):
    """At 0.5 the receiver gets half; the probed rate is reported."""
    payer, server, connector, clock = net(rate=Decimal("0.5"))
    result = pay(payer, server, clock, 1000)
    assert (result.sent, result.delivered, result.exchange_rate) == (1000, 500, Decimal("0.5"))
    assert server.total_received == 500


def test_t04_halves_the_packet_then_succeeds(net):
    """A T04 halves the packet amount; after a delay (on the clock) the rest goes through."""
    payer, server, connector, clock = net(t04_above=1000)
    result = pay(payer, server, clock, 1_000_000)
    assert result.sent == 1_000_000 and server.total_received == 1_000_000
    assert connector.rejected == [(1_000_000, "T04")]
    assert connector.prepares[2:] == [1_000_000, 500_000, 500_000, 0]
    assert result.rejected == 4  # handshake, probe, T04, close


def test_t04_before_the_delay_nothing_is_resent(net):
    """The retry after a T04 waits for the clock."""
    payer, server, connector, clock = net(t04_above=1000)
    credentials = server.generate_address_and_secret()
    outcome = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, 1_000_000,
                 clock=clock).addBoth(outcome.append)
    assert not outcome and connector.prepares == [0, 1000, 1_000_000]
    clock.advance(1)
    assert outcome and server.total_received == 1_000_000


def test_f08_learns_the_maximum_packet_amount(net):
    """An F08 with AmountTooLargeData scales packets down; none exceeds the maximum afterwards."""
    payer, server, connector, clock = net(max_packet=300_000)
    result = pay(payer, server, clock, 1_000_000)
    assert result.sent == result.delivered == 1_000_000 == server.total_received
    assert connector.rejected == [(1_000_000, "F08")]
    after = connector.prepares[connector.prepares.index(1_000_000) + 1:]
    assert after == [300_000, 300_000, 300_000, 100_000, 0]


def test_f08_below_the_probe_amount(net):
    """A path maximum smaller than the first test packet shrinks the probe too."""
    payer, server, connector, clock = net(max_packet=7)
    result = pay(payer, server, clock, 20)
    assert result.sent == 20 and server.total_received == 20
    assert max(connector.prepares[connector.prepares.index(1000) + 1:]) == 7


def test_f02_fails_no_route_with_what_was_delivered(net):
    """F02 ends the payment: kind no-route, the code, and how much arrived before."""
    payer, server, connector, clock = net(f02_when_received=300)
    error = pay(payer, server, clock, 1000, max_packet_amount=100)
    assert isinstance(error, StreamPaymentError)
    assert (error.kind, error.code, error.sent, error.delivered) == ("no-route", "F02", 300, 300)
    assert "no route" in str(error) and server.total_received == 300


def test_receive_max_stops_at_the_limit(net):
    """The receiver's StreamMaxMoney caps what we send; once full, a clear error."""
    payer, server, connector, clock = net(receive_max=400)
    error = pay(payer, server, clock, 1000)
    assert isinstance(error, StreamPaymentError)
    assert (error.kind, error.sent, error.delivered) == ("rejected", 400, 400)
    assert "limit is 400" in error.message
    assert server.total_received == 400


def test_min_exchange_rate_enforced(net):
    """A probed rate below min_exchange_rate fails with kind rate before any money moves."""
    payer, server, connector, clock = net(rate=Decimal("0.5"))
    error = pay(payer, server, clock, 1000, min_exchange_rate=Decimal("0.6"))
    assert isinstance(error, StreamPaymentError)
    assert (error.kind, error.sent, error.delivered) == ("rate", 0, 0)
    assert "0.5" in error.message and server.total_received == 0


def test_min_exchange_rate_met(net):
    """At or above the minimum the payment goes through."""
    payer, server, connector, clock = net(rate=Decimal("0.5"))
    result = pay(payer, server, clock, 1000, min_exchange_rate=Decimal("0.5"))
    assert result.delivered == 500


def test_tiny_rate_probes_with_bigger_packets(net):
    """When 1000 delivers nothing the probe grows until something arrives."""
    payer, server, connector, clock = net(rate=Decimal("0.0001"))
    result = pay(payer, server, clock, 10_000_000)
    assert result.exchange_rate == Decimal("0.0001") and result.delivered == 1000
    assert connector.prepares[:3] == [0, 1000, 1_000_000]


def test_unreachable_plugin(net):
    """A plugin whose link is down fails with kind unreachable (after a few tries)."""
    payer, server, connector, clock = net()
    payer.disconnect()
    error = pay(payer, server, clock, 1000, source_address="test.conn.payer")
    assert isinstance(error, StreamPaymentError) and error.kind == "unreachable"


def test_f08_that_cannot_shrink_fails_too_large(net):
    """A path that takes nothing (maximum 0) ends with kind too-large."""
    payer, server, connector, clock = net(max_packet=0)
    error = pay(payer, server, clock, 1000)
    assert (error.kind, error.code, error.sent) == ("too-large", "F08", 0)


def test_persisting_t04_fails_liquidity(net):
    """T04 on every packet: back off a number of times, then kind liquidity."""
    payer, server, connector, clock = net(reject_code="T04")
    error = pay(payer, server, clock, 1000)
    assert (error.kind, error.code) == ("liquidity", "T04")
    assert len(connector.prepares) > 5


def _pay_timed(payer, server, clock, amount, **kwargs):
    """Run send_payment on ``clock`` in 1 ms steps; :returns: (outcome, clock seconds it took)."""
    credentials = server.generate_address_and_secret()
    outcome = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, amount, clock=clock,
                 **kwargs).addBoth(outcome.append)
    for _ in range(60_000):
        if outcome:
            break
        clock.advance(0.001)
    assert outcome, "the payment did not finish within 60 s"
    return outcome[0], clock.seconds()


def test_persisting_t04_gives_up_after_the_liquidity_timeout(net):
    """Every packet T04: retries back off 0.1, 0.2, 0.4, 0.8, 1.6 and 1.9 s (5 s in all), then one
    liquidity error saying how long; not 12 tries over 31 s."""
    payer, server, connector, clock = net(reject_code="T04")
    outcome, seconds = _pay_timed(payer, server, clock, 1000)
    error = outcome.value
    assert isinstance(error, StreamPaymentError) and (error.kind, error.code) == ("liquidity", "T04")
    assert seconds == pytest.approx(DEFAULT_LIQUIDITY_TIMEOUT, abs=0.01)
    assert error.message == "every packet was rejected for 5 s of retries (injected)"
    assert len(connector.prepares) == 8  # the first try, 6 retries, the close
    assert str(error).count("sent") == 1


@pytest.mark.parametrize("timeout, tries, seconds", [(0, 1, 0.0), (1, 5, 1.0), (0.05, 2, 0.05)])
def test_liquidity_timeout_bounds_the_t04_retries(net, timeout, tries, seconds):
    """liquidity_timeout=0 gives up at the first T04; 1 s retries after 0.1, 0.2, 0.4 and 0.3 s."""
    payer, server, connector, clock = net(reject_code="T04")
    outcome, took = _pay_timed(payer, server, clock, 1000, liquidity_timeout=timeout)
    assert outcome.value.kind == "liquidity"
    assert took == pytest.approx(seconds, abs=0.002)
    assert len(connector.prepares) == tries + 1  # and the close


def test_a_fulfill_gives_the_liquidity_timeout_back():
    """The T04 back-off counts from the last Fulfill: a path that frees up now and then goes on."""
    state = SendState(1000, source_address="test.me", destination="test.you", liquidity_timeout=0.3)
    state.next()
    state.rejected("F99", b"", StreamPacket(1, PACKET_TYPE_REJECT, 0))
    state.next()
    state.rejected("F99", b"", StreamPacket(2, PACKET_TYPE_REJECT, 1000))
    waits = []
    for _ in range(2):
        state.next()
        state.rejected("T04", b"", None, "insufficient funds.")
        waits.append(state.next().seconds)
    assert waits == [0.1, pytest.approx(0.2)]
    money = state.next()
    assert money.amount == 250  # halved by each T04
    state.fulfilled(StreamPacket(money.packet.sequence, PACKET_TYPE_FULFILL, money.amount))
    state.next()
    state.rejected("T04", b"", None, "insufficient funds.")
    assert state.next().seconds == 0.1 and state.error is None  # the back-off starts again
    state.next()
    state.rejected("T04", b"", None, "insufficient funds.")
    assert state.next().seconds == pytest.approx(0.2)
    state.next()
    state.rejected("T04", b"", None, "insufficient funds.")  # 0.3 s spent since the Fulfill
    assert state.error is not None and state.error.kind == "liquidity" and state.error.sent == 250


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_liquidity_timeout_must_be_seconds(bad):
    """A negative or NaN liquidity_timeout is refused at once."""
    with pytest.raises(ValueError, match="liquidity_timeout"):
        SendState(1000, source_address="a", destination="b", liquidity_timeout=bad)


def test_persisting_r_error_fails_timeout(net):
    """R00 on every packet: retry a few times with a longer expiry, then kind timeout."""
    payer, server, connector, clock = net(reject_code="R00")
    error = pay(payer, server, clock, 1000)
    assert (error.kind, error.code) == ("timeout", "R00")


def test_other_final_error_fails_rejected_with_its_code(net):
    """An F-error other than F99/F08/F02 ends the payment with its code."""
    payer, server, connector, clock = net(reject_code="F06")
    error = pay(payer, server, clock, 1000)
    assert (error.kind, error.code, error.delivered) == ("rejected", "F06", 0)
    assert "injected" in error.message


def test_no_answer_fails_timeout(net):
    """Prepares that are never answered time out on the clock; kind timeout."""
    payer, server, connector, clock = net(hang=True)
    credentials = server.generate_address_and_secret()
    outcome = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, 1000,
                 clock=clock).addBoth(outcome.append)
    clock.pump([10] * 30)
    assert outcome and isinstance(outcome[0].value, StreamPaymentError)
    assert outcome[0].value.kind == "timeout" and len(connector.prepares) == 4  # 3 tries and the close


def test_closed_connection_fails_rejected(net):
    """Paying again on a connection the receiver saw closed: kind rejected, nothing sent."""
    payer, server, connector, clock = net()
    credentials = server.generate_address_and_secret()
    first = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, 10,
                 clock=clock).addBoth(first.append)
    assert isinstance(first[0], PaymentResult)
    again = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, 10,
                 clock=clock).addBoth(again.append)
    error = again[0].value
    assert (error.kind, error.sent) == ("rejected", 0) and "closed" in error.message
    assert server.total_received == 10


def test_send_state_is_sans_io():
    """SendState alone: the handshake frames, the probe, the priced money packet, the close."""
    state = SendState(1000, source_address="test.me", destination="test.you", source_asset=("USD", 2))
    hello = state.next()
    assert isinstance(hello, Send) and hello.amount == 0 and not hello.fulfillable
    assert hello.packet.frames[:2] == (ConnectionNewAddress("test.me"), ConnectionAssetDetails("USD", 2))
    state.rejected("F99", b"", StreamPacket(1, PACKET_TYPE_REJECT, 0, (ConnectionAssetDetails("EUR", 4),)))
    assert state.destination_asset == ("EUR", 4)
    probe = state.next()
    assert (probe.amount, probe.fulfillable, probe.packet.sequence) == (1000, False, 2)
    state.rejected("F99", b"", StreamPacket(2, PACKET_TYPE_REJECT, 2000))
    assert state.exchange_rate == 2
    money = state.next()
    assert (money.amount, money.fulfillable, money.packet.prepare_amount) == (1000, True, 1980)
    assert money.packet.frames == (StreamMoney(1, 1),)
    state.fulfilled(None)  # unreadable reply: count what the receiver had to accept
    assert (state.counters.sent, state.counters.delivered) == (1000, 1980)
    close = state.next()
    assert close.packet.frames == (StreamClose(1, 1), ConnectionClose(1))
    state.rejected("F99", b"", None)
    assert state.next() is None and state.done and state.result.delivered == 1980
