"""STREAM sender (RFC 29): pays a fixed source amount to a STREAM receiver over a ledger plugin.

Two parts, as the house style asks:

* :class:`SendState`, sans-IO: it decides the next STREAM packet (its source amount, its
  ``prepare_amount`` -- the least the receiver may accept -- its frames, whether it is
  fulfillable) and reacts to each Fulfill or Reject. No clock, no plugin, no crypto.
* :func:`send_payment`, the Twisted driver: encrypts the packets, sends the Prepares with the
  plugin, waits (on the injected clock) when the state asks it to, and fires with a
  :class:`PaymentResult` or fails with :class:`StreamPaymentError`.

What happens on the wire, one packet in flight at a time:

1. **Handshake**: an unfulfillable Prepare of 0 carrying ``ConnectionNewAddress`` (our
   address) and ``ConnectionAssetDetails`` (our asset). Its ``F99`` reply (encrypted) tells us
   the receiver's asset.
2. **Rate probe**: unfulfillable test packets (1000 first, larger if nothing arrives, smaller
   after ``F08``/``T04``); the receiver's ``F99`` reply says how much arrived, so
   ``rate = arrived / sent`` (a :class:`~decimal.Decimal`). Below ``min_exchange_rate``: error
   ``rate``.
3. **Money**: fulfillable Prepares with ``StreamMoney(1, 1)`` and
   ``prepare_amount = floor(amount * rate * (1 - slippage))``. The packet amount starts at the
   whole amount (or ``max_packet_amount``), halves on ``T04`` (with a growing delay), is scaled
   down to fit on ``F08`` (``amount * maximum // received``), and doubles back after each
   Fulfill, never above the largest amount known to pass. The receiver's ``StreamMaxMoney``
   caps what we send; a receiver that is full, or closes, ends the payment with an error.
4. **Data** (``data=``): the bytes go on stream 1 in ``StreamData`` frames of at most
   ``data_chunk_size`` bytes, riding on the money packets and then on fulfillable Prepares of
   0, one packet in flight, never beyond the receiver's advertised ``StreamMaxData`` (16384
   until it says otherwise, as ``ilp-protocol-stream``; its latest word, in a Fulfill's or an
   ``F99``'s reply, even if smaller) and ``ConnectionMaxData``. A packet's
   bytes count as delivered only when it is fulfilled; a rejected packet's bytes are sent
   again (as ``ilp-protocol-stream``). When blocked we send ``StreamDataBlocked`` /
   ``ConnectionDataBlocked`` on a packet of 0 and back off while the window does not open.
5. **Close**: an unfulfillable Prepare of 0 carrying ``StreamClose(1, NoError)`` and
   ``ConnectionClose(NoError)``; its answer is not awaited for the result.

Error kinds (:attr:`StreamPaymentError.kind`): ``no-route`` (F02), ``too-large`` (F08 that
cannot be shrunk), ``liquidity`` (T04 for ``liquidity_timeout`` seconds of retries), ``rate``
(the rate is below the minimum, or nothing arrives), ``rejected`` (any other final rejection,
the receiver's limit, a close), ``timeout`` (no answer, or R-errors that persist),
``unreachable`` (the plugin fails, T01).

6. **Several streams** (``streams=``): as above, with a ``StreamMoney`` frame per stream that
   still needs money (shares: that stream's part of the packet) and each stream's data in its
   own ``StreamData`` frames; a stream the receiver's ``StreamMaxMoney`` stops is left behind
   while the others go on; a finished stream gets its ``StreamClose`` on the next packet.

7. **The window** (money-only payments on one stream, ``max_in_flight`` > 1): several money
   packets in flight at once, like TCP's congestion window counted in packets. It **starts** at
   1 packet, **grows** by 1 on each fulfilled money packet (so it doubles per round trip), up
   to its **cap** ``max_in_flight`` (default :data:`DEFAULT_MAX_IN_FLIGHT`, 16 packets), and
   **halves** (never below 1) on T04, on an R-code, on another T-error and on a Prepare with no
   answer -- once per loss: rejects of packets sent before the last cut do not cut it again,
   nor count as another try or another back-off. On F08 the packet *size* shrinks as above
   (the window does not). Each packet's source amount is taken from the unsent pool when it is
   sent; a Fulfill moves it to ``sent``, a Reject (or no answer) returns it to the pool, so
   every unit is sent once and the payment never overshoots its amount. The receiver's limit
   (``StreamMaxMoney``, the latest reply with the most received) counts the packets in
   flight: no packet is sent that, with those in flight, would pass ``receive_max``. A back-off
   (T04 and the other T-errors, R-codes) waits until the packets in flight have answered. With
   data, several streams or ``max_in_flight=1`` it keeps one packet in flight, as
   ``ilp-protocol-stream`` 2.7.1 does.

Not done (yet): several packets in flight with data or several streams, receipts, streams the receiver opens,
a connection idle timeout, re-sending after a Prepare whose outcome is unknown (a timed-out
packet is counted as not sent, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Callable, Optional, Union

from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred
from twisted.logger import Logger

from ilptx.codec.ilp import AmountTooLargeData, Fulfill, Prepare, Reject, decode_prepare, decode_response
from ilptx.codec.ilp import encode_packet, timestamp_at
from ilptx.codec.oer import UINT64_MAX, DecodeError
from ilptx.codec.stream import (
    PACKET_TYPE_PREPARE,
    PACKET_TYPE_REJECT,
    ConnectionAssetDetails,
    ConnectionClose,
    ConnectionDataBlocked,
    ConnectionMaxData,
    ConnectionNewAddress,
    ErrorCode as StreamErrorCode,
    StreamClose,
    StreamData,
    StreamDataBlocked,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
    StreamPacket,
)
from ilptx.core.ildcp import fetch_config
from ilptx.stream import crypto

__all__ = [
    "PaymentResult",
    "StreamPaymentError",
    "Send",
    "Wait",
    "SendState",
    "send_payment",
    "STREAM_ID",
    "DEFAULT_SLIPPAGE",
    "DEFAULT_LIQUIDITY_TIMEOUT",
    "PACKET_EXPIRY_SECONDS",
    "DEFAULT_MAX_IN_FLIGHT",
    "HOLD",
]

#: The one stream the sender uses (client-initiated streams are odd).
STREAM_ID = 1
#: How far below the probed rate a packet may deliver before the receiver must reject it.
DEFAULT_SLIPPAGE = Decimal("0.01")
#: A Prepare's expiry, from now.
PACKET_EXPIRY_SECONDS = 30.0
#: First test packet; multiplied by 1000 while nothing arrives, up to :data:`_PROBE_LIMIT`.
_PROBE_START = 1000
_PROBE_LIMIT = 10**12
#: Back-off after T-errors: first delay, factor, cap (seconds).
_RETRY_DELAY = 0.1
_RETRY_FACTOR = 2
_RETRY_DELAY_MAX = 5.0
#: Seconds of back-off the sender spends on T04 (Insufficient Liquidity) since the last
#: Fulfill before it gives up with ``liquidity``. ``ilp-protocol-stream`` 2.7.1 retries T04
#: without a count (its delay doubles from 100 ms), until ``sendTotal``'s 60 s timeout; a
#: balance that is at its limit seldom frees itself that soon, so we stop after 5 s.
DEFAULT_LIQUIDITY_TIMEOUT = 5.0
#: Consecutive failures of one kind tolerated before giving up.
_MAX_T_OTHER = 5
_MAX_R = 3
_MAX_NO_RESPONSE = 3
_MAX_F99 = 5
#: The window's cap: money packets in flight at once (see the module docstring, item 7).
DEFAULT_MAX_IN_FLIGHT = 16
#: Largest ``StreamData`` payload per packet.
DATA_CHUNK_SIZE = 1000
#: What a receiver's stream accepts until it advertises more (as ``ilp-protocol-stream``).
_INITIAL_STREAM_MAX_DATA = 16384
_MAX_BLOCKED = 10


@dataclass(frozen=True)
class PaymentResult:
    """What a finished payment did.

    :ivar sent: source units fulfilled.
    :ivar delivered: destination units the receiver reported (its ``prepare_amount`` replies).
    :ivar packets: Prepares sent (handshake, probes, money, close).
    :ivar fulfilled: Prepares fulfilled.
    :ivar rejected: Prepares rejected (probes included: they are rejected on purpose).
    :ivar exchange_rate: destination units per source unit, as probed; ``None`` if not probed.
    """

    sent: int
    delivered: int
    packets: int
    fulfilled: int
    rejected: int
    exchange_rate: Optional[Decimal]
    source_address: str
    destination: str
    data_sent: int = 0
    #: per stream: ``stream_id -> (sent, delivered, data_sent)`` (source units fulfilled, the
    #: destination units the receiver credited to it, bytes acknowledged)
    streams: dict = field(default_factory=dict)


class StreamPaymentError(Exception):
    """A payment that could not finish.

    :ivar kind: ``no-route``, ``too-large``, ``liquidity``, ``rate``, ``rejected``, ``timeout``
        or ``unreachable``.
    :ivar sent: source units fulfilled before the failure.
    :ivar delivered: destination units delivered before the failure.
    :ivar code: the ILP error code behind it, if any.
    """

    KINDS = ("no-route", "too-large", "liquidity", "rate", "rejected", "timeout", "unreachable")

    def __init__(self, kind: str, message: str, sent: int = 0, delivered: int = 0,
                 code: Optional[str] = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.sent = sent
        self.delivered = delivered
        self.code = code

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.kind}{code}: {self.message} (sent {self.sent}, delivered {self.delivered})"


@dataclass(frozen=True)
class Send:
    """Send ``packet`` in a Prepare of ``amount``; fulfillable or a test packet."""

    amount: int
    packet: StreamPacket
    fulfillable: bool
    expiry: float = PACKET_EXPIRY_SECONDS


@dataclass(frozen=True)
class Wait:
    """Wait ``seconds``, then ask again."""

    seconds: float


class _Hold:
    """Send nothing now: wait for the outcome of a packet in flight, then ask again."""

    def __repr__(self) -> str:
        return "HOLD"


#: What :meth:`SendState.next` returns while the window is full (or a back-off waits for the
#: packets in flight to answer).
HOLD = _Hold()


@dataclass
class _Flight:
    """A packet in flight: what was sent, its money split, the phase it was sent in."""

    send: Send
    split: dict
    phase: str


@dataclass
class _Counters:
    sent: int = 0
    delivered: int = 0
    packets: int = 0
    fulfilled: int = 0
    rejected: int = 0


@dataclass
class _Stream:
    """What the sender knows of one of its streams."""

    id: int
    amount: int
    data: bytes
    sent: int = 0
    delivered: int = 0
    #: source units in packets in flight (taken from the unsent pool)
    pending: int = 0
    #: bytes of :attr:`data` the receiver has acknowledged (fulfilled packets)
    acked: int = 0
    #: bytes in the packet in flight
    in_flight: int = 0
    #: the receiver's advertised ``StreamMaxData`` (the highest offset it accepts)
    max_data: int = _INITIAL_STREAM_MAX_DATA
    #: the receiver's ``StreamMaxMoney``: ``(receive_max, total_received)``
    limit: Optional[tuple] = None
    #: the receiver's limit stopped this stream's money before its amount
    limited: bool = False
    close_sent: bool = False

    @property
    def money_left(self) -> int:
        return 0 if self.limited else self.amount - self.sent

    @property
    def done(self) -> bool:
        return self.money_left <= 0 and self.acked >= len(self.data)


def _split(amount: int, caps: dict) -> dict:
    """Split ``amount`` (at most ``sum(caps)``) in proportion to ``caps``, largest remainders
    first, so no part exceeds its cap and the parts add up to ``amount``."""
    if len(caps) == 1:
        return {sid: amount for sid in caps}
    total = sum(caps.values())
    parts = {sid: amount * cap // total for sid, cap in caps.items()}
    rest = amount - sum(parts.values())
    for sid in sorted(caps, key=lambda sid: (-(amount * caps[sid] % total), sid))[:rest]:
        parts[sid] += 1
    return parts


def _check_streams(streams: dict) -> dict:
    """Validate ``send_payment``'s ``streams``; :returns: ``{id: _Stream}`` in id order."""
    if not isinstance(streams, dict) or not streams:
        raise ValueError("streams must be a non-empty dict {stream_id: {'amount': int, 'data': bytes}}")
    out = {}
    for sid in sorted(streams):
        spec = streams[sid]
        if not isinstance(sid, int) or isinstance(sid, bool) or sid < 1 or sid % 2 == 0 or sid > UINT64_MAX:
            raise ValueError(f"stream ids of the sender (the client) are odd positive integers (RFC 29), "
                             f"got {sid!r}")
        if not isinstance(spec, dict) or set(spec) - {"amount", "data"}:
            raise ValueError(f"stream {sid}: expected a dict with 'amount' and/or 'data', got {spec!r}")
        amount = spec.get("amount", 0)
        data = spec.get("data") or b""
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= UINT64_MAX:
            raise ValueError(f"stream {sid}: amount must be a UInt64, got {amount!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"stream {sid}: data must be bytes, got {type(data).__name__}")
        if amount == 0 and not data:
            raise ValueError(f"stream {sid} has neither money nor data to send")
        out[sid] = _Stream(sid, amount, bytes(data))
    if sum(s.amount for s in out.values()) > UINT64_MAX:
        raise ValueError("the streams' amounts add up to more than a UInt64")
    return out


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


class SendState:
    """The sans-IO sender of one payment.

    Drive it: ``action = state.next()`` gives a :class:`Send`, a :class:`Wait`, :data:`HOLD`
    (the window is full: wait for an outcome) or ``None`` when finished (then :attr:`result` or
    :attr:`error` is set). For each :class:`Send`, report exactly one of :meth:`fulfilled`,
    :meth:`rejected` or :meth:`no_response`, passing it as ``sent=`` when several are in flight.
    With one packet in flight (:attr:`windowed` false), :meth:`next` raises ``RuntimeError``
    until its outcome is reported.

    :param amount: source units to send (> 0).
    :param source_address: our ILP address (sent in ``ConnectionNewAddress``).
    :param destination: the receiver's address.
    :param source_asset: ``(code, scale)`` or ``None``.
    :param min_exchange_rate: fail with ``rate`` below this (destination per source unit).
    :param max_packet_amount: never send a bigger Prepare.
    :param slippage: see :data:`DEFAULT_SLIPPAGE`.
    :param data: bytes to send on stream 1 (then ``amount`` may be 0: data only, no probe).
    :param data_chunk_size: the largest ``StreamData`` payload per packet (and stream).
    :param liquidity_timeout: seconds (>= 0) to keep retrying while the path answers T04:
        the back-off waits since the last Fulfill (0.1 s, doubling up to 5 s) add up to at most
        this; the T04 after that ends the payment with ``liquidity`` (round trips are not
        counted). Default :data:`DEFAULT_LIQUIDITY_TIMEOUT`.
    :param streams: ``{stream_id: {"amount": int, "data": bytes}}`` (odd ids: we are the
        client) to send on several streams; it replaces ``amount`` (pass 0, ``None`` or the
        total) and ``data``. Each money packet carries a ``StreamMoney`` frame per stream that
        still needs money, its shares being that stream's part of the packet, split in
        proportion to what each stream still needs (and may still receive, by its
        ``StreamMaxMoney``); a stream whose receiver limit is reached stops getting shares while
        the others go on (the payment fails only if no stream could be paid in full). Each
        stream's data goes in its own ``StreamData`` frames within its ``StreamMaxData`` and the
        connection's ``ConnectionMaxData``. A stream whose money and data are done is closed
        (``StreamClose``) on the next packet.
    :param max_in_flight: the window's cap, in money packets in flight (>= 1; default
        :data:`DEFAULT_MAX_IN_FLIGHT`); used for money-only payments on one stream (see the
        module docstring, item 7), else one packet is in flight.
    """

    def __init__(self, amount: Optional[int], *, source_address: str, destination: str,
                 source_asset: Optional[tuple] = None, min_exchange_rate: Optional[Decimal] = None,
                 max_packet_amount: Optional[int] = None, slippage: Decimal = DEFAULT_SLIPPAGE,
                 data: Optional[bytes] = None, data_chunk_size: int = DATA_CHUNK_SIZE,
                 streams: Optional[dict] = None, liquidity_timeout: float = DEFAULT_LIQUIDITY_TIMEOUT,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        #: ``callable(stream_id, data)`` for ``StreamData`` frames in the receiver's replies
        self.on_data: Optional[Callable] = None
        if streams is not None:
            if data:
                raise ValueError("give the data in streams, not data=, when streams is given")
            self.streams = _check_streams(streams)
            total = sum(st.amount for st in self.streams.values())
            if amount not in (None, 0, total):
                raise ValueError(f"amount ({amount!r}) differs from the streams' total ({total})")
            amount = total
        else:
            data = bytes(data or b"")
            if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= UINT64_MAX \
                    or (amount == 0 and not data):
                raise ValueError(f"amount must be a positive UInt64 (or 0 with data), got {amount!r}")
            #: our streams by id (just :data:`STREAM_ID` unless ``streams`` is given)
            self.streams = {STREAM_ID: _Stream(STREAM_ID, amount, data)}
        if data_chunk_size < 1:
            raise ValueError("data_chunk_size must be at least 1")
        self.data_chunk_size = data_chunk_size
        #: the receiver's advertised ``ConnectionMaxData``
        self.remote_connection_max_data = _INITIAL_STREAM_MAX_DATA
        if not isinstance(max_in_flight, int) or isinstance(max_in_flight, bool) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        self.max_in_flight = max_in_flight
        #: several money packets in flight (money only, one stream), else one packet
        self.windowed = max_in_flight > 1 and len(self.streams) == 1 and not self.data
        #: the congestion window: money packets that may be in flight now (1 .. max_in_flight)
        self.packets_window = 1
        #: the highest sequence sent when the window was last cut: older packets' losses are
        #: the same loss
        self._recovery = 0
        #: the streams whose StreamClose is in the packet in flight
        self._closes_in_flight: list = []
        if max_packet_amount is not None and max_packet_amount < 1:
            raise ValueError("max_packet_amount must be at least 1")
        if not liquidity_timeout >= 0:
            raise ValueError(f"liquidity_timeout must be a number of seconds >= 0, got {liquidity_timeout!r}")
        self.liquidity_timeout = float(liquidity_timeout)
        #: back-off spent on T04 since the last Fulfill (seconds)
        self._liquidity_waited = 0.0
        self.amount = amount
        self.source_address = source_address
        self.destination = destination
        self.source_asset = source_asset
        self.min_exchange_rate = None if min_exchange_rate is None else Decimal(min_exchange_rate)
        self.slippage = Decimal(slippage)
        self.counters = _Counters()
        self.exchange_rate: Optional[Decimal] = None
        self.destination_asset: Optional[tuple] = None
        #: largest amount believed to pass the path (from F08, or the caller)
        self.max_packet_amount = max_packet_amount if max_packet_amount is not None else UINT64_MAX
        #: the congestion window: the next money packet's amount, at most
        self.window = min(amount, self.max_packet_amount)
        self.result: Optional[PaymentResult] = None
        self.error: Optional[StreamPaymentError] = None
        self._phase = "handshake"
        self._sequence = 0
        self._probe = min(_PROBE_START, self.max_packet_amount)
        self._delay = 0.0
        self._retry_delay = _RETRY_DELAY
        self._expiry = PACKET_EXPIRY_SECONDS
        self._strikes: dict[str, int] = {}
        #: the packets in flight, by STREAM sequence
        self._flights: dict[int, _Flight] = {}
        self._minimum_cache: tuple = (None, 0)
        self._pending_error: Optional[StreamPaymentError] = None

    # -- per-stream views, for the single-stream callers ---------------------------------------------

    @property
    def data(self) -> bytes:
        """All the data to send (every stream's, in id order)."""
        return b"".join(st.data for st in self.streams.values())

    @property
    def data_acked(self) -> int:
        """Bytes the receiver has acknowledged, on all streams."""
        return sum(st.acked for st in self.streams.values())

    @property
    def remote_limit(self) -> Optional[tuple]:
        """What the receiver last said of the first stream: ``(receive_max, total_received)``."""
        return next(iter(self.streams.values())).limit

    @property
    def remote_stream_max_data(self) -> int:
        """The first stream's advertised ``StreamMaxData``."""
        return next(iter(self.streams.values())).max_data

    # -- what to do next ------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the payment is over (:attr:`result` or :attr:`error` is set)."""
        return self._phase == "done"

    def next(self) -> Union[Send, Wait, None]:
        """:returns: the next action, or ``None`` when done."""
        if self._phase == "done":
            return None
        if self._flights:
            if not self.windowed:
                raise RuntimeError("report the outcome of the packet in flight first")
            if self._phase != "send" or self._delay or len(self._flights) >= self.packets_window:
                return HOLD
        if self._delay:
            delay, self._delay = self._delay, 0.0
            return Wait(delay)
        if self._phase == "handshake":
            frames = [ConnectionNewAddress(self.source_address)]
            if self.source_asset is not None:
                frames.append(ConnectionAssetDetails(*self.source_asset))
            frames.append(ConnectionMaxData(UINT64_MAX))
            return self._send(0, 0, frames, fulfillable=False)
        if self._phase == "probe":
            return self._send(self._probe, 0, [], fulfillable=False)
        if self._phase == "send":
            caps = self._money_caps()
            if caps is None:
                return self.next()  # _money_caps failed the payment
            if not caps and self._flights:
                return HOLD  # the rest is in flight (or waits for room at the receiver)
            if not caps:
                self._phase = "data"
                return self.next()
            amount = min(sum(caps.values()), self.window, self.max_packet_amount)
            split = {sid: part for sid, part in _split(amount, caps).items() if part > 0}
            money = [StreamMoney(sid, 1 if len(split) == 1 else part) for sid, part in split.items()]
            if not self.windowed:  # (windowed: one stream, no data, not done while it sends money)
                money += self._data_frames() + self._stream_closes()
            return self._send(amount, self._minimum_destination(amount), money, fulfillable=True, split=split)
        if self._phase == "data":
            if all(st.acked >= len(st.data) for st in self.streams.values()):
                self._phase = "close"
                return self.next()
            return self._send(0, 0, self._data_frames(blocked_frames=True) + self._stream_closes(),
                              fulfillable=True)
        # close
        return self._send(0, 0, self._stream_closes(every=True) + [ConnectionClose(StreamErrorCode.NO_ERROR)],
                          fulfillable=False)

    def _send(self, amount: int, prepare_amount: int, frames: list, *, fulfillable: bool,
              split: Optional[dict] = None) -> Send:
        split = split or {}
        for sid, part in split.items():
            self.streams[sid].pending += part
        self._sequence += 1
        self.counters.packets += 1
        packet = StreamPacket(self._sequence, PACKET_TYPE_PREPARE, prepare_amount, tuple(frames))
        send = Send(amount, packet, fulfillable, self._expiry)
        self._flights[self._sequence] = _Flight(send, split, self._phase)
        return send

    def _stream_closes(self, every: bool = False) -> list:
        """``StreamClose`` for the streams that are done (``every``: all) and not yet closed."""
        self._closes_in_flight = [st.id for st in self.streams.values()
                                  if not st.close_sent and (every or st.done)]
        return [StreamClose(sid, StreamErrorCode.NO_ERROR) for sid in self._closes_in_flight]

    def _data_frames(self, blocked_frames: bool = False) -> list:
        """The next ``StreamData`` frame of each stream within the receiver's windows (and, when
        no stream can send and ``blocked_frames``, the ``...DataBlocked`` frames instead)."""
        frames: list = []
        blocked: list = []
        connection_room = self.remote_connection_max_data - self.data_acked
        for st in self.streams.values():
            if st.acked >= len(st.data):
                continue
            size = min(self.data_chunk_size, len(st.data) - st.acked, st.max_data - st.acked, connection_room)
            if size <= 0:
                blocked.append(st)
                continue
            st.in_flight = size
            connection_room -= size
            frames.append(StreamData(st.id, st.acked, st.data[st.acked:st.acked + size]))
        if frames or not blocked_frames:
            return frames
        frames = [StreamDataBlocked(st.id, len(st.data)) for st in blocked]
        if connection_room <= 0:
            frames.append(ConnectionDataBlocked(sum(len(st.data) for st in self.streams.values())))
        return frames

    def _minimum_destination(self, amount: int) -> int:
        key = (amount, self.exchange_rate)
        if self._minimum_cache[0] != key:  # most packets have the same amount
            self._minimum_cache = (key, max(0, _floor(amount * self.exchange_rate * (1 - self.slippage))))
        return self._minimum_cache[1]

    def _money_caps(self) -> Optional[dict]:
        """What each stream that still needs money may get: its need, less if the receiver's
        ``StreamMaxMoney`` leaves less room. A stream with no room left stops (``limited``).

        :returns: ``{stream_id: source units}`` (empty: the money is done), or ``None`` when
            the payment failed (no stream could be paid in full)."""
        caps = {}
        for st in self.streams.values():
            if st.money_left - st.pending <= 0:
                continue
            cap = st.money_left - st.pending
            if st.limit is not None:
                receive_max, total_received = st.limit
                room = receive_max - total_received
                if st.pending and self.exchange_rate:
                    # what is in flight may fill the room: count it (in destination units)
                    room -= _floor(st.pending * self.exchange_rate) + 1
                    if room <= 0:
                        continue  # wait for the packets in flight
                if room <= 0 or (self.exchange_rate or 0) <= 0:
                    message = (f"the receiver accepts no more on stream {st.id} "
                               f"(its limit is {receive_max}, it has received {total_received})")
                    cap = 0
                else:
                    # the largest source amount whose delivery (at the probed rate) fits in the room
                    cap = min(cap, _floor(Decimal(room) / self.exchange_rate))
                    message = f"the receiver's remaining limit ({room}) is less than one source unit"
                if cap < 1 and st.pending:
                    continue  # not yet: the packets in flight may be refused
                if cap < 1:
                    st.limited = True
                    if all(s.limited for s in self.streams.values() if s.amount):
                        self._fail("rejected", message)
                        return None
                    continue
            caps[st.id] = cap
        return caps

    # -- outcomes ---------------------------------------------------------------------------------

    def fulfilled(self, response: Optional[StreamPacket], sent: Optional[Send] = None) -> None:
        """The Prepare ``sent`` (default: the one in flight) was fulfilled; ``response`` is the
        decrypted reply (``None`` if unreadable)."""
        flight = self._take(sent)
        sent = flight.send
        self.counters.fulfilled += 1
        blocked = sent.fulfillable and not any(st.in_flight for st in self.streams.values()) and any(
            type(f) is StreamDataBlocked for f in sent.packet.frames)
        for st in self.streams.values():
            st.acked += st.in_flight
            st.in_flight = 0
        self._closes_done()
        if sent.fulfillable and sent.amount:
            self.counters.sent += sent.amount
            if response is not None:
                arrived = response.prepare_amount
            else:  # the receiver accepted at least what we asked for
                arrived = sent.packet.prepare_amount
            self.counters.delivered += arrived
            for sid, part in flight.split.items():
                # the receiver splits what arrived by the shares, floored
                self.streams[sid].sent += part
                self.streams[sid].delivered += arrived * part // sent.amount
            self._strikes.clear()
            self._retry_delay = _RETRY_DELAY
            self._liquidity_waited = 0.0
            self._expiry = PACKET_EXPIRY_SECONDS
            self.window = min(self.max_packet_amount, max(self.window, sent.amount) * 2)
            if self.windowed:
                self.packets_window = min(self.max_in_flight, self.packets_window + 1)
        if response is not None:
            self._read_frames(response)
        if self.error is not None and flight.phase != "close":
            return  # a packet that was in flight when the payment failed: counted, nothing more
        if blocked and self._phase == "data" and self._data_blocked():
            self._back_off("blocked", _MAX_BLOCKED, "rejected", None,
                           "the receiver does not open its flow-control window")
        elif self._phase == "data":
            self._strikes.pop("blocked", None)
        if self._phase == "close" and not self._flights:
            self._finish()

    def _data_blocked(self) -> bool:
        """Whether no stream with data left may send a byte now."""
        if self.remote_connection_max_data <= self.data_acked:
            return True
        return all(st.max_data <= st.acked for st in self.streams.values() if st.acked < len(st.data))

    def _closes_done(self) -> None:
        for sid in self._closes_in_flight:
            self.streams[sid].close_sent = True
        self._closes_in_flight = []

    def rejected(self, code: str, data: bytes, response: Optional[StreamPacket],
                 message: str = "", sent: Optional[Send] = None) -> None:
        """The Prepare ``sent`` (default: the one in flight) was rejected with ``code``; its
        money goes back to the unsent pool; ``response`` is the decrypted STREAM reply in the
        Reject's data (``None`` if there was none or it did not decrypt)."""
        flight = self._take(sent)
        sent = flight.send
        self.counters.rejected += 1
        for st in self.streams.values():
            st.in_flight = 0  # sent again
        if code == "F99" and response is not None:
            self._closes_done()  # the receiver read the packet's frames
        self._closes_in_flight = []
        if flight.phase == "close":
            return self._finish()
        if self.error is not None:
            return  # a packet that was in flight when the payment failed
        closed = self._read_frames(response) if response is not None else False
        if code == "F99" and response is not None:
            if closed:
                return self._fail("rejected", "the receiver closed the connection", code)
            return self._application_reject(flight, response)
        if code == "F08":
            return self._too_large(sent, data)
        if code == "F02":
            return self._fail("no-route", f"no route to {self.destination}: {message}".rstrip(": "), code)
        if code[:1] in ("T", "R") and self._same_loss(flight):
            return  # sent before the last cut: that loss is already answered
        if code == "T04":
            self.window = max(1, sent.amount // 2)
            self._probe = max(1, self._probe // 2) if self._phase == "probe" else self._probe
            return self._out_of_liquidity(message)
        if code.startswith("T"):
            kind = "unreachable" if code == "T01" else "rejected"
            return self._back_off(code, _MAX_T_OTHER, kind, code, message)
        if code.startswith("R"):
            self.window = max(1, sent.amount // 2)
            self._expiry = min(self._expiry * 1.5, 120.0)
            return self._back_off("R", _MAX_R, "timeout", code, message)
        self._fail("rejected", f"rejected by {self.destination if code == 'F99' else 'the path'}: "
                               f"{message or 'no message'}", code)

    def no_response(self, kind: str, message: str, sent: Optional[Send] = None) -> None:
        """No answer came to ``sent`` (default: the one in flight): ``kind`` is ``timeout`` or
        ``unreachable`` (the plugin failed). Its money goes back to the unsent pool."""
        flight = self._take(sent)
        for st in self.streams.values():
            st.in_flight = 0
        self._closes_in_flight = []
        if flight.phase == "close":
            return self._finish()
        if self.error is not None or self._same_loss(flight):
            return
        self._back_off("none", _MAX_NO_RESPONSE, kind, None, message)

    def _take(self, sent: Optional[Send]) -> _Flight:
        if sent is None:
            if len(self._flights) != 1:
                raise RuntimeError(f"{len(self._flights)} packets in flight: say which (sent=)")
            sequence = next(iter(self._flights))
        else:
            sequence = sent.packet.sequence
        flight = self._flights.pop(sequence, None)
        if flight is None:
            raise RuntimeError("no such packet in flight")
        for sid, part in flight.split.items():
            self.streams[sid].pending -= part  # back to the pool, or (fulfilled) on to sent
        return flight

    def _same_loss(self, flight: _Flight) -> bool:
        """Whether a loss (T/R-error, no answer) of a money packet is one the window already
        answered; if not, cut the window (halve it) and mark this loss."""
        if flight.phase != "send":
            return False
        if flight.send.packet.sequence <= self._recovery:
            return True
        self._recovery = self._sequence
        self.packets_window = max(1, self.packets_window // 2)
        return False

    def _read_frames(self, response: StreamPacket) -> bool:
        """Learn from a reply's frames. :returns: whether the receiver closed."""
        closed = False
        for f in response.frames:
            kind = type(f)
            if kind is ConnectionAssetDetails:
                self.destination_asset = (f.source_asset_code, f.source_asset_scale)
            elif kind is StreamMaxMoney and f.stream_id in self.streams:
                # replies may come out of order (several in flight): the receiver's total only
                # grows, so the latest word is the one with the most received
                old = self.streams[f.stream_id].limit
                if old is None or f.total_received >= old[1]:
                    self.streams[f.stream_id].limit = (f.receive_max, f.total_received)
            elif kind is StreamMaxData and f.stream_id in self.streams:
                # the receiver's latest word (one packet in flight: no stale replies), which may
                # be below the 16384 assumed until it speaks
                self.streams[f.stream_id].max_data = f.max_offset
            elif kind is ConnectionMaxData:
                self.remote_connection_max_data = f.max_offset
            elif kind is ConnectionClose or (kind is StreamClose and f.stream_id in self.streams):
                closed = True
            elif kind is StreamData and self.on_data is not None:
                self.on_data(f.stream_id, f.data)
        return closed

    def _application_reject(self, flight: _Flight, response: StreamPacket) -> None:
        sent = flight.send
        if self._phase == "handshake":
            self._phase = "probe" if self.amount else "send"
            return
        if self._phase == "probe":
            arrived = response.prepare_amount
            if arrived == 0 and self._probe < _PROBE_LIMIT and self._probe < self.max_packet_amount:
                self._probe = min(self._probe * 1000, self.max_packet_amount)
                return
            self.exchange_rate = Decimal(arrived) / Decimal(sent.amount)
            if self.exchange_rate == 0:
                return self._fail("rate", f"nothing arrives at the receiver (a test packet of {sent.amount} "
                                          "delivered 0)", "F99")
            if self.min_exchange_rate is not None and self.exchange_rate < self.min_exchange_rate:
                return self._fail("rate", f"the exchange rate {self.exchange_rate} is below the minimum "
                                          f"{self.min_exchange_rate}", "F99")
            self._phase = "send"
            self._strikes.clear()
            return
        # a money packet the receiver refused: one strike per round of packets in flight
        stale = flight.send.packet.sequence <= self._recovery
        if not stale and self.windowed:
            self._recovery = self._sequence
        for sid, part in flight.split.items():
            limit = self.streams[sid].limit
            if limit is None:
                continue
            receive_max, total_received = limit
            if total_received + max(1, (sent.packet.prepare_amount * part // sent.amount) if sent.amount else 0) \
                    > receive_max:
                # next() shrinks the packet to the receiver's room, or stops the stream
                if not stale:
                        self._strike("limit", _MAX_F99, "rejected", "F99",
                                 f"the receiver's limit on stream {sid} ({receive_max}, {total_received} "
                                 "received) keeps refusing")
                return
        if sent.amount and response.prepare_amount < sent.packet.prepare_amount:
            # less arrived than we asked for: the rate moved; re-price from this packet
            rate = Decimal(response.prepare_amount) / Decimal(sent.amount)
            if self.min_exchange_rate is not None and rate < self.min_exchange_rate:
                return self._fail("rate", f"the exchange rate fell to {rate}, below the minimum "
                                          f"{self.min_exchange_rate}", "F99")
            if rate == 0:
                return self._fail("rate", f"a packet of {sent.amount} delivered 0", "F99")
            self.exchange_rate = rate
        if not stale:
            self._strike("F99", _MAX_F99, "rejected", "F99", "the receiver keeps rejecting our packets")

    def _too_large(self, sent: Send, data: bytes) -> None:
        try:
            info = AmountTooLargeData.decode(data)
        except DecodeError:
            info = None
        if info is not None and info.received_amount > 0:
            new_max = max(1, sent.amount * info.maximum_amount // info.received_amount)
        else:
            new_max = sent.amount // 2
        if new_max < 1 or new_max >= sent.amount:
            return self._fail("too-large", f"a packet of {sent.amount} is too large for the path and cannot "
                                           "be made smaller", "F08")
        self.max_packet_amount = min(self.max_packet_amount, new_max)
        self.window = min(self.window, self.max_packet_amount)
        self._probe = min(self._probe, self.max_packet_amount)

    def _out_of_liquidity(self, message: str) -> None:
        """T04: wait (0.1 s, doubling up to 5 s, within what is left of ``liquidity_timeout``)
        and try again, or give up once the waits since the last Fulfill reached it."""
        left = self.liquidity_timeout - self._liquidity_waited
        if left <= 0:
            return self._fail("liquidity", f"every packet was rejected for {self._liquidity_waited:g} s of retries "
                                           f"({message or 'insufficient liquidity'})", "T04")
        self._delay = min(self._retry_delay, left)
        self._liquidity_waited += self._delay
        self._retry_delay = min(self._retry_delay * _RETRY_FACTOR, _RETRY_DELAY_MAX)

    def _back_off(self, key: str, limit: int, kind: str, code: Optional[str], message: str) -> None:
        if self._strike(key, limit, kind, code, f"gave up after {limit} tries: {message or code or kind}"):
            self._delay = self._retry_delay
            self._retry_delay = min(self._retry_delay * _RETRY_FACTOR, _RETRY_DELAY_MAX)

    def _strike(self, key: str, limit: int, kind: str, code: Optional[str], message: str) -> bool:
        self._strikes[key] = self._strikes.get(key, 0) + 1
        if self._strikes[key] >= limit:
            self._fail(kind, message, code)
            return False
        return True

    def _fail(self, kind: str, message: str, code: Optional[str] = None) -> None:
        self.error = StreamPaymentError(kind, message, self.counters.sent, self.counters.delivered, code)
        # still tell the receiver we are done, when it has heard from us
        self._phase = "close" if self._sequence else "done"

    def _finish(self) -> None:
        self._phase = "done"
        if self.error is not None:  # packets in flight when it failed may have been fulfilled since
            self.error.sent, self.error.delivered = self.counters.sent, self.counters.delivered
        else:
            c = self.counters
            self.result = PaymentResult(c.sent, c.delivered, c.packets, c.fulfilled, c.rejected,
                                        self.exchange_rate, self.source_address, self.destination,
                                        self.data_acked,
                                        {st.id: (st.sent, st.delivered, st.acked) for st in self.streams.values()})


# -- the Twisted driver ------------------------------------------------------------------------------

_log = Logger(namespace="ilptx.stream.sender")


def send_payment(plugin, destination: str, shared_secret: bytes, amount: int, *, clock,
                 source_address: Optional[str] = None, source_asset: Optional[tuple] = None,
                 min_exchange_rate: Optional[Decimal] = None, progress: Optional[Callable] = None,
                 max_packet_amount: Optional[int] = None, slippage: Decimal = DEFAULT_SLIPPAGE,
                 on_data: Optional[Callable] = None, data: Optional[bytes] = None,
                 data_chunk_size: int = DATA_CHUNK_SIZE, streams: Optional[dict] = None,
                 liquidity_timeout: float = DEFAULT_LIQUIDITY_TIMEOUT,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> Deferred:
    """Pay ``amount`` (source units) to a STREAM receiver.

    :param plugin: a connected :class:`~ilptx.interfaces.ILedgerPlugin` (its ``send_data``).
    :param destination: the receiver's address (from SPSP, say).
    :param shared_secret: the connection's 32-byte secret.
    :param clock: ``IReactorTime``.
    :param source_address: our address; if ``None`` it (and ``source_asset``) come from IL-DCP.
    :param source_asset: ``(code, scale)`` for ``ConnectionAssetDetails``.
    :param min_exchange_rate: fail with ``rate`` if the probed rate is lower.
    :param progress: ``callable(sent, delivered)`` after each fulfilled packet.
    :param on_data: ``callable(stream_id, data: bytes)`` for data the receiver returns in its
        replies (``StreamData`` frames), e.g. what a shop sells per payment.
    :param data: bytes to send on stream 1 (see :class:`SendState`); the payment finishes once
        the receiver has acknowledged all of them. ``amount`` may be 0 to send data only.
    :param data_chunk_size: the largest ``StreamData`` payload per packet.
    :param streams: ``{stream_id: {"amount": int, "data": bytes}}`` to send on several streams
        (odd ids); it replaces ``amount`` (pass 0 or ``None``) and ``data``. See
        :class:`SendState`; :attr:`PaymentResult.streams` has the per-stream totals.
    :param liquidity_timeout: seconds to keep retrying while every packet gets T04 (see
        :class:`SendState`); default :data:`DEFAULT_LIQUIDITY_TIMEOUT`.
    :param max_in_flight: the cap of the sender's window, in money packets in flight (default
        :data:`DEFAULT_MAX_IN_FLIGHT`; 1: one at a time, as ``ilp-protocol-stream`` 2.7.1). See
        the module docstring, item 7.
    :returns: ``Deferred[PaymentResult]``; fails with :class:`StreamPaymentError`.
    """
    if streams is not None:
        _check_streams(streams)  # fail early, before IL-DCP
    encryption_key, fulfillment_key = crypto.derive_keys(shared_secret)

    if source_address is None:
        d = fetch_config(plugin.send_data, clock)

        def configured(config):
            asset = source_asset if source_asset is not None else (config.asset_code, config.asset_scale)
            return config.client_address, asset

        def ildcp_failed(failure):
            raise StreamPaymentError("unreachable", f"cannot learn our address with IL-DCP: "
                                                    f"{failure.getErrorMessage()}")

        d.addCallbacks(configured, ildcp_failed)
    else:
        d = Deferred()
        d.callback((source_address, source_asset))

    def start(address_and_asset):
        address, asset = address_and_asset
        state = SendState(amount, source_address=address, destination=destination, source_asset=asset,
                          min_exchange_rate=min_exchange_rate, max_packet_amount=max_packet_amount,
                          slippage=slippage, data=data, data_chunk_size=data_chunk_size, streams=streams,
                          liquidity_timeout=liquidity_timeout, max_in_flight=max_in_flight)
        state.on_data = on_data
        # RFC 29: both ends answer packets. The receiver may probe the exchange rate back to
        # us (ilp-protocol-stream does, and closes the connection if nothing answers), so
        # while we pay we answer its Prepares: never fulfilled, with an F99 telling it what
        # arrived.
        answering = _answer_probes(plugin, address, asset, encryption_key)
        done = _Driver(plugin, clock, state, encryption_key, fulfillment_key, progress).run()

        def stop_answering(result):
            if answering:
                plugin.deregister_data_handler()
            return result

        return done.addBoth(stop_answering)

    return d.addCallback(start)


def _answer_probes(plugin, address: str, asset: Optional[tuple], encryption_key: bytes) -> bool:
    """Register a data handler that rejects the receiver's Prepares with F99 and an
    encrypted reply (amount seen, our asset), so its rate probe succeeds.

    :returns: whether it was registered (``False`` if the plugin already has a handler).
    """

    def answer(data: bytes) -> bytes:
        try:
            prepare = decode_prepare(data)
        except DecodeError:
            return encode_packet(Reject("F01", address, "expected an ILP Prepare", b""))
        if not (prepare.destination == address or prepare.destination.startswith(address + ".")):
            return encode_packet(Reject("F02", address, "", b""))
        try:
            request = crypto.decrypt_packet(encryption_key, prepare.data)
        except (crypto.DecryptionError, DecodeError):
            return encode_packet(Reject("F06", address, "", b""))
        frames = (ConnectionAssetDetails(*asset),) if asset is not None else ()
        response = StreamPacket(request.sequence, PACKET_TYPE_REJECT, prepare.amount, frames)
        return encode_packet(Reject("F99", address, "", crypto.encrypt_packet(encryption_key, response)))

    try:
        plugin.register_data_handler(answer)
    except RuntimeError:
        return False
    return True


class _Driver:
    def __init__(self, plugin, clock, state: SendState, encryption_key: bytes, fulfillment_key: bytes,
                 progress: Optional[Callable]) -> None:
        self.plugin = plugin
        self.clock = clock
        self.state = state
        self.enc = encryption_key
        self.ful = fulfillment_key
        self.progress = progress
        self.finished: Deferred = Deferred()
        self._stepping = False
        self._again = False

    def run(self) -> Deferred:
        self._step()
        return self.finished

    def _step(self, _=None) -> None:
        # fill the window: send until the state holds, waits or is done. An outcome that comes
        # back at once (inside _send) asks for another step: the loop below takes it.
        if self._stepping:
            self._again = True
            return
        self._stepping = True
        try:
            while not self.finished.called:
                self._again = False
                action = self.state.next()
                if action is HOLD:
                    return
                if action is None:
                    if self.state.error is not None:
                        self.finished.errback(self.state.error)
                    else:
                        self.finished.callback(self.state.result)
                    return
                if isinstance(action, Wait):
                    self.clock.callLater(action.seconds, self._step)
                    return
                self._send(action)
                if not (self.state.windowed or self._again):
                    return
        finally:
            self._stepping = False

    def _send(self, action: Send) -> None:
        data = crypto.encrypt_packet(self.enc, action.packet)
        condition = crypto.condition(self.ful, data) if action.fulfillable else crypto.random_condition()
        expires = timestamp_at(self.clock.seconds() + action.expiry)
        prepare = Prepare(action.amount, expires, condition, self.state.destination, data)
        d = maybeDeferred(self.plugin.send_data, encode_packet(prepare))
        d.addTimeout(action.expiry + 1, self.clock)
        d.addCallbacks(self._answered, self._failed, callbackArgs=(action,), errbackArgs=(action,))
        d.addErrback(self._bug)
        d.addCallback(self._step)

    def _answered(self, raw: bytes, sent: Send) -> None:
        try:
            response = decode_response(raw)
        except DecodeError as exc:
            return self.state.no_response("unreachable", f"unreadable response: {exc}", sent)
        packet = None
        if response.data:
            try:
                packet = crypto.decrypt_packet(self.enc, response.data)
            except (crypto.DecryptionError, DecodeError):
                packet = None
        if isinstance(response, Fulfill):
            before = self.state.counters.sent
            self.state.fulfilled(packet, sent)
            if self.progress is not None and self.state.counters.sent != before:
                self.progress(self.state.counters.sent, self.state.counters.delivered)
        else:
            assert isinstance(response, Reject)
            _log.debug("STREAM packet rejected: {code} {message}", code=response.code, message=response.message)
            self.state.rejected(response.code, response.data, packet, response.message, sent)

    def _failed(self, failure, sent: Send) -> None:
        if failure.check(TimeoutError):
            self.state.no_response("timeout", "no answer before the packet expired", sent)
        else:
            self.state.no_response("unreachable", failure.getErrorMessage(), sent)

    def _bug(self, failure) -> None:
        # an error in our own code: end the payment rather than hang
        _log.failure("STREAM sender failed", failure)
        if not self.finished.called:
            self.state._phase = "done"
            self.state.error = StreamPaymentError("rejected", f"internal error: {failure.getErrorMessage()}",
                                                  self.state.counters.sent, self.state.counters.delivered)
