"""A blocking, hand-rolled WebSocket client for tests that must misbehave on purpose (flood
pings, never read, log in wrongly), which a well-behaved library client would not do.

Imported as ``integration.raw_ws``. Client frames are masked (RFC 6455 §5.3); the server's
frames are read unmasked.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
from typing import Optional

OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9


def frame(opcode: int, payload: bytes) -> bytes:
    """:returns: one final, masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """One WebSocket connection to ``ws://host:port/`` on a plain blocking socket.

    :param source: local address to bind (e.g. ``"127.0.0.2"``: another source on loopback).
    :param receive_buffer: ``SO_RCVBUF`` in bytes, set before connecting (a small TCP window).
    :param tls: an :class:`ssl.SSLContext`: ``wss`` instead of ``ws``.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", source: Optional[str] = None,
                 timeout: float = 10.0, receive_buffer: Optional[int] = None,
                 tls: Optional[ssl.SSLContext] = None) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"no WebSocket upgrade: {head!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self._buffer += chunk

    def send_binary(self, payload: bytes) -> None:
        """Send one binary message (one BTP frame)."""
        self.sock.sendall(frame(OP_BINARY, payload))

    def receive(self) -> tuple[int, bytes]:
        """:returns: the next ``(opcode, payload)`` from the server (pings and pongs included).
        :raises ConnectionError: the server closed the connection."""
        while True:
            if len(self._buffer) >= 2:
                length, offset = self._buffer[1] & 0x7F, 2
                if length == 126 and len(self._buffer) >= 4:
                    length, offset = struct.unpack("!H", self._buffer[2:4])[0], 4
                elif length == 127 and len(self._buffer) >= 10:
                    length, offset = struct.unpack("!Q", self._buffer[2:10])[0], 10
                if length < 126 or offset > 2:
                    if len(self._buffer) >= offset + length:
                        opcode = self._buffer[0] & 0x0F
                        payload = self._buffer[offset:offset + length]
                        self._buffer = self._buffer[offset + length:]
                        return opcode, payload
            self._fill()

    def receive_binary(self) -> bytes:
        """:returns: the next binary message, skipping control frames."""
        while True:
            opcode, payload = self.receive()
            if opcode == OP_CLOSE:
                raise ConnectionError("WebSocket closed by the server")
            if opcode == OP_BINARY:
                return payload

    def close(self) -> None:
        """Close the socket (no close handshake)."""
        self.sock.close()
