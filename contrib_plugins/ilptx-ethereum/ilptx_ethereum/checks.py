"""The incoming-claim checks of ``ilp-plugin-ethereum`` 3.0.0-beta.20 (``src/account.ts``,
``validateClaim``), as pure functions over a :class:`~ilptx_ethereum.model.ChannelSnapshot`.

:func:`check_incoming_claim` makes every check the JS plugin makes, in its order, and
returns the credit the claim allows; each failure is its own :class:`InvalidClaimError`
subclass whose message says what was wrong (the JS plugin only logs and ignores such a claim;
the caller logs the message and credits nothing). Two failures can pass on a fresher
snapshot -- the channel not yet mined (:class:`ChannelNotFoundError`) and a deposit not yet
seen (:class:`ValueAboveChannelError`): the JS plugin refetches the channel up to 20 times
250 ms apart before giving up; those classes have ``retryable = True``.

Units: claim and channel values ``int`` wei (scale 18); the credit is ``int`` gwei (scale 9,
the plugin's ILP amounts) with the wei below one gwei kept as a leftover (the JS plugin rounds
it down and drops it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ilptx.settlement import SCALE_GWEI, SCALE_WEI, convert_scale

from ilptx_ethereum.claims import InvalidSignatureError, recover_signer
from ilptx_ethereum.model import ChannelSnapshot, Claim

__all__ = [
    "InvalidClaimError", "NegativeValueError", "ChannelNotFoundError", "ChannelClosedError", "NotReceiverError",
    "DisputePeriodTooShortError", "WrongChannelError", "WrongContractError", "WrongTokenError",
    "SignerNotSenderError", "ValueAboveChannelError", "ChannelLinkedElsewhereError", "ClaimNotIncreasedError",
    "IncomingCredit", "check_incoming_claim",
]


class InvalidClaimError(ValueError):
    """An incoming claim that must not be credited. ``retryable``: whether a fresher channel
    snapshot could make it pass."""

    retryable = False


class NegativeValueError(InvalidClaimError):
    """The claim's value is below 0 (the decoder refuses that already; checked again as the JS does)."""


class ChannelNotFoundError(InvalidClaimError):
    """The first claim names a channel the contract does not hold (not opened, or not yet mined)."""

    retryable = True


class ChannelClosedError(InvalidClaimError):
    """The channel of earlier claims is no longer on chain (claimed or settled)."""


class NotReceiverError(InvalidClaimError):
    """The channel pays someone else."""


class DisputePeriodTooShortError(InvalidClaimError):
    """The channel's settling period is below ``minIncomingDisputePeriod``: its sender could take
    the money back before we claim."""


class WrongChannelError(InvalidClaimError):
    """The claim is for another channel than the one this account's earlier claims used."""


class WrongContractError(InvalidClaimError):
    """The claim is for another contract (or network) than ours."""


class WrongTokenError(InvalidClaimError):
    """The claim or channel is for another asset (an ERC-20 token instead of ETH, or another token)."""


class SignerNotSenderError(InvalidClaimError):
    """The signature is malformed, or was not made by the channel's sender."""


class ValueAboveChannelError(InvalidClaimError):
    """The claim is for more wei than the channel holds (possibly a deposit not yet seen)."""

    retryable = True


class ChannelLinkedElsewhereError(InvalidClaimError):
    """The channel already pays another account of ours (one channel, one account)."""


class ClaimNotIncreasedError(InvalidClaimError):
    """The claim's total is not above the best claim already credited (a replay or a lower total)."""


@dataclass(frozen=True)
class IncomingCredit:
    """What an accepted claim allows.

    :ivar increment_wei: ``int`` wei the claim adds over the previous best (>= 0; 0 only for
        the first claim of a channel, e.g. the zero claim sent after ``open``).
    :ivar amount_gwei: ``int`` gwei to credit to the account now.
    :ivar leftover_wei: ``int`` wei (< 10**9) below one gwei, to carry into the next credit.
    :ivar best_value: ``int`` wei, the new best claim total (the claim's value) to record.
    :ivar first: ``True`` when this claim links the channel to the account (record the link).
    """

    increment_wei: int
    amount_gwei: int
    leftover_wei: int
    best_value: int
    first: bool


def _same(a: Optional[str], b: Optional[str]) -> bool:
    return (a or "").lower() == (b or "").lower()


def check_incoming_claim(
    claim: Claim,
    channel: Optional[ChannelSnapshot],
    *,
    our_address: str,
    contract_address: str,
    account: str,
    min_dispute_period: int,
    previous: Optional[tuple[str, int]] = None,
    linked_account: Optional[str] = None,
    token_contract: Optional[str] = None,
    leftover_wei: int = 0,
) -> IncomingCredit:
    """Check an incoming ``claim`` against the on-chain ``channel`` it names, as the JS plugin does.

    :param channel: the contract's view of ``claim.channel_id`` (``None``: not on chain).
    :param our_address: our Ethereum address (must be the receiver).
    :param contract_address: the ``Unidirectional`` contract we accept claims for.
    :param account: the account the claim came from.
    :param min_dispute_period: ``int`` blocks, ``minIncomingDisputePeriod`` (checked on the first
        claim of a channel, as in the JS).
    :param previous: ``(channel_id, best_value_wei)`` of this account's best credited claim, or
        ``None`` before its first.
    :param linked_account: the account ``claim.channel_id`` is linked to already (the JS store key
        ``<channelId>:incoming-channel``), or ``None``.
    :param token_contract: the ERC-20 token we settle in, or ``None`` for ETH.
    :param leftover_wei: wei below one gwei carried from the previous credit.
    :returns: :class:`IncomingCredit`; credit = min(value, channel value) − previous best, in wei,
        converted to gwei keeping the remainder.
    :raises InvalidClaimError: one subclass per failed check (see the module docstring).
    """
    if previous is None:
        if channel is None:
            raise ChannelNotFoundError(f"channel {claim.channel_id} does not exist on contract {contract_address}")
        if not _same(channel.receiver, our_address):
            raise NotReceiverError(f"channel {claim.channel_id} pays {channel.receiver}, not us ({our_address})")
        if channel.settling_period < min_dispute_period:
            raise DisputePeriodTooShortError(
                f"channel {claim.channel_id} has a dispute period of {channel.settling_period} blocks, "
                f"below the minimum of {min_dispute_period} (minIncomingDisputePeriod)")
    else:
        if channel is None:
            raise ChannelClosedError(f"channel {claim.channel_id} is closed on chain (claimed or settled)")
        if not _same(claim.channel_id, previous[0]):
            raise WrongChannelError(
                f"claim is for channel {claim.channel_id}, but account {account} is linked to channel {previous[0]}")
    if claim.value < 0:
        raise NegativeValueError(f"claim value is negative: {claim.value} wei")
    if not _same(claim.contract_address, contract_address):
        raise WrongContractError(
            f"claim is for contract {claim.contract_address}, we use {contract_address} (another contract or network)")
    if token_contract is not None:
        if not _same(channel.token_contract, token_contract):
            raise WrongTokenError(
                f"channel {claim.channel_id} is for token {channel.token_contract}, not {token_contract}")
        if not _same(claim.token_contract, token_contract):
            raise WrongTokenError(f"claim is for token {claim.token_contract}, not {token_contract}")
    elif claim.token_contract is not None:
        raise WrongTokenError(f"claim is for ERC-20 token {claim.token_contract}, not ETH")
    try:
        signer = recover_signer(claim)
    except (InvalidSignatureError, ValueError) as exc:
        raise SignerNotSenderError(f"claim signature is invalid: {exc}") from None
    if not _same(signer, channel.sender):
        raise SignerNotSenderError(f"claim is signed by {signer}, not by the channel's sender {channel.sender}")
    if claim.value > channel.value:
        raise ValueAboveChannelError(
            f"claim for {claim.value} wei is above the {channel.value} wei in channel {claim.channel_id}")
    first = previous is None
    if first and linked_account is not None and linked_account != account:
        raise ChannelLinkedElsewhereError(f"channel {claim.channel_id} is already linked to account {linked_account}")
    increment = min(claim.value, channel.value) - (0 if first else previous[1])
    if increment <= 0 and not first:
        raise ClaimNotIncreasedError(
            f"claim total {claim.value} wei is not above the best claim of {previous[1]} wei already credited")
    amount_gwei, leftover = convert_scale(increment, SCALE_WEI, SCALE_GWEI, leftover_wei)
    return IncomingCredit(increment, amount_gwei, leftover, claim.value, first)
