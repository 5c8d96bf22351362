"""The STREAM sender's window (several money packets in flight): it starts at 1, grows on
Fulfills, halves once per loss on T04 / R-codes, keeps its packet size rule on F08, stays within
the receiver's StreamMaxMoney counting what is in flight, and is exact to the unit under random
rejects. Sans-IO on SendState, plus the Twisted driver against our StreamServer on task.Clock
through an in-test connector that answers later (so packets really are in flight together)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from twisted.internet.task import Clock, deferLater

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import AmountTooLargeData, Reject, decode_prepare, encode_packet
from ilptx.codec.stream import PACKET_TYPE_FULFILL, PACKET_TYPE_REJECT, StreamMaxMoney, StreamPacket
from ilptx.stream.sender import DEFAULT_MAX_IN_FLIGHT, HOLD, PaymentResult, Send, SendState, Wait, send_payment
from ilptx.stream.server import StreamServer
from ilptx.testing import linked_plugins


def money_state(amount=10_000, max_packet=100, **kwargs) -> SendState:
    """A SendState past its handshake and rate probe (rate 1), about to send money."""
    state = SendState(amount, source_address="test.me", destination="test.you", max_packet_amount=max_packet,
                      **kwargs)
    state.rejected("F99", b"", StreamPacket(state.next().packet.sequence, PACKET_TYPE_REJECT, 0))
    probe = state.next()
    state.rejected("F99", b"", StreamPacket(probe.packet.sequence, PACKET_TYPE_REJECT, probe.amount))
    return state


def fill(state) -> list:
    """Every Send next() gives until it holds."""
    sends = []
    while True:
        action = state.next()
        if action is HOLD:
            return sends
        assert isinstance(action, Send), action
        sends.append(action)


def fulfill(state, send, frames=()):
    state.fulfilled(StreamPacket(send.packet.sequence, PACKET_TYPE_FULFILL, send.amount, tuple(frames)), send)


def test_window_starts_at_one_and_grows_by_one_per_fulfill():
    """One money packet first; each Fulfill lets one more out (1, 2, 4, 8 a round), up to the cap."""
    state = money_state(max_in_flight=6)
    rounds = []
    for _ in range(5):
        sends = fill(state)
        rounds.append(len(sends))
        for send in sends:
            fulfill(state, send)
    assert rounds == [1, 2, 4, 6, 6]
    assert state.packets_window == 6


def test_t04_halves_the_window_once_per_loss():
    """A T04 halves the window; the T04s of packets already in flight do not cut it again."""
    state = money_state(liquidity_timeout=60)
    for _ in range(4):
        for send in fill(state):
            fulfill(state, send)
    sends = fill(state)
    assert len(sends) == state.packets_window == 16
    for send in sends:
        state.rejected("T04", b"", None, "no liquidity", send)
    assert state.packets_window == 8
    assert isinstance(state.next(), Wait)  # one back-off, after all of them answered
    assert state.counters.sent == 15 * 100 and state.error is None
    retry = state.next()
    assert retry.amount == 50  # the packet size halves too, as with one in flight
    assert len(fill(state)) == 7  # the window of 8 is full


def test_t04_backs_off_only_once_the_packets_in_flight_answered():
    """While packets are in flight, a T04's back-off waits (HOLD), then comes as one Wait."""
    state = money_state(liquidity_timeout=60)
    first = fill(state)
    fulfill(state, first[0])
    a, b = fill(state)
    state.rejected("T04", b"", None, "", a)
    assert state.next() is HOLD
    fulfill(state, b)
    assert isinstance(state.next(), Wait)


def test_r_code_halves_the_window_and_counts_one_try_per_loss():
    """R00 on a whole window halves it once and is one strike, not sixteen (no timeout error)."""
    state = money_state()
    for _ in range(4):
        for send in fill(state):
            fulfill(state, send)
    for send in fill(state):
        state.rejected("R00", b"", None, "expired", send)
    assert state.packets_window == 8 and state.error is None
    assert isinstance(state.next(), Wait)


def test_f08_shrinks_the_packet_not_the_window():
    """F08 on packets in flight scales the packet size down; the window keeps its size."""
    state = money_state(max_packet=None)
    first = fill(state)
    assert [s.amount for s in first] == [10_000]
    state.rejected("F08", AmountTooLargeData(10_000, 1_000).encode(), None, "too large", first[0])
    sends = fill(state)
    assert [s.amount for s in sends] == [1_000]
    fulfill(state, sends[0])
    sends = fill(state)
    assert [s.amount for s in sends] == [1_000, 1_000]
    for send in sends:
        state.rejected("F08", AmountTooLargeData(1_000, 400).encode(), None, "too large", send)
    assert state.packets_window == 2 and state.max_packet_amount == 400
    assert [s.amount for s in fill(state)] == [400, 400]


def test_the_receivers_limit_counts_the_packets_in_flight():
    """With StreamMaxMoney room for 250 and a window of 8, it sends 100 + 100 + 49, never past it."""
    state = money_state()
    for _ in range(2):
        for send in fill(state):
            fulfill(state, send)
    *rest, last = fill(state)
    assert len(rest) == 3 and state.packets_window == 4
    for send in rest:
        fulfill(state, send)
    fulfill(state, last, [StreamMaxMoney(1, 1050, 800)])  # room: 250; the window is now 8
    assert state.packets_window == 8
    sends = fill(state)
    assert [s.amount for s in sends] == [100, 100, 49]  # each packet in flight counts (+1 for rounding)
    assert state.next() is HOLD and state.error is None


def test_a_full_receiver_stops_the_payment_after_the_packets_in_flight():
    """Once the receiver has no room and nothing is in flight, the payment fails as before."""
    state = money_state()
    (send,) = fill(state)
    fulfill(state, send, [StreamMaxMoney(1, 200, 100)])
    assert [s.amount for s in fill(state)] == [100]  # then no room for a second one
    (send,) = state._flights.values()
    fulfill(state, send.send, [StreamMaxMoney(1, 200, 200)])
    assert type(state.next().packet.frames[-1]).__name__ == "ConnectionClose"
    assert state.error is not None and state.error.kind == "rejected" and state.error.sent == 200


def test_late_fulfills_after_a_failure_are_counted():
    """An F02 ends the payment; Fulfills of packets still in flight count in the error's sent."""
    state = money_state()
    fulfill(state, fill(state)[0])
    a, b = fill(state)
    state.rejected("F02", b"", None, "no route", a)
    assert state.next() is HOLD
    fulfill(state, b)
    close = state.next()
    assert not close.fulfillable
    state.rejected("F99", b"", None, "", close)
    assert state.next() is None and state.error.kind == "no-route" and state.error.sent == 200


def test_max_in_flight_must_be_a_positive_int():
    """max_in_flight=0 is refused at once; 1 keeps one packet in flight (next() insists)."""
    with pytest.raises(ValueError, match="max_in_flight"):
        SendState(100, source_address="a", destination="b", max_in_flight=0)
    state = money_state(max_in_flight=1)
    state.next()
    with pytest.raises(RuntimeError):
        state.next()


def test_data_keeps_one_packet_in_flight():
    """With data the sender is not windowed (one packet at a time, as before)."""
    state = SendState(100, source_address="a", destination="b", data=b"x")
    assert not state.windowed and state.max_in_flight == DEFAULT_MAX_IN_FLIGHT


@pytest.mark.parametrize("seed", range(20))
def test_exact_to_the_unit_under_random_rejects(seed):
    """Random T04 / R00 / F99 / lost packets, answered out of order: every unit is fulfilled
    exactly once, no packet is sent beyond the amount, the window stays within 1..cap."""
    rng = random.Random(seed)
    amount = rng.randrange(1, 50_000)
    state = money_state(amount, max_packet=rng.randrange(1, 3_000), liquidity_timeout=10**9)
    in_flight: list = []
    fulfilled_total = 0
    for _ in range(100_000):
        action = state.next()
        if action is None:
            break
        if isinstance(action, Send) and not action.fulfillable:  # the close, once the money is done
            assert not in_flight
            state.rejected("F99", b"", None, "", action)
            continue
        if isinstance(action, Send):
            in_flight.append(action)
            assert sum(s.amount for s in in_flight) + fulfilled_total <= amount
            continue
        # HOLD or Wait: answer one packet in flight, chosen at random
        assert in_flight or isinstance(action, Wait)
        if not in_flight:
            continue
        assert 1 <= state.packets_window <= DEFAULT_MAX_IN_FLIGHT
        send = in_flight.pop(rng.randrange(len(in_flight)))
        roll = rng.random()
        if roll < 0.6:
            fulfill(state, send)
            fulfilled_total += send.amount
        elif roll < 0.75:
            state.rejected("T04", b"", None, "", send)
        elif roll < 0.85:
            state.rejected("F99", b"", StreamPacket(send.packet.sequence, PACKET_TYPE_REJECT, send.amount), "", send)
        elif roll < 0.95:
            state.rejected("R00", b"", None, "", send)
        else:
            state.no_response("timeout", "lost", send)
    assert state.error is None, state.error
    assert state.result is not None
    assert fulfilled_total == state.counters.sent == state.result.sent == amount


# -- the driver, against our StreamServer -------------------------------------------------------------


def delayed_net(max_packet=100_000, receive_max=None, latency=0.01):
    """(payer plugin, server, stats, clock): a connector that forwards each Prepare to the shop's
    StreamServer ``latency`` seconds later (F08 above ``max_packet``); ``stats`` has the most
    Prepares it held at once and every amount it forwarded."""
    clock = Clock()
    shop, connector_shop = linked_plugins("shop", "connector-shop")
    connector_shop.register_data_handler(
        lambda data: encode_packet(response_fulfill(IldcpResponse("test.conn.shop", 6, "USD"))))
    connector_shop.connect()
    server = StreamServer(shop, clock, server_secret=b"\x05" * 32, receive_max=receive_max)
    server.connect()
    payer, connector_payer = linked_plugins("payer", "connector-payer")
    stats = {"held": 0, "most": 0, "forwarded": []}

    def forward(data):
        stats["held"] -= 1
        prepare = decode_prepare(data)
        if prepare.amount > max_packet:
            return encode_packet(Reject("F08", "test.conn", "too large",
                                        AmountTooLargeData(prepare.amount, max_packet).encode()))
        stats["forwarded"].append(prepare.amount)
        return connector_shop.send_data(encode_packet(replace(prepare, amount=prepare.amount)))

    def handle(data):
        stats["held"] += 1
        stats["most"] = max(stats["most"], stats["held"])
        return deferLater(clock, latency, forward, data)

    connector_payer.register_data_handler(handle)
    connector_payer.connect()
    payer.connect()
    return payer, server, stats, clock


def run(payer, server, clock, amount, **kwargs):
    credentials = server.generate_address_and_secret()
    outcome = []
    send_payment(payer, credentials.destination_account, credentials.shared_secret, amount, clock=clock,
                 source_address="test.conn.payer", source_asset=("USD", 6), **kwargs).addBoth(outcome.append)
    for _ in range(100_000):
        if outcome:
            break
        clock.advance(0.01)
    assert outcome, "the payment did not finish"
    return outcome[0]


def test_driver_fills_the_window_and_delivers_every_unit():
    """10^7 units at 100,000 a packet: 16 Prepares in flight at once, exactly 10^7 received."""
    payer, server, stats, clock = delayed_net()
    result = run(payer, server, clock, 10**7)
    assert isinstance(result, PaymentResult), result
    assert result.sent == result.delivered == server.total_received == 10**7
    assert stats["most"] == DEFAULT_MAX_IN_FLIGHT
    money = [a for a in stats["forwarded"] if a and a != 1000]
    assert sum(money) == 10**7 and max(money) == 100_000


def test_driver_with_max_in_flight_one_keeps_one_in_flight():
    """max_in_flight=1: never two Prepares held at once (the reference's behaviour)."""
    payer, server, stats, clock = delayed_net()
    result = run(payer, server, clock, 10**6, max_in_flight=1)
    assert result.sent == server.total_received == 10**6 and stats["most"] == 1


def test_driver_stops_at_the_receivers_limit_with_packets_in_flight():
    """A receiver that takes 1,234,567 of 10^7: it gets exactly that, and the payment fails."""
    payer, server, stats, clock = delayed_net(receive_max=1_234_567)
    error = run(payer, server, clock, 10**7).value
    assert error.kind == "rejected"
    assert server.total_received == error.sent == 1_234_567
