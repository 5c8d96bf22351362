"""STREAM receiver (RFC 29): the server side, over a ledger plugin.

:class:`StreamServer` gets its ILP address from the plugin's counterparty with IL-DCP,
hands out a destination address and shared secret per connection
(:meth:`StreamServer.generate_address_and_secret`, what SPSP serves), and answers every
Prepare addressed to one of them as RFC 29 and ``ilp-protocol-stream`` do:

* the data is decrypted with the connection's key (AES-256-GCM); garbage → ``F06``;
* control frames are applied (``ConnectionNewAddress`` is answered with our
  ``ConnectionMaxStreamId`` and ``ConnectionAssetDetails``; closes are recorded);
* a Prepare whose amount is below the sender's ``prepare_amount``, or whose condition is not
  the one our fulfillment key gives (a test packet for rate probing), or that would pass a
  stream's ``receive_max``, is rejected with ``F99`` carrying an encrypted response packet
  (the amount we saw and our frames), so the sender learns the exchange rate and limits;
* otherwise the amount is split over the ``StreamMoney`` frames by their shares (floored),
  counted per stream, reported to ``on_money``, and fulfilled with an encrypted response.

Connections are stateless to set up: the address carries the reference's connection token
(a nonce and tag encrypted with the server secret) and the shared secret is derived from it,
so any number of senders can be given addresses without keeping anything until they pay.
Per connection the server keeps the streams' totals.

**Data** (``StreamData`` frames) is applied with the other control frames, before the
condition is checked, as ``ilp-protocol-stream`` does: it arrives on fulfillable and test
packets alike. Each stream reassembles its bytes in order by offset (duplicates and overlaps
are dropped, frames ahead of the read offset are held) and hands them to ``on_stream_data``.
Flow control: a stream accepts bytes up to ``delivered + max_stream_data`` and the connection
up to ``delivered on all streams + max_connection_data - bytes held out of order``; every reply
advertises them (``ConnectionMaxData``, and ``StreamMaxMoney`` and ``StreamMaxData`` per open
stream, in Fulfill and ``F99`` replies alike, unless the connection is closed). A frame beyond either limit closes
the connection with ``FlowControlError`` (``ConnectionClose`` in the ``F99`` reply).

This module does not send money (see the STREAM sender). Connections idle for
``idle_timeout`` seconds are forgotten.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ilptx.codec.ilp import ErrorCode as IlpErrorCode
from ilptx.codec.ilp import Fulfill, Reject, decode_prepare, encode_packet
from ilptx.codec.oer import UINT64_MAX, DecodeError
from ilptx.codec.stream import (
    PACKET_TYPE_FULFILL,
    PACKET_TYPE_PREPARE,
    PACKET_TYPE_REJECT,
    ConnectionAssetDetails,
    ConnectionClose,
    ErrorCode as StreamErrorCode,
    ConnectionMaxData,
    ConnectionMaxStreamId,
    ConnectionNewAddress,
    StreamClose,
    StreamData,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
    StreamPacket,
)
from ilptx.core.ildcp import fetch_config
from ilptx.stream import crypto
from ilptx.stream.spsp import SpspResponse

__all__ = ["StreamServer", "StreamState", "ConnectionState"]

_MAX = UINT64_MAX
_MAX_STREAM_ID = 2**31
#: Default flow-control windows (bytes beyond what was delivered).
DEFAULT_MAX_STREAM_DATA = 64 * 1024
DEFAULT_MAX_CONNECTION_DATA = 128 * 1024


@dataclass
class StreamState:
    """One stream's money: ``receive_max`` is ``None`` for no limit."""

    total_received: int = 0
    receive_max: Optional[int] = None
    closed: bool = False
    data_sent: int = 0
    #: bytes handed to ``on_stream_data`` (the next offset expected)
    read_offset: int = 0
    #: the highest end offset (offset + length) of any data frame seen
    max_offset: int = 0
    #: frames ahead of ``read_offset``: offset -> bytes
    pending: dict = field(default_factory=dict)

    @property
    def buffered(self) -> int:
        """Bytes held out of order (overlaps counted twice: an upper bound)."""
        return sum(len(b) for b in self.pending.values())

    def push(self, offset: int, data: bytes) -> bytes:
        """Take a frame's bytes at ``offset``; :returns: the bytes now deliverable in order."""
        end = offset + len(data)
        self.max_offset = max(self.max_offset, end)
        if end <= self.read_offset or not data:
            return b""  # a duplicate
        if offset < self.read_offset:
            data, offset = data[self.read_offset - offset:], self.read_offset
        if len(data) > len(self.pending.get(offset, b"")):
            self.pending[offset] = data
        out = []
        progress = True
        while progress and self.pending:
            progress = False
            for start in sorted(self.pending):
                if start > self.read_offset:
                    break
                chunk = self.pending.pop(start)
                tail = chunk[self.read_offset - start:]
                if tail:
                    out.append(tail)
                    self.read_offset += len(tail)
                progress = True
        return b"".join(out)


@dataclass
class ConnectionState:
    """One sender's connection: its address (if it told us), totals per stream, closed?"""

    token: str
    source_address: Optional[str] = None
    streams: dict = field(default_factory=dict)
    total_received: int = 0
    closed: bool = False
    last_activity: float = 0.0

    def incoming_offsets(self) -> tuple:
        """:returns: ``(max, read, buffered)`` summed over the streams."""
        streams = self.streams.values()
        return (sum(s.max_offset for s in streams), sum(s.read_offset for s in streams),
                sum(s.buffered for s in streams))


class StreamServer:
    """Receives STREAM payments on ``plugin``.

    :param plugin: an :class:`ilptx.interfaces.ILedgerPlugin` whose counterparty is a
        connector that answers IL-DCP (a child account's BTP client, say).
    :param clock: ``IReactorTime``.
    :param server_secret: 32 bytes (random by default); keep it to accept payments to
        addresses handed out before a restart.
    :param on_money: ``callable(connection: ConnectionState, stream_id: int, amount: int)``.
    :param receive_max: per-stream limit (base units) for new streams; ``None``: no limit.
    :param respond_with: ``callable(connection, stream_id, amount) -> bytes | None``: data to
        return to the sender with the Fulfill of a payment (a ``StreamData`` frame), e.g. what
        a shop sells per payment.
    :param idle_timeout: seconds without a packet after which a connection's state is
        forgotten (60, as ``ilp-protocol-stream``); its address stays valid, and a sender that
        comes back starts a fresh connection.
    :param on_stream_data: ``callable(connection, stream_id, data: bytes)``: a stream's bytes,
        in order, as they become contiguous.
    :param max_stream_data: bytes a stream accepts beyond what it has delivered.
    :param max_connection_data: bytes the connection accepts beyond what it has delivered
        (less what it holds out of order).
    """

    log = Logger()

    def __init__(self, plugin, clock, *, server_secret: Optional[bytes] = None,
                 on_money: Optional[Callable] = None, receive_max: Optional[int] = None,
                 respond_with: Optional[Callable] = None, idle_timeout: float = 60.0,
                 on_stream_data: Optional[Callable] = None, max_stream_data: int = DEFAULT_MAX_STREAM_DATA,
                 max_connection_data: int = DEFAULT_MAX_CONNECTION_DATA) -> None:
        self.plugin = plugin
        self._clock = clock
        self._secret = server_secret or os.urandom(32)
        self.on_money = on_money
        self.receive_max = receive_max
        self.respond_with = respond_with
        self.on_stream_data = on_stream_data
        self.max_stream_data = max_stream_data
        self.max_connection_data = max_connection_data
        self.address: Optional[str] = None
        self.asset_code: Optional[str] = None
        self.asset_scale: Optional[int] = None
        self.connections: dict[str, ConnectionState] = {}
        self.total_received = 0
        self.idle_timeout = idle_timeout
        self._reaper = LoopingCall(self.forget_idle)
        self._reaper.clock = clock

    # -- set-up ---------------------------------------------------------------------------------

    def connect(self) -> Deferred:
        """Connect the plugin, learn our address with IL-DCP, then accept packets.

        :returns: ``Deferred[None]``.
        """

        def configured(config) -> None:
            self.address, self.asset_code, self.asset_scale = (
                config.client_address, config.asset_code, config.asset_scale)
            self.plugin.register_data_handler(self.handle_data)
            self.start()
            self.log.info("STREAM receiver at {address} ({code}, scale {scale})", address=self.address,
                          code=self.asset_code, scale=self.asset_scale)

        d = self.plugin.connect()
        d.addCallback(lambda _: fetch_config(self.plugin.send_data, self._clock))
        return d.addCallback(configured)

    def start(self) -> None:
        """Start forgetting idle connections (``connect()`` does this)."""
        if not self._reaper.running:
            self._reaper.start(self.idle_timeout / 2, now=False)

    def stop(self) -> None:
        """Stop the idle timer."""
        if self._reaper.running:
            self._reaper.stop()

    def forget_idle(self) -> None:
        """Drop connections with no packet for ``idle_timeout`` seconds."""
        cutoff = self._clock.seconds() - self.idle_timeout
        for token in [t for t, c in self.connections.items() if c.last_activity < cutoff]:
            del self.connections[token]

    def configure(self, address: str, asset_code: str, asset_scale: int) -> None:
        """Use a fixed address and asset instead of IL-DCP (e.g. a shop that is the parent of
        its own BTP clients); the caller routes Prepares to :meth:`handle_data`."""
        self.address, self.asset_code, self.asset_scale = address, asset_code, asset_scale

    def generate_address_and_secret(self, connection_tag: str = "") -> SpspResponse:
        """:returns: a fresh destination address and shared secret (for SPSP), with the
        reference's connection token (an encrypted nonce and tag), so addresses stay valid
        across restarts with the same server secret."""
        if self.address is None:
            raise RuntimeError("the STREAM server has no address yet: call connect() first")
        destination, secret = crypto.generate_address_and_secret(self._secret, self.address, connection_tag)
        return SpspResponse(destination, secret)

    # -- packets ----------------------------------------------------------------------------------

    def handle_data(self, data: bytes) -> bytes:
        """The plugin's data handler: answer one OER ILP Prepare with a Fulfill or Reject."""
        try:
            prepare = decode_prepare(data)
        except DecodeError:
            return self._reject(IlpErrorCode.F00_BAD_REQUEST, "expected an ILP Prepare")
        prefix = self.address + "."
        if not prepare.destination.startswith(prefix):
            return self._reject(IlpErrorCode.F02_UNREACHABLE, "")
        token = prepare.destination[len(prefix):].split(".", 1)[0]
        try:
            raw_token = crypto.decode_token(token)
            crypto.read_token(self._secret, raw_token)  # not one of ours: unreachable (as the reference)
        except crypto.DecryptionError:
            return self._reject(IlpErrorCode.F02_UNREACHABLE, "")
        encryption_key, fulfillment_key = crypto.derive_keys(crypto.shared_secret_from_token(self._secret, raw_token))
        try:
            request = crypto.decrypt_packet(encryption_key, prepare.data)
        except (crypto.DecryptionError, DecodeError):
            return self._reject(IlpErrorCode.F06_UNEXPECTED_PAYMENT, "")
        if request.ilp_packet_type != PACKET_TYPE_PREPARE:
            return self._reject(IlpErrorCode.F06_UNEXPECTED_PAYMENT, "")
        connection = self.connections.get(token)
        if connection is None:
            connection = self.connections[token] = ConnectionState(token)
        connection.last_activity = self._clock.seconds()
        frames: list = []
        violation = self._apply_control(connection, request.frames, frames)
        frames.insert(0, ConnectionMaxData(self._connection_max_acceptable(connection)))

        def reject():
            self._advertise(connection, frames)
            response = StreamPacket(request.sequence, PACKET_TYPE_REJECT, prepare.amount, tuple(frames))
            return encode_packet(Reject(IlpErrorCode.F99_APPLICATION_ERROR, self.address, "",
                                        crypto.encrypt_packet(encryption_key, response)))

        if violation is not None:
            connection.closed = True
            frames.append(ConnectionClose(StreamErrorCode.FLOW_CONTROL_ERROR, violation))
            return reject()
        if connection.closed:
            frames.append(ConnectionClose(StreamErrorCode.NO_ERROR, ""))
            return reject()
        if request.prepare_amount > prepare.amount:
            return reject()
        fulfillment = crypto.fulfillment(fulfillment_key, prepare.data)
        if hashlib.sha256(fulfillment).digest() != prepare.execution_condition:
            return reject()  # a test packet: the sender learns what arrived
        money = [f for f in request.frames if type(f) is StreamMoney]
        total_shares = sum(f.shares for f in money)
        credits = []
        for f in money:
            stream = self._stream(connection, f.stream_id)
            amount = prepare.amount * f.shares // total_shares if total_shares else 0
            if stream.closed:
                frames.append(StreamClose(f.stream_id, StreamErrorCode.STREAM_STATE_ERROR, "Stream is already closed"))
                return reject()
            if stream.receive_max is not None and stream.total_received + amount > stream.receive_max:
                frames.append(StreamMaxMoney(f.stream_id, stream.receive_max, stream.total_received))
                return reject()
            credits.append((f.stream_id, stream, amount))
        for stream_id, stream, amount in credits:
            stream.total_received += amount
            connection.total_received += amount
            self.total_received += amount
            if self.on_money is not None and amount:
                self.on_money(connection, stream_id, amount)
            if self.respond_with is not None and amount:
                data = self.respond_with(connection, stream_id, amount)
                if data:
                    frames.append(StreamData(stream_id, stream.data_sent, data))
                    stream.data_sent += len(data)
        self._advertise(connection, frames)
        response = StreamPacket(request.sequence, PACKET_TYPE_FULFILL, prepare.amount, tuple(frames))
        return encode_packet(Fulfill(fulfillment, crypto.encrypt_packet(encryption_key, response)))

    def _advertise(self, connection: ConnectionState, frames: list) -> None:
        """Add ``StreamMaxMoney`` and ``StreamMaxData`` for each open stream (in Fulfill and
        ``F99`` replies alike, so a sender learns a small window before it overruns it);
        a stream already given a ``StreamMaxMoney`` in ``frames`` is not repeated."""
        if connection.closed:
            return
        told = {f.stream_id for f in frames if type(f) is StreamMaxMoney}
        for stream_id, stream in connection.streams.items():
            if not stream.closed:
                if stream_id not in told:
                    frames.append(StreamMaxMoney(stream_id, _MAX if stream.receive_max is None
                                                 else stream.receive_max, stream.total_received))
                frames.append(StreamMaxData(stream_id, stream.read_offset + self.max_stream_data))

    def _stream(self, connection: ConnectionState, stream_id: int) -> StreamState:
        stream = connection.streams.get(stream_id)
        if stream is None:
            stream = connection.streams[stream_id] = StreamState(receive_max=self.receive_max)
        return stream

    def _connection_max_acceptable(self, connection: ConnectionState) -> int:
        _, read, buffered = connection.incoming_offsets()
        return read - buffered + self.max_connection_data

    def _apply_control(self, connection: ConnectionState, request_frames, frames: list) -> Optional[str]:
        """Apply the control and data frames. :returns: a flow-control violation's message, if any."""
        for f in request_frames:
            kind = type(f)
            if kind is ConnectionNewAddress:
                connection.source_address = f.source_address
                frames.append(ConnectionMaxStreamId(_MAX_STREAM_ID))
                frames.append(ConnectionAssetDetails(self.asset_code, self.asset_scale))
            elif kind is ConnectionClose:
                connection.closed = True
            elif kind is StreamClose:
                self._stream(connection, f.stream_id).closed = True
            elif kind is StreamData:
                violation = self._receive_data(connection, f)
                if violation is not None:
                    return violation
        return None

    def _receive_data(self, connection: ConnectionState, frame: StreamData) -> Optional[str]:
        if connection.closed:
            return None
        stream = self._stream(connection, frame.stream_id)
        if stream.closed:
            return None
        end = frame.offset + len(frame.data)
        stream_limit = stream.read_offset + self.max_stream_data
        if end > stream_limit:
            return (f"Exceeded flow control limits. Stream {frame.stream_id} can accept up to offset: "
                    f"{stream_limit} but got bytes up to offset: {end}")
        connection_limit = self._connection_max_acceptable(connection)
        total_max = connection.incoming_offsets()[0] - stream.max_offset + max(stream.max_offset, end)
        if total_max > connection_limit:
            return (f"Exceeded flow control limits. Max connection byte offset: {connection_limit}, "
                    f"received: {total_max}")
        data = stream.push(frame.offset, frame.data)
        if data and self.on_stream_data is not None:
            self.on_stream_data(connection, frame.stream_id, data)
        return None

    def _reject(self, code: str, message: str) -> bytes:
        return encode_packet(Reject(code, self.address or "", message, b""))
