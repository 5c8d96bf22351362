"""Payment-channel claims of ``ilp-plugin-xrp-paychan`` 2.4.1 (``index.js`` and
``ilp-plugin-xrp-paychan-shared`` 4.1.3 ``lib/util.js``), on xrpl-py and ``cryptography``:

* the channel key: an Ed25519 key whose 32-byte seed is HMAC-SHA256(key = the XRP secret,
  message = ``"ilp-plugin-xrp-paychan-channel-keys"`` + the peer's r-address) (JS
  ``util.hmac`` + ``nacl.sign.keyPair.fromSeed``); its public key goes on the ledger as
  ``"ED"`` + 64 hex digits;
* the bytes a claim signs: ``"CLM\\0"`` ‖ channel id ‖ u64BE(drops), serialised by xrpl-py's
  binary codec (:func:`xrpl.core.binarycodec.encode_for_signing_claim`) and signed / verified
  with :mod:`xrpl.core.keypairs`;
* plugin units (ILP amounts at ``currencyScale``) ↔ drops: a claim's cumulative total in plugin
  units is signed for the drops **rounded up** (JS ``baseToXrp``: ``toFixed(6, ROUND_UP)``);
  because totals are cumulative, the rounding never accumulates;
* the channel id: SHA-512Half(``0x0078`` ‖ AccountID(source) ‖ AccountID(destination) ‖
  u32BE(sequence)), uppercase hex (JS ``util.computeChannelId``).

Amounts are ``int``; drops are XRP's base unit (10**6 drops = 1 XRP).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from xrpl.core import addresscodec, keypairs
from xrpl.core.binarycodec import encode_for_signing_claim

__all__ = ["CHANNEL_KEYS_TAG", "DROPS_SCALE", "ChannelKey", "channel_key", "claim_bytes", "sign_claim",
           "verify_claim", "units_to_drops", "drops_to_units", "compute_channel_id"]

#: the HMAC tag of ``ilp-plugin-xrp-paychan`` 2.4.1 (``CHANNEL_KEYS``)
CHANNEL_KEYS_TAG = "ilp-plugin-xrp-paychan-channel-keys"
#: XRP in drops
DROPS_SCALE = 6


@dataclass(frozen=True)
class ChannelKey:
    """An Ed25519 channel key: ``private_key`` (xrpl-py's ``"ED"`` + hex of the 32-byte seed)
    and ``public_key`` (``"ED"`` + 64 uppercase hex digits, the channel's ``PublicKey``)."""

    private_key: str
    public_key: str


def channel_key(secret: str, peer_address: str, tag: str = CHANNEL_KEYS_TAG) -> ChannelKey:
    """The key our claims to ``peer_address`` are signed with (deterministic: the same secret and
    peer give the same key after any restart, as in the JS plugin). ``tag``: the HMAC tag
    (``ilp-plugin-xrp-asym-client`` 1.6.0 uses ``"ilp-plugin-xrp-stateless"``)."""
    seed = hmac.new(secret.encode("utf-8"), (tag + peer_address).encode("utf-8"),
                    hashlib.sha256).digest()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return ChannelKey("ED" + seed.hex().upper(), "ED" + public.hex().upper())


def claim_bytes(channel_id: str, drops: int) -> bytes:
    """``"CLM\\0"`` ‖ channel id (32 bytes) ‖ u64BE(``drops``), by xrpl-py's binary codec.
    :raises ValueError: ``drops`` not an ``int`` 1..2**64−1 (the JS ``encodeClaim`` refuses 0),
        or a channel id that is not 64 hex digits."""
    if type(drops) is not int or not 0 < drops < 2 ** 64:
        raise ValueError(f"claim amount must be 1..2**64-1 drops, not {drops!r}")
    if len(channel_id) != 64:
        raise ValueError(f"channel id must be 64 hex digits, not {channel_id!r}")
    bytes.fromhex(channel_id)
    return bytes.fromhex(encode_for_signing_claim({"channel": channel_id.upper(), "amount": str(drops)}))


def sign_claim(key: ChannelKey, channel_id: str, drops: int) -> str:
    """:returns: the Ed25519 signature of :func:`claim_bytes`, 128 lowercase hex digits (as the
    JS plugin sends it: ``Buffer.toString('hex')``)."""
    return keypairs.sign(claim_bytes(channel_id, drops), key.private_key).lower()


def verify_claim(public_key: str, channel_id: str, drops: int, signature: str) -> bool:
    """:returns: whether ``signature`` (hex) over :func:`claim_bytes` verifies against the
    channel's ``PublicKey`` (hex, ``"ED"``-prefixed for Ed25519); ``False`` for anything malformed."""
    try:
        message = claim_bytes(channel_id, drops)
        return bool(keypairs.is_valid_message(message, bytes.fromhex(signature), public_key))
    except Exception:  # noqa: BLE001 - any malformed key, signature or amount is simply not valid
        return False


def units_to_drops(units: int, scale: int) -> int:
    """Plugin units at asset scale ``scale`` → drops, rounded **up** (JS ``baseToXrp`` +
    ``xrpToDrops``)."""
    if scale >= DROPS_SCALE:
        return -(-units // 10 ** (scale - DROPS_SCALE))
    return units * 10 ** (DROPS_SCALE - scale)


def drops_to_units(drops: int, scale: int) -> int:
    """Drops → plugin units at ``scale``, rounded down (JS ``xrpToBase`` is exact for scales
    >= 6; below, it would give a fraction, which is not a whole unit)."""
    if scale >= DROPS_SCALE:
        return drops * 10 ** (scale - DROPS_SCALE)
    return drops // 10 ** (DROPS_SCALE - scale)


def compute_channel_id(source: str, destination: str, sequence: int) -> str:
    """The PayChannel id a ``PaymentChannelCreate`` from ``source`` with ``sequence`` makes."""
    preimage = (b"\x00\x78" + addresscodec.decode_classic_address(source)
                + addresscodec.decode_classic_address(destination) + sequence.to_bytes(4, "big"))
    return hashlib.sha512(preimage).digest()[:32].hex().upper()
