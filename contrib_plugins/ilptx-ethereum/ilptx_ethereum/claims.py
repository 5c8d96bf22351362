"""Claim crypto of ``ilp-plugin-ethereum`` 3.0.0-beta.20 (``src/utils/channel.ts``,
``createPaymentDigest`` / ``isValidClaimSignature``; ``src/account.ts`` ``signClaim``).

The digest is machinomy ``Unidirectional.paymentDigest``:
``keccak256(abi.encodePacked(address contract, bytes32 channelId, uint256 value[, address token]))``;
the signature is EIP-191 ``personal_sign`` over it (``keccak256("\\x19Ethereum Signed
Message:\\n32" ‖ digest)``), written ``0x`` + r‖s‖v with v ``1b``/``1c`` as the JS plugin sends
it. Keccak, ABI packing and secp256k1 come from eth-utils, eth-abi and eth-account.
"""

from __future__ import annotations

from typing import Optional

from eth_abi.packed import encode_packed
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, keccak, to_checksum_address

from ilptx_ethereum.model import Claim

__all__ = [
    "InvalidSignatureError", "payment_digest", "sign_claim", "recover_signer", "make_claim",
    "check_channel_id", "address_of",
]

#: v as the JS plugin writes it (recovery id 0 → ``1b``, 1 → ``1c``); 0/1 are accepted too,
#: as the contract's ``ECRecovery`` adds 27 to them.
_V_BYTES = {27: 27, 28: 28, 0: 27, 1: 28}


class InvalidSignatureError(ValueError):
    """A claim signature that is not 65 bytes of ``0x`` hex with v in {1b, 1c, 00, 01}, or
    that recovers no key."""


def check_channel_id(channel_id: str) -> bytes:
    """:returns: the 32 bytes of ``channel_id`` (``0x`` + 64 hex digits).
    :raises ValueError: anything else."""
    if not (isinstance(channel_id, str) and channel_id[:2] in ("0x", "0X") and len(channel_id) == 66):
        raise ValueError(f"channel id must be 0x + 64 hex digits, got {channel_id!r}")
    try:
        return bytes.fromhex(channel_id[2:])
    except ValueError:
        raise ValueError(f"channel id must be 0x + 64 hex digits, got {channel_id!r}") from None


def _check_address(name: str, address: str) -> str:
    if not (isinstance(address, str) and is_address(address)):
        raise ValueError(f"{name} must be a 0x + 40 hex digit Ethereum address, got {address!r}")
    return to_checksum_address(address)


def payment_digest(contract_address: str, channel_id: str, value: int, token_contract: Optional[str] = None) -> bytes:
    """The 32-byte claim digest, before the EIP-191 prefix (the contract's ``paymentDigest``).

    :param value: ``int`` wei, 0 <= value < 2**256 (cumulative).
    :raises ValueError: a malformed address or channel id, or a value outside uint256.
    """
    types = ["address", "bytes32", "uint256"]
    args: list = [_check_address("contract address", contract_address), check_channel_id(channel_id), value]
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 256):
        raise ValueError(f"claim value must be an int wei in [0, 2**256), got {value!r}")
    if token_contract is not None:
        types.append("address")
        args.append(_check_address("token contract", token_contract))
    return keccak(encode_packed(types, args))


def sign_claim(private_key: str | bytes, contract_address: str, channel_id: str, value: int,
               token_contract: Optional[str] = None) -> str:
    """Sign a claim for a cumulative ``value`` wei, as the channel's sender.

    :param private_key: the sender's secp256k1 key (``0x`` hex or 32 bytes).
    :returns: ``0x`` + 130 hex digits, r‖s‖v with v ``1b``/``1c`` (RFC 6979, low s: the same
        bytes the JS plugin's bitcoin-ts secp256k1 produces).
    :raises ValueError: as :func:`payment_digest`.
    """
    digest = payment_digest(contract_address, channel_id, value, token_contract)
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


def make_claim(private_key: str | bytes, contract_address: str, channel_id: str, value: int,
               token_contract: Optional[str] = None) -> Claim:
    """:returns: a signed :class:`Claim` (see :func:`sign_claim`)."""
    signature = sign_claim(private_key, contract_address, channel_id, value, token_contract)
    return Claim(channel_id, signature, value, contract_address, token_contract)


def recover_signer(claim: Claim) -> str:
    """The address whose key signed ``claim`` (checksummed).

    :raises InvalidSignatureError: a malformed signature or one that recovers no key.
    :raises ValueError: a malformed address, channel id or value in the claim.
    """
    digest = payment_digest(claim.contract_address, claim.channel_id, claim.value, claim.token_contract)
    sig = claim.signature
    if not (isinstance(sig, str) and sig[:2] == "0x" and len(sig) == 132):
        raise InvalidSignatureError(f"claim signature must be 0x + 130 hex digits (r‖s‖v), got {sig!r}")
    try:
        raw = bytes.fromhex(sig[2:])
    except ValueError:
        raise InvalidSignatureError(f"claim signature is not hex: {sig!r}") from None
    v = _V_BYTES.get(raw[64])
    if v is None:
        raise InvalidSignatureError(f"claim signature v must be 1b or 1c (or 00/01), got {raw[64]:02x}")
    try:
        return Account.recover_message(encode_defunct(primitive=digest), signature=raw[:64] + bytes((v,)))
    except Exception as exc:  # eth-keys raises BadSignature / ValidationError for r, s out of range
        raise InvalidSignatureError(f"claim signature recovers no key: {exc}") from None


def address_of(private_key: str | bytes) -> str:
    """:returns: the checksummed address of ``private_key``."""
    return Account.from_key(private_key).address
