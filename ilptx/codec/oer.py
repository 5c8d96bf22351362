"""Octet Encoding Rules primitives (RFC 30, ITU-T X.696) as used by every Interledger packet.

Sans-IO: bytes in, values out. Nothing here touches a socket or a clock.

Two error types split the blame:

* :class:`DecodeError` -- the bytes we were given are not valid (a peer sent garbage).
  Every decoder in :mod:`ilptx.codec` raises only this on bad input, never ``IndexError``
  or ``struct.error``.
* :class:`EncodeError` -- we were asked to encode a value that cannot be represented
  (a programming error on our side, or a value that must be rejected before encoding).
"""

from __future__ import annotations

import struct

__all__ = [
    "CodecError",
    "DecodeError",
    "EncodeError",
    "Reader",
    "encode_length",
    "encode_var_octet_string",
    "encode_var_uint",
    "encode_uint",
    "UINT64_MAX",
]

UINT64_MAX = 2**64 - 1

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class CodecError(ValueError):
    """Base of the codec's errors."""


class DecodeError(CodecError):
    """The input bytes are malformed (RFC 30): truncated, over-long, or out of range."""


class EncodeError(CodecError):
    """A value cannot be encoded: out of range, wrong size, or wrong type."""


class Reader:
    """A cursor over an immutable byte string.

    :param data: the bytes to read.
    :param offset: where to start, in bytes.

    Every ``read_*`` method raises :class:`DecodeError` if the input is too short.
    """

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def remaining(self) -> int:
        """:returns: the number of unread bytes."""
        return len(self.data) - self.offset

    def read_octets(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (a fixed-size OCTET STRING).

        :raises DecodeError: fewer than ``n`` bytes remain.
        """
        start = self.offset
        end = start + n
        if end > len(self.data):
            raise DecodeError(f"unexpected end of data: wanted {n} bytes at offset {start}, have {len(self.data) - start}")
        self.offset = end
        return bytes(self.data[start:end])

    def read_uint8(self) -> int:
        """Read one unsigned byte."""
        off = self.offset
        if off >= len(self.data):
            raise DecodeError(f"unexpected end of data: wanted 1 byte at offset {off}")
        self.offset = off + 1
        return self.data[off]

    def read_uint32(self) -> int:
        """Read a big-endian unsigned 32-bit integer."""
        off = self.offset
        if off + 4 > len(self.data):
            raise DecodeError(f"unexpected end of data: wanted 4 bytes at offset {off}")
        self.offset = off + 4
        return _U32.unpack_from(self.data, off)[0]

    def read_uint64(self) -> int:
        """Read a big-endian unsigned 64-bit integer (UInt64 in the ASN.1)."""
        off = self.offset
        if off + 8 > len(self.data):
            raise DecodeError(f"unexpected end of data: wanted 8 bytes at offset {off}")
        self.offset = off + 8
        return _U64.unpack_from(self.data, off)[0]

    def read_length(self) -> int:
        """Read an OER length determinant (RFC 30 "Variable-Length Octet Strings").

        Short form: one byte < 0x80. Long form: ``0x80 | n`` followed by ``n`` bytes of
        big-endian length. Non-canonical long forms (a long form for a length < 128, or
        leading zero bytes) are rejected, as the reference's ``oer-utils`` does.

        :raises DecodeError: truncated or non-canonical determinant.
        """
        first = self.read_uint8()
        if first < 0x80:
            return first
        n = first & 0x7F
        if n == 0:
            raise DecodeError("length prefix of length 0 is invalid")
        if n > 8:
            raise DecodeError(f"length prefix too long: {n} bytes")
        raw = self.read_octets(n)
        if raw[0] == 0:
            raise DecodeError("length prefix has a leading zero byte (not canonical)")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise DecodeError("length prefix uses the long form for a length under 128 (not canonical)")
        return length

    def read_var_octet_string(self) -> bytes:
        """Read a length-prefixed OCTET STRING."""
        return self.read_octets(self.read_length())

    def read_var_uint(self) -> int:
        """Read a length-prefixed unsigned integer (VarUInt, RFC 30).

        :raises DecodeError: zero length, or more than 8 bytes (we only use UInt64 ranges).
        """
        n = self.read_length()
        if n == 0:
            raise DecodeError("variable-length integer of length 0")
        if n > 8:
            raise DecodeError(f"variable-length integer of {n} bytes exceeds UInt64")
        return int.from_bytes(self.read_octets(n), "big")

    def read_ascii(self, n: int | None = None) -> str:
        """Read an IA5String: fixed size ``n``, or length-prefixed if ``n`` is None.

        :raises DecodeError: a byte is outside 0..127.
        """
        raw = self.read_octets(n) if n is not None else self.read_var_octet_string()
        if not raw.isascii():
            raise DecodeError("IA5String contains a non-ASCII byte")
        return raw.decode("ascii")

    def read_utf8(self) -> str:
        """Read a length-prefixed UTF8String.

        :raises DecodeError: invalid UTF-8.
        """
        raw = self.read_var_octet_string()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8: {exc.reason}") from None

    def ensure_done(self, what: str) -> None:
        """:raises DecodeError: bytes are left over after ``what``."""
        if self.offset != len(self.data):
            raise DecodeError(f"{what}: {len(self.data) - self.offset} trailing bytes")


def encode_length(n: int) -> bytes:
    """Encode an OER length determinant (short form below 128, else long form)."""
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode_var_octet_string(value: bytes) -> bytes:
    """Encode a length-prefixed OCTET STRING."""
    return encode_length(len(value)) + value


def encode_uint(value: int, size: int) -> bytes:
    """Encode a fixed-size big-endian unsigned integer of ``size`` bytes.

    :raises EncodeError: not an ``int``, negative, or too large for ``size`` bytes.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(f"expected an integer, got {type(value).__name__}")
    if value < 0 or value.bit_length() > size * 8:
        raise EncodeError(f"{value} does not fit in an unsigned {size * 8}-bit integer")
    return value.to_bytes(size, "big")


def encode_var_uint(value: int) -> bytes:
    """Encode a length-prefixed unsigned integer (VarUInt) in the fewest bytes (at least 1).

    :raises EncodeError: negative or wider than 64 bits.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(f"expected an integer, got {type(value).__name__}")
    if value < 0 or value > UINT64_MAX:
        raise EncodeError(f"{value} is not a UInt64")
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return encode_length(len(raw)) + raw
