"""The rippled double's rules, one test per rule and result code, on the blobs the client signs
(:func:`ilptx_xrp_paychan.rippled.sign_transaction`), against the pure :class:`Ledger` engine."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from xrpl import CryptoAlgorithm
from xrpl.core import keypairs
from xrpl.core.binarycodec import decode, encode, encode_for_signing, encode_for_signing_claim
from xrpl.models.amounts import IssuedCurrencyAmount
from xrpl.models.transactions import (Payment, PaymentChannelClaim, PaymentChannelCreate, PaymentChannelFund)

from conftest import make_wallet
from ilptx_xrp_paychan.rippled import sign_transaction
from rippled_double import BASE_FEE, RESERVE_BASE, RESERVE_INC, RIPPLE_EPOCH, TF_CLOSE, TF_RENEW, Ledger, RpcError
from rippled_double import channel_id, tx_hash

START = 1_800_000_000
XRP = 1_000_000


class World:
    """A ledger with two funded accounts (``alice`` pays into channels, ``bob`` receives)."""

    def __init__(self, algorithm: CryptoAlgorithm = CryptoAlgorithm.ED25519) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.alice, self.bob, self.carol = make_wallet(algorithm), make_wallet(algorithm), make_wallet(algorithm)
        self.ledger = Ledger(self.clock.seconds, {self.alice.classic_address: 100 * XRP,
                                                  self.bob.classic_address: 20 * XRP,
                                                  self.carol.classic_address: 20 * XRP})
        self.issued = 140 * XRP

    def blob(self, tx, wallet, *, fee: int = BASE_FEE, sequence=None, lls=None) -> str:
        acct = self.ledger.account(tx.account)
        seq = sequence if sequence is not None else (acct.sequence if acct else 1)
        return sign_transaction(tx, wallet, fee=fee, sequence=seq,
                                last_ledger_sequence=lls if lls is not None else self.ledger.current_index + 5)[0]

    def submit(self, tx, wallet, **kw) -> str:
        return self.ledger.submit(self.blob(tx, wallet, **kw))["engine_result"]

    def balance(self, wallet) -> int:
        return self.ledger.account(wallet.classic_address).balance

    def held(self) -> int:
        """All drops in accounts and channels: with the fees destroyed, always what was issued."""
        state = self.ledger.state(False)
        return sum(a.balance for a in state.accounts.values()) + sum(c.amount - c.balance
                                                                     for c in state.channels.values())

    def conserved(self) -> bool:
        return self.held() == self.ledger.total_coins() and self.issued - self.ledger.total_coins() >= 0

    def open_channel(self, amount: int = 10 * XRP, settle_delay: int = 3600, **extra) -> str:
        seq = self.ledger.account(self.alice.classic_address).sequence
        code = self.submit(PaymentChannelCreate(account=self.alice.classic_address, amount=str(amount),
                                                destination=self.bob.classic_address, settle_delay=settle_delay,
                                                public_key=self.alice.public_key, **extra), self.alice)
        assert code == "tesSUCCESS"
        self.ledger.close()
        return channel_id(self.alice.classic_address, self.bob.classic_address, seq)

    def claim_sig(self, chan: str, drops: int, wallet=None) -> str:
        msg = bytes.fromhex(encode_for_signing_claim({"channel": chan, "amount": str(drops)}))
        return keypairs.sign(msg, (wallet or self.alice).private_key)

    def claim(self, chan: str, balance: int, *, by=None, signer=None, amount=None, flags: int = 0, signed=True):
        by = by or self.bob
        signer = signer or self.alice
        fields = {"account": by.classic_address, "channel": chan, "flags": flags}
        if balance:
            fields["balance"] = str(balance)
        if signed:
            fields.update(amount=str(amount or balance), public_key=signer.public_key,
                          signature=self.claim_sig(chan, amount or balance, signer))
        return self.submit(PaymentChannelClaim(**fields), by)

    def pass_time(self, seconds: int) -> None:
        self.ledger.advance(seconds)
        self.ledger.close()


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(params=[CryptoAlgorithm.ED25519, CryptoAlgorithm.SECP256K1], ids=["ed25519", "secp256k1"])
def keyed_world(request) -> World:
    """A world whose keys are ed25519, then secp256k1 (the signature checks under both)."""
    return World(request.param)


def raw_blob(tx: dict, wallet) -> str:
    """Sign a transaction JSON that xrpl-py's models would refuse, with the binary codec itself."""
    tx = dict(tx, SigningPubKey=wallet.public_key)
    tx["TxnSignature"] = keypairs.sign(bytes.fromhex(encode_for_signing(tx)), wallet.private_key)
    return encode(tx)


def pay(w: World, src, dst: str, drops: int, **kw) -> str:
    return w.submit(Payment(account=src.classic_address, destination=dst, amount=str(drops)), src, **kw)


def _resign_field(blob: str, **changes) -> str:
    tx = decode(blob)
    tx.update(changes)
    return encode(tx)


# -- signatures and the common fields --------------------------------------------------------

def test_payment_moves_drops_and_destroys_the_fee(keyed_world):
    """A signed XRP Payment: tesSUCCESS; the receiver gets the amount, the fee leaves existence."""
    w = keyed_world
    before = w.balance(w.alice), w.balance(w.bob)
    assert pay(w, w.alice, w.bob.classic_address, 5 * XRP) == "tesSUCCESS"
    assert (w.balance(w.alice), w.balance(w.bob)) == (before[0] - 5 * XRP - 10, before[1] + 5 * XRP)
    assert w.ledger.total_coins() == w.issued - 10 and w.conserved()


def test_forged_txn_signature_is_rejected_before_the_ledger(keyed_world):
    """A blob whose TxnSignature does not verify: error invalidTransaction, nothing charged."""
    w = keyed_world
    blob = w.blob(Payment(account=w.alice.classic_address, destination=w.bob.classic_address,
                              amount="1000"), w.alice)
    forged = _resign_field(blob, Amount="2000")        # the signature was over 1000 drops
    with pytest.raises(RpcError) as err:
        w.ledger.submit(forged)
    assert err.value.error == "invalidTransaction" and "bad signature" in err.value.message
    assert w.ledger.total_coins() == w.issued


def test_unsigned_blob_is_rejected():
    """A blob without TxnSignature (as ``sign`` was never called): invalidTransaction."""
    w = World()
    blob = w.blob(Payment(account=w.alice.classic_address, destination=w.bob.classic_address, amount="1"), w.alice)
    tx = decode(blob)
    del tx["TxnSignature"]
    with pytest.raises(RpcError, match="invalidTransaction"):
        w.ledger.submit(encode(tx))


def test_missing_required_field_is_rejected_before_the_ledger():
    """A signed PaymentChannelCreate without SettleDelay: invalidTransaction, "Field ... is required"."""
    w = World()
    blob = raw_blob({"TransactionType": "PaymentChannelCreate", "Account": w.alice.classic_address, "Sequence": 1,
                     "Destination": w.bob.classic_address, "Amount": "1000", "Fee": "10",
                     "PublicKey": w.alice.public_key}, w.alice)
    with pytest.raises(RpcError, match="SettleDelay' is required"):
        w.ledger.submit(blob)


def test_other_transaction_types_are_not_supported():
    """An AccountSet (validly signed) is refused as notSupported: the double never pretends to apply it."""
    w = World()
    blob = raw_blob({"TransactionType": "AccountSet", "Account": w.alice.classic_address, "Sequence": 1,
                     "Fee": "10"}, w.alice)
    with pytest.raises(RpcError, match="notSupported"):
        w.ledger.submit(blob)


def test_key_that_is_not_the_accounts_master_key_is_tef_bad_auth_master(keyed_world):
    """Signed by carol's key for alice's account (no regular keys): tefBAD_AUTH_MASTER, no fee."""
    w = keyed_world
    code = w.submit(Payment(account=w.alice.classic_address, destination=w.bob.classic_address,
                                amount="1000"), w.carol)
    assert code == "tefBAD_AUTH_MASTER" and w.balance(w.alice) == 100 * XRP


def test_fee_below_the_base_fee_is_tel_insuf_fee_p(world):
    """Fee 9 drops < the 10-drop reference cost: telINSUF_FEE_P, not applied."""
    assert pay(world, world.alice, world.bob.classic_address, 1, fee=9) == "telINSUF_FEE_P"
    assert world.ledger.account(world.alice.classic_address).sequence == 1


def test_fee_above_the_balance_is_ter_insuf_fee_b():
    """An account holding less than the fee: terINSUF_FEE_B."""
    w = World()
    poor = make_wallet()
    w.ledger.fund(poor.classic_address, 5)
    assert pay(w, poor, w.bob.classic_address, 1) == "terINSUF_FEE_B"


def test_fee_not_in_xrp_is_tem_bad_fee():
    """A Fee given as an issued-currency amount (validly signed): temBAD_FEE."""
    w = World()
    blob = raw_blob({"TransactionType": "Payment", "Account": w.alice.classic_address, "Sequence": 1,
                     "Destination": w.bob.classic_address, "Amount": "1",
                     "Fee": {"currency": "USD", "issuer": w.carol.classic_address, "value": "1"}}, w.alice)
    assert w.ledger.submit(blob)["engine_result"] == "temBAD_FEE"


def test_used_sequence_is_tef_past_seq(world):
    """Resubmitting with a consumed Sequence: tefPAST_SEQ."""
    assert pay(world, world.alice, world.bob.classic_address, 1000) == "tesSUCCESS"
    assert pay(world, world.alice, world.bob.classic_address, 1000, sequence=1) == "tefPAST_SEQ"


def test_future_sequence_is_ter_pre_seq(world):
    """A Sequence ahead of the account's: terPRE_SEQ, not applied (the double does not hold it)."""
    assert pay(world, world.alice, world.bob.classic_address, 1000, sequence=7) == "terPRE_SEQ"
    assert world.balance(world.alice) == 100 * XRP


def test_passed_last_ledger_sequence_is_tef_max_ledger(world):
    """LastLedgerSequence below the open ledger's index: tefMAX_LEDGER."""
    world.ledger.close()
    world.ledger.close()
    assert pay(world, world.alice, world.bob.classic_address, 1000,
               lls=world.ledger.current_index - 1) == "tefMAX_LEDGER"


def test_unknown_account_is_ter_no_account(new_wallet):
    """A transaction from an account not in the ledger: terNO_ACCOUNT."""
    w = World()
    ghost = new_wallet()
    assert pay(w, ghost, w.bob.classic_address, 1000, sequence=1) == "terNO_ACCOUNT"


def test_unknown_flag_is_tem_invalid_flag():
    """A PaymentChannelCreate with a flag it does not define: temINVALID_FLAG."""
    w = World()
    code = w.submit(PaymentChannelCreate(account=w.alice.classic_address, amount="1000",
                                         destination=w.bob.classic_address, settle_delay=1,
                                         public_key=w.alice.public_key, flags=0x00010000), w.alice)
    assert code == "temINVALID_FLAG"


def test_transaction_is_validated_only_when_its_ledger_closes():
    """tx shows validated false in the open ledger, true with ledger_index after the close."""
    w = World()
    blob = w.blob(Payment(account=w.alice.classic_address, destination=w.bob.classic_address, amount="1"), w.alice)
    w.ledger.submit(blob)
    record = w.ledger.txs[tx_hash(blob)]
    assert record.json()["validated"] is False
    index = w.ledger.current_index
    w.ledger.close()
    assert record.json()["validated"] is True and record.json()["ledger_index"] == index


# -- Payment -------------------------------------------------------------------------------

def test_payment_creating_an_account_needs_the_base_reserve(world, new_wallet):
    """XRP to a new address below the base reserve: tecNO_DST_INSUF_XRP, the fee is still charged."""
    fresh = new_wallet()
    assert pay(world, world.alice, fresh.classic_address, RESERVE_BASE - 1) == "tecNO_DST_INSUF_XRP"
    assert world.balance(world.alice) == 100 * XRP - 10 and world.ledger.account(fresh.classic_address) is None
    assert world.ledger.account(world.alice.classic_address).sequence == 2


def test_payment_of_the_reserve_creates_the_account(world, new_wallet):
    """XRP ≥ the base reserve to a new address creates it, sequence = that ledger's index."""
    fresh = new_wallet()
    assert pay(world, world.alice, fresh.classic_address, RESERVE_BASE) == "tesSUCCESS"
    acct = world.ledger.account(fresh.classic_address)
    assert acct.balance == RESERVE_BASE and acct.sequence == world.ledger.current_index


def test_payment_dipping_into_the_reserve_is_tec_unfunded_payment(world):
    """Sending all but less than the reserve: tecUNFUNDED_PAYMENT; only the fee moves."""
    assert pay(world, world.alice, world.bob.classic_address, 100 * XRP - RESERVE_BASE + 1) == "tecUNFUNDED_PAYMENT"
    assert world.balance(world.alice) == 100 * XRP - 10 and world.conserved()


def test_payment_to_self_is_tem_redundant(world):
    """A Payment to its own account: temREDUNDANT."""
    blob = raw_blob({"TransactionType": "Payment", "Account": world.alice.classic_address, "Sequence": 1,
                     "Destination": world.alice.classic_address, "Amount": "1", "Fee": "10"}, world.alice)
    assert world.ledger.submit(blob)["engine_result"] == "temREDUNDANT"


def test_issued_currency_is_not_supported(world):
    """The double is XRP only: an issued-currency Amount is refused as notSupported, not faked."""
    tx = Payment(account=world.alice.classic_address, destination=world.bob.classic_address,
                 amount=IssuedCurrencyAmount(currency="USD", issuer=world.carol.classic_address, value="1"))
    with pytest.raises(RpcError, match="notSupported"):
        world.ledger.submit(world.blob(tx, world.alice))


# -- PaymentChannelCreate --------------------------------------------------------------------

def test_create_locks_the_amount_at_the_computed_channel_id(world):
    """PaymentChannelCreate: the channel sits at SHA-512Half(0078‖src‖dst‖seq) with Amount, Balance 0."""
    chan = world.open_channel(10 * XRP, settle_delay=3600)
    entry = world.ledger.channel(chan, validated=True)
    assert (entry.amount, entry.balance, entry.settle_delay, entry.public_key) == (10 * XRP, 0, 3600,
                                                                                   world.alice.public_key)
    acct = world.ledger.account(world.alice.classic_address)
    assert acct.balance == 90 * XRP - 10 and acct.owner_count == 1 and world.conserved()


def test_create_to_a_missing_destination_is_tec_no_dst(world, new_wallet):
    """A channel to an address that does not exist: tecNO_DST."""
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount="1000",
                                             destination=new_wallet().classic_address, settle_delay=1,
                                             public_key=world.alice.public_key), world.alice)
    assert code == "tecNO_DST"


def test_create_beyond_the_balance_is_tec_unfunded(world):
    """Amount above balance − reserve (owner count + 1): tecUNFUNDED."""
    too_much = 100 * XRP - (RESERVE_BASE + RESERVE_INC) + 1
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount=str(too_much),
                                             destination=world.bob.classic_address, settle_delay=1,
                                             public_key=world.alice.public_key), world.alice)
    assert code == "tecUNFUNDED" and world.ledger.channels_of(world.alice.classic_address) == []


def test_create_without_the_owner_reserve_is_tec_insufficient_reserve():
    """An account below base + one owner reserve: tecINSUFFICIENT_RESERVE."""
    w = World()
    poor = make_wallet()
    w.ledger.fund(poor.classic_address, RESERVE_BASE + RESERVE_INC - 1)
    code = w.submit(PaymentChannelCreate(account=poor.classic_address, amount="1", destination=w.bob.classic_address,
                                         settle_delay=1, public_key=poor.public_key), poor)
    assert code == "tecINSUFFICIENT_RESERVE"


def test_create_to_self_is_tem_dst_is_src(world):
    """A channel to its own account: temDST_IS_SRC."""
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount="1000",
                                             destination=world.alice.classic_address, settle_delay=1,
                                             public_key=world.alice.public_key), world.alice)
    assert code == "temDST_IS_SRC"


def test_create_of_zero_drops_is_tem_bad_amount(world):
    """Amount 0: temBAD_AMOUNT."""
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount="0",
                                             destination=world.bob.classic_address, settle_delay=1,
                                             public_key=world.alice.public_key), world.alice)
    assert code == "temBAD_AMOUNT"


def test_create_with_a_bad_public_key_is_tem_malformed(world):
    """A PublicKey that is no ed25519/secp256k1 key: temMALFORMED."""
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount="1000",
                                             destination=world.bob.classic_address, settle_delay=1,
                                             public_key="AB" * 33), world.alice)
    assert code == "temMALFORMED"


def test_create_with_cancel_after_in_the_past_is_tec_expired(world):
    """CancelAfter at or before the last close time (fixPayChanCancelAfter): tecEXPIRED."""
    code = world.submit(PaymentChannelCreate(account=world.alice.classic_address, amount="1000",
                                             destination=world.bob.classic_address, settle_delay=1,
                                             public_key=world.alice.public_key,
                                             cancel_after=world.ledger.close_time), world.alice)
    assert code == "tecEXPIRED"


# -- PaymentChannelFund --------------------------------------------------------------------

def test_fund_adds_to_the_channel_amount(world):
    """PaymentChannelFund by the source: Amount rises by the funded drops."""
    chan = world.open_channel(1 * XRP)
    assert world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan,
                                           amount=str(2 * XRP)), world.alice) == "tesSUCCESS"
    assert world.ledger.channel(chan).amount == 3 * XRP and world.conserved()


def test_fund_by_another_account_is_tec_no_permission(world):
    """Only the source may fund: tecNO_PERMISSION for the destination."""
    chan = world.open_channel()
    assert world.submit(PaymentChannelFund(account=world.bob.classic_address, channel=chan, amount="1"),
                        world.bob) == "tecNO_PERMISSION"


def test_fund_of_a_missing_channel_is_tec_no_entry(world):
    """PaymentChannelFund of an id with no channel: tecNO_ENTRY."""
    assert world.submit(PaymentChannelFund(account=world.alice.classic_address, channel="AB" * 32, amount="1"),
                        world.alice) == "tecNO_ENTRY"


def test_fund_beyond_the_balance_is_tec_unfunded(world):
    """Funding more than balance − reserve: tecUNFUNDED."""
    chan = world.open_channel(10 * XRP)
    assert world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan,
                                           amount=str(90 * XRP)), world.alice) == "tecUNFUNDED"


def test_fund_expiration_before_settle_delay_is_tem_bad_expiration(world):
    """Expiration earlier than the last close time + SettleDelay: temBAD_EXPIRATION."""
    chan = world.open_channel(settle_delay=3600)
    code = world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan, amount="1",
                                           expiration=world.ledger.close_time + 3599), world.alice)
    assert code == "temBAD_EXPIRATION"


def test_fund_sets_an_expiration_after_settle_delay(world):
    """Expiration ≥ close time + SettleDelay is stored on the channel."""
    chan = world.open_channel(settle_delay=3600)
    when = world.ledger.close_time + 3600
    assert world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan, amount="1",
                                           expiration=when), world.alice) == "tesSUCCESS"
    assert world.ledger.channel(chan).expiration == when


def test_fund_of_an_expired_channel_closes_it(world):
    """Once Expiration passed, a Fund closes the channel instead: the locked drops go back."""
    chan = world.open_channel(10 * XRP, settle_delay=60)
    world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan, amount="1",
                                    expiration=world.ledger.close_time + 60), world.alice)
    world.pass_time(61)
    before = world.balance(world.alice)
    assert world.submit(PaymentChannelFund(account=world.alice.classic_address, channel=chan, amount=str(XRP)),
                        world.alice) == "tesSUCCESS"
    assert world.ledger.channel(chan) is None
    assert world.balance(world.alice) == before - 10 + 10 * XRP + 1 and world.conserved()


# -- PaymentChannelClaim -------------------------------------------------------------------

def test_destination_claim_with_the_channel_key_is_paid(keyed_world):
    """A claim signed by the channel key, sent by the destination: Balance and bob's drops rise."""
    w = keyed_world
    chan = w.open_channel(10 * XRP)
    before = w.balance(w.bob)
    assert w.claim(chan, 3 * XRP) == "tesSUCCESS"
    assert w.ledger.channel(chan).balance == 3 * XRP
    assert w.balance(w.bob) == before + 3 * XRP - 10 and w.conserved()


def test_claim_signed_with_another_key_is_tem_bad_signer(keyed_world):
    """A valid signature by carol's key (PublicKey carol's, not the channel's): temBAD_SIGNER."""
    w = keyed_world
    chan = w.open_channel()
    assert w.claim(chan, XRP, signer=w.carol) == "temBAD_SIGNER"
    assert w.ledger.channel(chan).balance == 0


def test_forged_claim_signature_is_tem_bad_signature(keyed_world):
    """A claim whose Signature is over another amount: temBAD_SIGNATURE, nothing paid, no fee."""
    w = keyed_world
    chan = w.open_channel()
    tx = PaymentChannelClaim(account=w.bob.classic_address, channel=chan, balance=str(5 * XRP),
                             amount=str(5 * XRP), public_key=w.alice.public_key,
                             signature=w.claim_sig(chan, XRP))
    before = w.balance(w.bob)
    assert w.submit(tx, w.bob) == "temBAD_SIGNATURE"
    assert w.balance(w.bob) == before


def test_claim_for_another_channel_is_tem_bad_signature(world):
    """A signature made for channel A presented on channel B: temBAD_SIGNATURE."""
    first, second = world.open_channel(), world.open_channel()
    tx = PaymentChannelClaim(account=world.bob.classic_address, channel=second, balance=str(XRP), amount=str(XRP),
                             public_key=world.alice.public_key, signature=world.claim_sig(first, XRP))
    assert world.submit(tx, world.bob) == "temBAD_SIGNATURE"


def test_claim_lowering_the_balance_is_tec_unfunded_payment(world):
    """Balance only rises: a claim at or below the channel's Balance is tecUNFUNDED_PAYMENT."""
    chan = world.open_channel()
    assert world.claim(chan, 3 * XRP) == "tesSUCCESS"
    assert world.claim(chan, 2 * XRP) == "tecUNFUNDED_PAYMENT"
    assert world.claim(chan, 3 * XRP) == "tecUNFUNDED_PAYMENT"
    assert world.ledger.channel(chan).balance == 3 * XRP and world.conserved()


def test_claim_above_the_channel_amount_is_tec_unfunded_payment(world):
    """A validly signed claim beyond the channel's Amount: tecUNFUNDED_PAYMENT, nothing paid."""
    chan = world.open_channel(10 * XRP)
    assert world.claim(chan, 10 * XRP + 1) == "tecUNFUNDED_PAYMENT"
    assert world.ledger.channel(chan).balance == 0


def test_balance_above_the_signed_amount_is_tem_bad_amount(world):
    """Balance greater than the claim's Amount: temBAD_AMOUNT."""
    chan = world.open_channel()
    assert world.claim(chan, 2 * XRP, amount=XRP) == "temBAD_AMOUNT"


def test_unsigned_claim_by_the_destination_is_tem_bad_signature(world):
    """The destination claiming a Balance without a Signature: temBAD_SIGNATURE."""
    chan = world.open_channel()
    assert world.claim(chan, XRP, signed=False) == "temBAD_SIGNATURE"


def test_source_may_pay_out_without_a_signature(world):
    """The source sends Balance without a claim: tesSUCCESS, bob is paid."""
    chan = world.open_channel()
    before = world.balance(world.bob)
    assert world.claim(chan, XRP, by=world.alice, signed=False) == "tesSUCCESS"
    assert world.balance(world.bob) == before + XRP


def test_claim_by_a_third_account_is_tec_no_permission(world):
    """Carol, neither source nor destination, with a valid claim: tecNO_PERMISSION."""
    chan = world.open_channel()
    assert world.claim(chan, XRP, by=world.carol) == "tecNO_PERMISSION"


def test_claim_on_a_missing_channel_is_tec_no_target(world):
    """A claim on an id with no channel: tecNO_TARGET."""
    assert world.claim("CD" * 32, XRP) == "tecNO_TARGET"


def test_close_and_renew_together_is_tem_malformed(world):
    """tfClose | tfRenew: temMALFORMED."""
    chan = world.open_channel()
    assert world.claim(chan, 0, by=world.alice, signed=False, flags=TF_CLOSE | TF_RENEW) == "temMALFORMED"


def test_destination_close_returns_the_rest_at_once(world):
    """The destination claims with tfClose: paid, channel gone, the remainder back to the source."""
    chan = world.open_channel(10 * XRP)
    alice = world.balance(world.alice)
    assert world.claim(chan, 4 * XRP, flags=TF_CLOSE) == "tesSUCCESS"
    assert world.ledger.channel(chan) is None
    assert world.balance(world.alice) == alice + 6 * XRP
    assert world.ledger.account(world.alice.classic_address).owner_count == 0 and world.conserved()


def test_source_close_waits_for_settle_delay(world):
    """The source's tfClose sets Expiration = close time + SettleDelay; the channel works until then."""
    chan = world.open_channel(10 * XRP, settle_delay=3600)
    closing = world.ledger.close_time + 3600
    assert world.claim(chan, 0, by=world.alice, signed=False, flags=TF_CLOSE) == "tesSUCCESS"
    assert world.ledger.channel(chan).expiration == closing
    world.pass_time(3000)                                  # before SettleDelay: claims still pay
    assert world.claim(chan, 2 * XRP) == "tesSUCCESS"
    assert world.ledger.channel(chan).balance == 2 * XRP


def test_claim_after_expiration_closes_without_paying(world):
    """After the Expiration passed, a (valid) claim closes the channel: no payout, rest to the source."""
    chan = world.open_channel(10 * XRP, settle_delay=3600)
    world.claim(chan, 0, by=world.alice, signed=False, flags=TF_CLOSE)
    world.pass_time(3601)
    bob, alice = world.balance(world.bob), world.balance(world.alice)
    assert world.claim(chan, 5 * XRP) == "tesSUCCESS"
    assert world.ledger.channel(chan) is None
    assert world.balance(world.bob) == bob - 10 and world.balance(world.alice) == alice + 10 * XRP
    assert world.conserved()


def test_source_close_of_a_dry_channel_is_immediate(world):
    """tfClose by the source when Balance == Amount: the channel closes at once."""
    chan = world.open_channel(XRP)
    world.claim(chan, XRP)
    assert world.claim(chan, 0, by=world.alice, signed=False, flags=TF_CLOSE) == "tesSUCCESS"
    assert world.ledger.channel(chan) is None


def test_renew_by_the_source_clears_the_expiration(world):
    """tfRenew from the source removes a pending Expiration."""
    chan = world.open_channel()
    world.claim(chan, 0, by=world.alice, signed=False, flags=TF_CLOSE)
    assert world.claim(chan, 0, by=world.alice, signed=False, flags=TF_RENEW) == "tesSUCCESS"
    assert world.ledger.channel(chan).expiration is None


def test_renew_by_the_destination_is_tec_no_permission(world):
    """Only the source may tfRenew: tecNO_PERMISSION for the destination."""
    chan = world.open_channel()
    assert world.claim(chan, 0, signed=False, flags=TF_RENEW) == "tecNO_PERMISSION"


def test_cancel_after_closes_the_channel_on_the_next_claim(world):
    """Past CancelAfter, any claim closes the channel instead of paying."""
    cancel = world.ledger.close_time + 100
    chan = world.open_channel(10 * XRP, cancel_after=cancel)
    world.pass_time(101)
    assert world.ledger.close_time >= cancel
    assert world.claim(chan, XRP) == "tesSUCCESS"
    assert world.ledger.channel(chan) is None and world.conserved()


def test_close_time_is_the_ripple_epoch_clock(world):
    """Ledger close times count seconds since 2000-01-01 (Ripple epoch) and strictly rise."""
    first = world.ledger.close_time
    world.ledger.close()
    assert first == START - RIPPLE_EPOCH and world.ledger.close_time == first + 1


def test_channel_id_matches_the_xrpl_js_vector():
    """channel_id reproduces xrpl.js ``hashes.hashPaymentChannel`` (its test vector: seq 82 → E357…7366)."""
    assert channel_id("rDx69ebzbowuqztksVDmZXjizTd12BVr4x", "rLFtVprxUEfsH54eCWKsZrEQzMDsx1wqso", 82) == (
        "E35708503B3C3143FB522D749AAFCC296E8060F0FB371A9A56FAE0B1ED127366")


def test_transaction_hash_is_xrpl_pys(world):
    """The double's and the client's tx hash equal xrpl-py's ``Transaction.get_hash`` of the same signed tx."""
    from xrpl.transaction import sign
    tx = Payment(account=world.alice.classic_address, destination=world.bob.classic_address, amount="1", fee="10",
                 sequence=1, last_ledger_sequence=9)
    signed = sign(tx, world.alice)
    assert tx_hash(signed.blob()) == signed.get_hash()
    assert sign_transaction(tx, world.alice, fee=10, sequence=1, last_ledger_sequence=9)[1] == signed.get_hash()


#: The claim of the XRPL docs' channel_authorize / channel_verify pages (signed by rippled; verified: true).
DOCS_CLAIM = {"Channel": "5DB01B7FFED6B67E6B0414DED11E051D2EE2B7619CE0EAA6286D67A3A4D5BDB3", "Balance": "1000000",
              "PublicKey": "023693F15967AE357D0327974AD46FE3C127113B1110D6044FD41E723689F81CC6",
              "Signature": "304402204EF0AFB78AC23ED1C472E74F4299C0C21F1B21D07EFC0A3838A420F76D783A40"
                           "0220154FB11B6F54320666E4C36CA7F686C16A3A0456800BBC43746F34AF50290064"}


def test_claim_check_accepts_the_xrpl_docs_claim_signed_by_rippled():
    """The double's claim-signature check passes rippled's own signature from the docs, fails it for 1 drop more."""
    Ledger._preflight_PaymentChannelClaim(dict(DOCS_CLAIM))
    with pytest.raises(Exception, match="temBAD_SIGNATURE"):
        Ledger._preflight_PaymentChannelClaim(dict(DOCS_CLAIM, Balance="1000001"))


def test_account_channels_public_key_is_base58_as_in_the_docs():
    """account_channels' public_key is the base58 account public key (the docs' aB44… for 023693…)."""
    from rippled_double.ledger import PayChannel
    chan = PayChannel(DOCS_CLAIM["Channel"], "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",
                      1, 0, 1, DOCS_CLAIM["PublicKey"])
    assert chan.account_channels_json()["public_key"] == "aB44YfzW24VDEJQ2UuLPV2PvqcPCSoLnL7y5M1EzhdW4LnK5xMS3"
