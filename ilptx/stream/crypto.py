"""STREAM cryptography (RFC 29 sections 5.1 "Encryption" and 6 "Condition and Fulfillment
Generation"), and the server's stateless connection tokens as ilp-protocol-stream 2.7.1 makes
them.

Pure functions over bytes: no I/O, no clock, no Twisted. Randomness comes from
:func:`os.urandom`; the functions that draw it take the random bytes as optional keyword
arguments so tests can pin them (never reuse an IV in production).

Keys (all 32 bytes)::

    encryption_key  = HMAC-SHA256(shared_secret, "ilp_stream_encryption")
    fulfillment_key = HMAC-SHA256(shared_secret, "ilp_stream_fulfillment")
    fulfillment     = HMAC-SHA256(fulfillment_key, encrypted_packet)
    condition       = SHA-256(fulfillment)

Envelope (``StreamEncryptionEnvelope`` in ``Stream.asn``): AES-256-GCM, no associated data,
laid out as ``iv (12) || tag (16) || ciphertext`` -- the tag comes *before* the ciphertext,
unlike the ``ciphertext || tag`` that most AEAD APIs return.

Server tokens (``Server.generateAddressAndSecret`` in the reference). A server hands each
connection a destination ``<server address>.<base64url(token)>`` and a shared secret derived
from the token, so it keeps no per-connection state until the first packet arrives::

    token_plaintext = nonce (18 random bytes)
                      || VarOctetString(connection tag, ASCII)
                      || VarOctetString(receipt nonce: empty or 16 bytes)
                      || VarOctetString(receipt secret: empty or 32 bytes)
    token           = AES-256-GCM envelope of token_plaintext under the server secret
    shared_secret   = HMAC-SHA256(HMAC-SHA256(server_secret, "ilp_stream_shared_secret"), token)

``base64url`` is the unpadded URL-safe alphabet. The server secret is used directly as the
AES key, so it must be 32 bytes.

Errors: :class:`DecryptionError` for anything that does not authenticate (wrong key, tampered
data, too short) or a token that cannot be read; :func:`decrypt_packet` may also raise
:class:`~ilptx.codec.oer.DecodeError` when the plaintext is not a STREAM packet. RFC 29 says a
receiver that cannot decrypt SHOULD reject with ``F06 Unexpected Payment``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as _hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.oer import DecodeError, EncodeError, Reader, encode_var_octet_string
from ilptx.codec.stream import StreamPacket, decode_packet, encode_packet

__all__ = [
    "IV_LENGTH",
    "TAG_LENGTH",
    "ENCRYPTION_OVERHEAD",
    "KEY_LENGTH",
    "TOKEN_NONCE_LENGTH",
    "StreamCryptoError",
    "DecryptionError",
    "ConnectionToken",
    "hmac_sha256",
    "sha256",
    "derive_keys",
    "encryption_key",
    "fulfillment_key",
    "encrypt",
    "decrypt",
    "encrypt_packet",
    "decrypt_packet",
    "fulfillment",
    "condition",
    "random_condition",
    "generate_token",
    "read_token",
    "shared_secret_from_token",
    "encode_token",
    "decode_token",
    "generate_address_and_secret",
]

#: AES-GCM nonce length.
IV_LENGTH = 12
#: AES-GCM authentication tag length.
TAG_LENGTH = 16
#: Bytes an envelope adds to its plaintext (``ENCRYPTION_OVERHEAD`` in the reference).
ENCRYPTION_OVERHEAD = IV_LENGTH + TAG_LENGTH
#: Length of every key and secret here (AES-256, HMAC-SHA256 output).
KEY_LENGTH = 32
#: Random bytes at the start of a connection token (``TOKEN_NONCE_LENGTH`` in the reference).
TOKEN_NONCE_LENGTH = 18
#: A receipt nonce is 16 bytes, a receipt secret 32 (RFC 39).
RECEIPT_NONCE_LENGTH = 16
RECEIPT_SECRET_LENGTH = 32

_ENCRYPTION_KEY_STRING = b"ilp_stream_encryption"
_FULFILLMENT_KEY_STRING = b"ilp_stream_fulfillment"
_SHARED_SECRET_STRING = b"ilp_stream_shared_secret"


class StreamCryptoError(ValueError):
    """Base of this module's errors."""


class DecryptionError(StreamCryptoError):
    """The data did not decrypt: wrong key, tampered bytes, too short, or an unreadable token."""


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """:returns: HMAC-SHA256 of ``message`` under ``key`` (32 bytes)."""
    return _hmac.new(key, message, hashlib.sha256).digest()


def sha256(data: bytes) -> bytes:
    """:returns: SHA-256 of ``data`` (32 bytes)."""
    return hashlib.sha256(data).digest()


def encryption_key(shared_secret: bytes) -> bytes:
    """:returns: the connection's AES-256-GCM key, ``HMAC(shared_secret, "ilp_stream_encryption")``."""
    return hmac_sha256(shared_secret, _ENCRYPTION_KEY_STRING)


def fulfillment_key(shared_secret: bytes) -> bytes:
    """:returns: the connection's fulfillment key, ``HMAC(shared_secret, "ilp_stream_fulfillment")``."""
    return hmac_sha256(shared_secret, _FULFILLMENT_KEY_STRING)


def derive_keys(shared_secret: bytes) -> tuple[bytes, bytes]:
    """:returns: ``(encryption_key, fulfillment_key)`` of a connection's shared secret."""
    return encryption_key(shared_secret), fulfillment_key(shared_secret)


def _check_key(name: str, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_LENGTH:
        raise ValueError(f"{name} must be {KEY_LENGTH} bytes")


def encrypt(key: bytes, plaintext: bytes, *, iv: bytes | None = None) -> bytes:
    """Seal ``plaintext`` with AES-256-GCM.

    :param key: 32 bytes (an :func:`encryption_key`, or a server secret for tokens).
    :param iv: 12 bytes; random if omitted. Pass one only in tests: an IV must never repeat.
    :returns: ``iv || tag || ciphertext`` (``len(plaintext) + 28`` bytes).
    """
    _check_key("key", key)
    if iv is None:
        iv = os.urandom(IV_LENGTH)
    elif len(iv) != IV_LENGTH:
        raise ValueError(f"iv must be {IV_LENGTH} bytes")
    sealed = AESGCM(key).encrypt(iv, bytes(plaintext), None)  # ciphertext || tag
    return iv + sealed[-TAG_LENGTH:] + sealed[:-TAG_LENGTH]


def decrypt(key: bytes, data: bytes) -> bytes:
    """Open an ``iv || tag || ciphertext`` envelope.

    :raises DecryptionError: shorter than 28 bytes, or it does not authenticate under ``key``.
    """
    _check_key("key", key)
    data = bytes(data)
    if len(data) < ENCRYPTION_OVERHEAD:
        raise DecryptionError(f"encrypted data too short: {len(data)} bytes, need at least {ENCRYPTION_OVERHEAD}")
    iv = data[:IV_LENGTH]
    tag = data[IV_LENGTH:ENCRYPTION_OVERHEAD]
    ciphertext = data[ENCRYPTION_OVERHEAD:]
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, None)
    except InvalidTag:
        raise DecryptionError("unable to decrypt: corrupted data or wrong key") from None


def encrypt_packet(
    encryption_key: bytes, packet: StreamPacket, *, pad_to: int | None = None, iv: bytes | None = None
) -> bytes:
    """Encode and encrypt a STREAM packet.

    :param encryption_key: the connection's :func:`encryption_key` (not the shared secret).
    :param pad_to: if given, append zero bytes to the plaintext so the result is exactly this
        long (RFC 29 "Junk Data"; the reference's ``padPacketToSize``), hiding the real size.
    :param iv: see :func:`encrypt`.
    :raises ~ilptx.codec.oer.EncodeError: an invalid packet, or one too big for ``pad_to``.
    """
    plaintext = encode_packet(packet)
    if pad_to is not None:
        padding = pad_to - ENCRYPTION_OVERHEAD - len(plaintext)
        if padding < 0:
            raise EncodeError(f"packet of {len(plaintext) + ENCRYPTION_OVERHEAD} bytes does not fit pad_to={pad_to}")
        plaintext += bytes(padding)
    return encrypt(encryption_key, plaintext, iv=iv)


def decrypt_packet(encryption_key: bytes, data: bytes) -> StreamPacket:
    """Decrypt and decode a STREAM packet.

    :param encryption_key: the connection's :func:`encryption_key` (not the shared secret).
    :raises DecryptionError: the data does not authenticate.
    :raises ~ilptx.codec.oer.DecodeError: it does, but the plaintext is not a STREAM packet.
    """
    return decode_packet(decrypt(encryption_key, data))


def fulfillment(fulfillment_key: bytes, data: bytes) -> bytes:
    """:returns: the fulfillment of a Prepare carrying ``data`` (the encrypted STREAM packet)."""
    return hmac_sha256(fulfillment_key, data)


def condition(fulfillment_key: bytes, data: bytes) -> bytes:
    """:returns: the execution condition for a fulfillable Prepare carrying ``data``:
    ``SHA-256(fulfillment(fulfillment_key, data))``."""
    return sha256(fulfillment(fulfillment_key, data))


def random_condition() -> bytes:
    """:returns: 32 random bytes: an unfulfillable condition (RFC 29 section 6.1, for quotes)."""
    return os.urandom(32)


# --------------------------------------------------------------------------- server tokens


@frozen_dataclass
class ConnectionToken:
    """What a server put into a connection token, read back by :func:`read_token`.

    :ivar connection_tag: the application's tag for the connection (ASCII; ``""`` if none).
    :ivar receipt_nonce: 16 bytes, or ``b""`` if receipts are off.
    :ivar receipt_secret: 32 bytes, or ``b""`` if receipts are off.
    """

    connection_tag: str = ""
    receipt_nonce: bytes = b""
    receipt_secret: bytes = b""

    @property
    def receipts_enabled(self) -> bool:
        """:returns: whether the connection was set up to issue STREAM receipts."""
        return bool(self.receipt_nonce)


def generate_token(
    server_secret: bytes,
    connection_tag: str = "",
    receipt_nonce: bytes = b"",
    receipt_secret: bytes = b"",
    *,
    nonce: bytes | None = None,
    iv: bytes | None = None,
) -> bytes:
    """Make a connection token (raw bytes; :func:`encode_token` makes it an address segment).

    :param server_secret: the server's 32-byte secret (also the AES key of the token).
    :param connection_tag: ASCII text the server gets back with the connection.
    :param receipt_nonce: 16 bytes and ``receipt_secret`` 32 bytes, both or neither.
    :param nonce: 18 bytes; random if omitted (tests only).
    :param iv: see :func:`encrypt`.
    """
    _check_key("server_secret", server_secret)
    if not connection_tag.isascii():
        raise ValueError("connection_tag must be ASCII")
    if bool(receipt_nonce) != bool(receipt_secret):
        raise ValueError("receipt_nonce and receipt_secret must accompany each other")
    if receipt_nonce and len(receipt_nonce) != RECEIPT_NONCE_LENGTH:
        raise ValueError(f"receipt_nonce must be {RECEIPT_NONCE_LENGTH} bytes")
    if receipt_secret and len(receipt_secret) != RECEIPT_SECRET_LENGTH:
        raise ValueError(f"receipt_secret must be {RECEIPT_SECRET_LENGTH} bytes")
    if nonce is None:
        nonce = os.urandom(TOKEN_NONCE_LENGTH)
    elif len(nonce) != TOKEN_NONCE_LENGTH:
        raise ValueError(f"nonce must be {TOKEN_NONCE_LENGTH} bytes")
    plaintext = (
        nonce
        + encode_var_octet_string(connection_tag.encode("ascii"))
        + encode_var_octet_string(receipt_nonce)
        + encode_var_octet_string(receipt_secret)
    )
    return encrypt(server_secret, plaintext, iv=iv)


def read_token(server_secret: bytes, token: bytes) -> ConnectionToken:
    """Decrypt a token made by :func:`generate_token` and read what it holds.

    Bytes after the receipt secret are ignored, as in the reference.

    :raises DecryptionError: not a token of this server, or malformed inside.
    """
    r = Reader(decrypt(server_secret, token))
    try:
        r.read_octets(TOKEN_NONCE_LENGTH)
        tag = r.read_var_octet_string()
        receipt_nonce = r.read_var_octet_string()
        receipt_secret = r.read_var_octet_string()
    except DecodeError as exc:
        raise DecryptionError(f"malformed connection token: {exc}") from None
    if not tag.isascii():
        raise DecryptionError("connection tag is not ASCII")
    if len(receipt_nonce) not in (0, RECEIPT_NONCE_LENGTH):
        raise DecryptionError(f"receipt nonce must be {RECEIPT_NONCE_LENGTH} bytes")
    if len(receipt_secret) not in (0, RECEIPT_SECRET_LENGTH):
        raise DecryptionError(f"receipt secret must be {RECEIPT_SECRET_LENGTH} bytes")
    return ConnectionToken(tag.decode("ascii"), receipt_nonce, receipt_secret)


def shared_secret_from_token(server_secret: bytes, token: bytes) -> bytes:
    """:returns: the connection's shared secret (the reference's ``generateSharedSecretFromToken``):
    ``HMAC(HMAC(server_secret, "ilp_stream_shared_secret"), token)``, ``token`` as raw bytes."""
    return hmac_sha256(hmac_sha256(server_secret, _SHARED_SECRET_STRING), token)


def encode_token(token: bytes) -> str:
    """:returns: ``token`` as an ILP address segment: unpadded base64url."""
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def decode_token(segment: str) -> bytes:
    """Read an address segment made by :func:`encode_token`.

    Like the reference (Node's ``Buffer.from(s, 'base64')``) it accepts either base64 alphabet,
    with or without padding.

    :raises DecryptionError: not base64.
    """
    try:
        raw = segment.encode("ascii").replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise DecryptionError("connection token is not base64url") from None


def generate_address_and_secret(
    server_secret: bytes,
    server_address: str,
    connection_tag: str = "",
    receipt_nonce: bytes = b"",
    receipt_secret: bytes = b"",
    *,
    nonce: bytes | None = None,
    iv: bytes | None = None,
) -> tuple[str, bytes]:
    """What a STREAM server gives a client (over SPSP): ``(destination_address, shared_secret)``.

    The destination is ``f"{server_address}.{encode_token(token)}"``; the arguments are those of
    :func:`generate_token`.
    """
    token = generate_token(server_secret, connection_tag, receipt_nonce, receipt_secret, nonce=nonce, iv=iv)
    return f"{server_address}.{encode_token(token)}", shared_secret_from_token(server_secret, token)
