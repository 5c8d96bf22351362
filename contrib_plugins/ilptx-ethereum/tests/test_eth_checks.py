"""The incoming-claim checks (account.ts validateClaim) and the gwei credit they allow, without a chain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ilptx_ethereum import checks
from ilptx_ethereum.checks import IncomingCredit, check_incoming_claim
from ilptx_ethereum.claims import address_of, make_claim
from ilptx_ethereum.model import ChannelSnapshot, Claim

SENDER_KEY = "0x" + "01" * 32
OTHER_KEY = "0x" + "02" * 32
US = address_of("0x" + "03" * 32)
CONTRACT = "0x" + "c0" * 20
TOKEN = "0x" + "70" * 20
CHANNEL = "0x" + "ab" * 32
GWEI = 10 ** 9
DEPOSIT = 50_000_000 * GWEI + 7
CH = ChannelSnapshot(CHANNEL, CONTRACT, address_of(SENDER_KEY), US, DEPOSIT, 17280)


def _check(claim: Claim, channel=CH, **kw) -> IncomingCredit:
    args = dict(our_address=US, contract_address=CONTRACT, account="peer", min_dispute_period=17280)
    args.update(kw)
    return check_incoming_claim(claim, channel, **args)


def _claim(value: int, key=SENDER_KEY, channel=CHANNEL, contract=CONTRACT, token=None) -> Claim:
    return make_claim(key, contract, channel, value, token)


def test_first_claim_credits_whole_value_in_gwei_keeping_wei():
    """A first claim of 1.5 gwei + 3 wei credits 1 gwei, keeps 0.5 gwei + 3 wei as leftover, and links the channel."""
    credit = _check(_claim(1_500_000_003))
    assert credit == IncomingCredit(1_500_000_003, 1, 500_000_003, 1_500_000_003, True)


def test_next_claim_credits_increment_plus_leftover():
    """The next claim credits (total − previous best + leftover) in gwei; 3 claims add up to exactly the total."""
    total_gwei, leftover, best = 0, 0, None
    for value in (1_500_000_003, 2_000_000_000, 3_999_999_999):
        credit = _check(_claim(value), previous=best, leftover_wei=leftover)
        total_gwei, leftover, best = total_gwei + credit.amount_gwei, credit.leftover_wei, (CHANNEL, credit.best_value)
    assert total_gwei * GWEI + leftover == 3_999_999_999
    assert (total_gwei, leftover) == (3, 999_999_999)


def test_zero_claim_after_open_accepted_with_no_credit():
    """The zero claim the JS plugin sends after open is accepted (links the channel) and credits nothing."""
    assert _check(_claim(0)) == IncomingCredit(0, 0, 0, 0, True)


def test_claim_of_whole_deposit_accepted():
    """A claim for exactly the channel's value is accepted."""
    assert _check(_claim(DEPOSIT)).increment_wei == DEPOSIT


def test_channel_not_found_is_retryable():
    """A first claim on a channel the contract does not hold fails with ChannelNotFoundError (retryable)."""
    with pytest.raises(checks.ChannelNotFoundError, match="does not exist") as err:
        _check(_claim(1), channel=None)
    assert err.value.retryable


def test_closed_channel_after_earlier_claims():
    """A later claim on a channel no longer on chain fails with ChannelClosedError."""
    with pytest.raises(checks.ChannelClosedError, match="closed on chain"):
        _check(_claim(2), channel=None, previous=(CHANNEL, 1))


def test_receiver_must_be_us():
    """A channel paying another address fails with NotReceiverError."""
    with pytest.raises(checks.NotReceiverError, match="not us"):
        _check(_claim(1), channel=replace(CH, receiver=address_of(OTHER_KEY)))


def test_receiver_compared_case_insensitively():
    """Our address in lower case is still us (the JS compares lower-cased)."""
    assert _check(_claim(1), our_address=US.lower()).first


def test_dispute_period_below_minimum():
    """A settling period one block below minIncomingDisputePeriod fails with DisputePeriodTooShortError."""
    with pytest.raises(checks.DisputePeriodTooShortError, match="17279 blocks, below the minimum of 17280"):
        _check(_claim(1), channel=replace(CH, settling_period=17279))


def test_wrong_channel_for_linked_account():
    """A claim on another channel than the account's linked one fails with WrongChannelError."""
    other = "0x" + "cd" * 32
    with pytest.raises(checks.WrongChannelError, match="linked to channel"):
        _check(_claim(5, channel=other), channel=replace(CH, channel_id=other), previous=(CHANNEL, 1))


def test_negative_value():
    """A claim with a negative value fails with NegativeValueError (after the channel checks, as in the JS)."""
    with pytest.raises(checks.NegativeValueError, match="negative: -1 wei"):
        _check(Claim(CHANNEL, _claim(0).signature, -1, CONTRACT))


def test_wrong_contract():
    """A claim for another contract fails with WrongContractError."""
    with pytest.raises(checks.WrongContractError, match="another contract"):
        _check(_claim(1, contract="0x" + "c1" * 20))


def test_token_claim_when_we_settle_eth():
    """A claim naming an ERC-20 token when we settle in ETH fails with WrongTokenError."""
    with pytest.raises(checks.WrongTokenError, match="not ETH"):
        _check(_claim(1, token=TOKEN))


def test_token_channel_and_claim_must_match_ours():
    """With a token configured, the channel's and the claim's token must both be ours; then the claim passes."""
    with pytest.raises(checks.WrongTokenError, match="channel .* is for token None"):
        _check(_claim(1, token=TOKEN), token_contract=TOKEN)
    token_channel = replace(CH, token_contract=TOKEN)
    with pytest.raises(checks.WrongTokenError, match="claim is for token None"):
        _check(_claim(1), channel=token_channel, token_contract=TOKEN)
    assert _check(_claim(1, token=TOKEN), channel=token_channel, token_contract=TOKEN.upper().replace("X", "x")).first


def test_wrong_signer():
    """A claim signed by someone other than the channel's sender fails with SignerNotSenderError."""
    with pytest.raises(checks.SignerNotSenderError, match="not by the channel's sender"):
        _check(_claim(1, key=OTHER_KEY))


def test_malformed_signature_is_signer_error():
    """A signature that recovers no key fails with SignerNotSenderError (not another exception)."""
    with pytest.raises(checks.SignerNotSenderError, match="signature is invalid"):
        _check(Claim(CHANNEL, "0x" + "00" * 64 + "1b", 1, CONTRACT))


def test_tampered_value_fails_signature():
    """A genuine signature with a raised value fails the signer check."""
    good = _claim(10)
    with pytest.raises(checks.SignerNotSenderError):
        _check(replace(good, value=11))


def test_value_above_channel_is_retryable():
    """A claim for one wei more than the channel holds fails with ValueAboveChannelError (retryable: a deposit)."""
    with pytest.raises(checks.ValueAboveChannelError, match="above the") as err:
        _check(_claim(DEPOSIT + 1))
    assert err.value.retryable


def test_channel_linked_to_another_account():
    """A first claim on a channel linked to another account fails with ChannelLinkedElsewhereError."""
    with pytest.raises(checks.ChannelLinkedElsewhereError, match="already linked to account alice"):
        _check(_claim(1), linked_account="alice")


def test_channel_linked_to_this_account_is_fine():
    """A first claim on a channel already linked to this same account (a crash after linking) is accepted."""
    assert _check(_claim(1), linked_account="peer").increment_wei == 1


@pytest.mark.parametrize("value", [100, 99, 0])
def test_equal_or_lower_total_rejected(value):
    """A claim whose total is not above the best credited (replay, lower total) fails with ClaimNotIncreasedError."""
    with pytest.raises(checks.ClaimNotIncreasedError, match="not above the best claim of 100 wei"):
        _check(_claim(value), previous=(CHANNEL, 100))


def test_errors_are_distinct_invalid_claim_errors():
    """Every check failure is its own subclass of InvalidClaimError (a ValueError)."""
    classes = [checks.NegativeValueError, checks.ChannelNotFoundError, checks.ChannelClosedError,
               checks.NotReceiverError,
               checks.DisputePeriodTooShortError, checks.WrongChannelError, checks.WrongContractError,
               checks.WrongTokenError, checks.SignerNotSenderError, checks.ValueAboveChannelError,
               checks.ChannelLinkedElsewhereError, checks.ClaimNotIncreasedError]
    assert len(set(classes)) == 12
    assert all(issubclass(c, checks.InvalidClaimError) and issubclass(c, ValueError) for c in classes)
    assert [c for c in classes if c.retryable] == [checks.ChannelNotFoundError, checks.ValueAboveChannelError]

