"""The ledger engine of the rippled double: accounts, PayChannels and the transaction rules.

Pure and synchronous (no I/O): :class:`Ledger` takes signed transaction blobs, checks them and
applies them to an *open ledger* as rippled does (``submit`` returns the preliminary result),
and :meth:`Ledger.close` closes that ledger, after which its transactions are *validated*.

The rules are the XRP Ledger's as the XRPL documentation states them; each rule cites its page
(https://xrpl.org/docs/references/protocol/... ; the result codes are those of
https://xrpl.org/docs/references/protocol/transactions/transaction-results), and the order of
the checks follows rippled's ``Transactor`` (preflight → preclaim → doApply) and ``PayChan.cpp``.
See ``README.md`` here for what the double leaves out. Amounts are ``int`` drops; times ``int``
seconds since the Ripple epoch (2000-01-01T00:00:00Z).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from xrpl.core import addresscodec, keypairs
from xrpl.core.binarycodec import decode, encode_for_signing, encode_for_signing_claim

#: Unix time of the Ripple epoch (https://xrpl.org/docs/references/protocol/data-types/basic-data-types#specifying-time).
RIPPLE_EPOCH = 946684800
#: Reference transaction cost in drops (https://xrpl.org/docs/concepts/transactions/transaction-cost).
BASE_FEE = 10
#: Base and owner reserve in drops, mainnet values since 2024-12 (https://xrpl.org/docs/concepts/accounts/reserves).
RESERVE_BASE = 1_000_000
RESERVE_INC = 200_000

#: Stand-alone rippled's genesis account and its well-known seed (secp256k1): it holds all XRP of
#: a new genesis ledger (https://xrpl.org/docs/infrastructure/testing-and-auditing/start-a-new-genesis-ledger-in-stand-alone-mode).
GENESIS_ADDRESS = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"
GENESIS_SEED = "snoPBrXtMeMyMHUVTgbuqAfg1SUTb"
GENESIS_DROPS = 100_000_000_000 * 1_000_000

#: https://xrpl.org/docs/references/protocol/transactions/common-fields#flags-field
TF_FULLY_CANONICAL_SIG = 0x80000000
TF_INNER_BATCH_TXN = 0x40000000
_UNIVERSAL = TF_FULLY_CANONICAL_SIG | TF_INNER_BATCH_TXN
#: https://xrpl.org/docs/references/protocol/transactions/types/paymentchannelclaim#paymentchannelclaim-flags
TF_RENEW = 0x00010000
TF_CLOSE = 0x00020000
#: https://xrpl.org/docs/references/protocol/transactions/types/payment#payment-flags
_PAYMENT_FLAGS = 0x00010000 | 0x00020000 | 0x00040000

#: Result codes and their numbers (https://xrpl.org/docs/references/protocol/transactions/transaction-results).
RESULTS: dict[str, tuple[int, str]] = {
    "tesSUCCESS": (0, "The transaction was applied. Only final in a validated ledger."),
    "tecUNFUNDED_PAYMENT": (104, "Insufficient XRP balance to send."),
    "tecNO_DST": (124, "Destination does not exist. Send XRP to create it."),
    "tecNO_DST_INSUF_XRP": (125, "Destination does not exist. Too little XRP sent to create it."),
    "tecUNFUNDED": (129, "Insufficient balance to fund created offer."),
    "tecNO_TARGET": (138, "Target account does not exist."),
    "tecNO_PERMISSION": (139, "No permission to perform requested operation."),
    "tecNO_ENTRY": (140, "No matching entry found."),
    "tecINSUFFICIENT_RESERVE": (141, "Insufficient reserve to complete requested operation."),
    "tecEXPIRED": (148, "Expiration time is passed."),
    "tefPAST_SEQ": (-190, "This sequence number has already passed."),
    "tefMAX_LEDGER": (-187, "Ledger sequence too high."),
    "tefBAD_AUTH_MASTER": (-183, "Auth for unclaimed account needs correct master key."),
    "terINSUF_FEE_B": (-97, "Account balance can't pay fee."),
    "terNO_ACCOUNT": (-96, "The source account does not exist."),
    "terPRE_SEQ": (-92, "Missing/inapplicable prior transaction."),
    "temMALFORMED": (-299, "Malformed transaction."),
    "temBAD_AMOUNT": (-298, "Can only send positive amounts."),
    "temBAD_EXPIRATION": (-296, "Malformed: Bad expiration."),
    "temBAD_FEE": (-295, "Invalid fee, negative or not XRP."),
    "temBAD_SIGNATURE": (-282, "Malformed: Bad signature."),
    "temDST_IS_SRC": (-279, "Destination may not be source."),
    "temINVALID_FLAG": (-276, "The transaction has an invalid flag."),
    "temREDUNDANT": (-275, "The transaction is redundant."),
    "temBAD_SIGNER": (-272, "Malformed: No signer may duplicate account or other signers."),
    "telINSUF_FEE_P": (-394, "Fee insufficient."),
}

#: The transaction types the double models and their required fields besides the common ones
#: (each type's page under https://xrpl.org/docs/references/protocol/transactions/types/).
REQUIRED: dict[str, tuple[str, ...]] = {
    "Payment": ("Amount", "Destination"),
    "PaymentChannelCreate": ("Amount", "Destination", "SettleDelay", "PublicKey"),
    "PaymentChannelFund": ("Channel", "Amount"),
    "PaymentChannelClaim": ("Channel",),
}
_COMMON_REQUIRED = ("Account", "Fee", "Sequence", "SigningPubKey")


class RpcError(Exception):
    """An error the WebSocket API answers instead of a result: ``error`` is rippled's token
    (``invalidTransaction``, ``actNotFound``, ``notSupported``…), ``message`` its text."""

    def __init__(self, error: str, message: str, **extra: Any) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message
        self.extra = extra


class _Result(Exception):
    """Internal: a check failed with this result code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def sha512_half(data: bytes) -> bytes:
    """The first 32 bytes of SHA-512 (https://xrpl.org/docs/references/protocol/data-types/basic-data-types#hashes)."""
    return hashlib.sha512(data).digest()[:32]


def account_id(address: str) -> bytes:
    """The 20-byte AccountID of a classic address (xrpl-py's address codec)."""
    return addresscodec.decode_classic_address(address)


def channel_id(source: str, destination: str, sequence: int) -> str:
    """PayChannel ID: SHA-512Half(0x0078 ‖ AccountID(src) ‖ AccountID(dst) ‖ UInt32 seq), uppercase hex
    (https://xrpl.org/docs/references/protocol/ledger-data/ledger-entry-types/paychannel#paychannel-id-format)."""
    return sha512_half(b"\x00\x78" + account_id(source) + account_id(destination)
                       + sequence.to_bytes(4, "big")).hex().upper()


def tx_hash(blob_hex: str) -> str:
    """Transaction ID: SHA-512Half("TXN\\0" ‖ signed blob), uppercase hex
    (https://xrpl.org/docs/concepts/transactions#identifying-transactions)."""
    return sha512_half(b"TXN\x00" + bytes.fromhex(blob_hex)).hex().upper()


def _drops(value: Any) -> Optional[int]:
    """XRP drops of an Amount field, or ``None`` for an issued-currency (object) amount."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


@dataclass
class AccountRoot:
    address: str
    balance: int
    sequence: int
    owner_count: int = 0
    previous_txn: str = "0" * 64
    previous_lgr: int = 0

    def json(self) -> dict[str, Any]:
        """The AccountRoot entry as rippled's JSON shows it
        (https://xrpl.org/docs/references/protocol/ledger-data/ledger-entry-types/accountroot)."""
        return {"Account": self.address, "Balance": str(self.balance), "Flags": 0, "LedgerEntryType": "AccountRoot",
                "OwnerCount": self.owner_count, "PreviousTxnID": self.previous_txn,
                "PreviousTxnLgrSeq": self.previous_lgr, "Sequence": self.sequence,
                "index": sha512_half(b"\x00\x61" + account_id(self.address)).hex().upper()}


@dataclass
class PayChannel:
    index: str
    account: str
    destination: str
    amount: int
    balance: int
    settle_delay: int
    public_key: str
    cancel_after: Optional[int] = None
    expiration: Optional[int] = None
    source_tag: Optional[int] = None
    destination_tag: Optional[int] = None
    previous_txn: str = "0" * 64
    previous_lgr: int = 0

    def json(self) -> dict[str, Any]:
        """The PayChannel entry as ``ledger_entry`` shows it
        (https://xrpl.org/docs/references/protocol/ledger-data/ledger-entry-types/paychannel)."""
        node: dict[str, Any] = {
            "Account": self.account, "Amount": str(self.amount), "Balance": str(self.balance),
            "Destination": self.destination, "Flags": 0, "LedgerEntryType": "PayChannel", "OwnerNode": "0",
            "PreviousTxnID": self.previous_txn, "PreviousTxnLgrSeq": self.previous_lgr,
            "PublicKey": self.public_key, "SettleDelay": self.settle_delay, "index": self.index}
        for key, value in (("CancelAfter", self.cancel_after), ("Expiration", self.expiration),
                           ("SourceTag", self.source_tag), ("DestinationTag", self.destination_tag)):
            if value is not None:
                node[key] = value
        return node

    def account_channels_json(self) -> dict[str, Any]:
        """One entry of ``account_channels`` (https://xrpl.org/docs/references/http-websocket-apis/public-api-methods/account-methods/account_channels)."""
        entry: dict[str, Any] = {
            "account": self.account, "amount": str(self.amount), "balance": str(self.balance),
            "channel_id": self.index, "destination_account": self.destination,
            "public_key": addresscodec.encode_account_public_key(bytes.fromhex(self.public_key)),
            "public_key_hex": self.public_key, "settle_delay": self.settle_delay}
        for key, value in (("cancel_after", self.cancel_after), ("expiration", self.expiration),
                           ("source_tag", self.source_tag), ("destination_tag", self.destination_tag)):
            if value is not None:
                entry[key] = value
        return entry


@dataclass
class _State:
    accounts: dict[str, AccountRoot] = field(default_factory=dict)
    channels: dict[str, PayChannel] = field(default_factory=dict)
    total_coins: int = 0


@dataclass
class TxRecord:
    """A transaction applied to an open ledger (``tes`` or ``tec``): validated once its ledger closes."""

    hash: str
    tx_json: dict[str, Any]
    result: str
    meta: dict[str, Any]
    ledger_index: int
    affected: set[str]
    validated: bool = False
    date: Optional[int] = None

    def json(self) -> dict[str, Any]:
        """The ``tx`` method's result (https://xrpl.org/docs/references/http-websocket-apis/public-api-methods/transaction-methods/tx)."""
        out = dict(self.tx_json, hash=self.hash, meta=self.meta, validated=self.validated)
        if self.validated:
            out.update(ledger_index=self.ledger_index, date=self.date)
        return out


class Ledger:
    """The double's XRP Ledger: one open ledger on top of the last validated one.

    ``now`` returns Unix seconds (inject the reactor's ``seconds``); :attr:`offset` (seconds) is
    added to it, for tests that pass a ``SettleDelay`` without waiting. ``genesis`` maps funded
    classic addresses to their drops.
    """

    def __init__(self, now: Callable[[], float], genesis: Optional[dict[str, int]] = None) -> None:
        self._now = now
        self.offset = 0
        self._open = _State()
        for address, drops in (genesis or {}).items():
            self._open.accounts[address] = AccountRoot(address, drops, 1)
            self._open.total_coins += drops
        self.validated_index = 1
        self.close_time = self.ripple_time()
        self.ledger_hash = self._hash_ledger()
        self._validated = copy.deepcopy(self._open)
        self._pending: list[TxRecord] = []
        self.txs: dict[str, TxRecord] = {}

    # -- time and ledgers -------------------------------------------------------------------

    def ripple_time(self) -> int:
        """Now, in seconds since the Ripple epoch."""
        return int(self._now()) + self.offset - RIPPLE_EPOCH

    def advance(self, seconds: int) -> None:
        """Move the clock forward so that the next close is at least ``seconds`` after both now
        and the last close time (close times run ahead of the clock when ledgers close fast)."""
        self.offset += max(seconds, self.close_time + seconds - self.ripple_time())

    @property
    def current_index(self) -> int:
        """The open ledger's index (``ledger_current_index``)."""
        return self.validated_index + 1

    def _hash_ledger(self) -> str:
        return sha512_half(b"LWR\x00" + self.validated_index.to_bytes(4, "big")
                           + self.close_time.to_bytes(4, "big")).hex().upper()

    def close(self) -> list[TxRecord]:
        """Close the open ledger: it becomes the validated ledger (close times strictly rise);
        returns the transactions it validated, in order."""
        self.validated_index += 1
        self.close_time = max(self.ripple_time(), self.close_time + 1)
        self.ledger_hash = self._hash_ledger()
        closed, self._pending = self._pending, []
        for record in closed:
            record.validated, record.date = True, self.close_time
        self._validated = copy.deepcopy(self._open)
        return closed

    def fund(self, address: str, drops: int) -> None:
        """Test set-up, outside any transaction: create or top up an account (like a genesis allocation)."""
        acct = self._open.accounts.get(address)
        if acct is None:
            acct = self._open.accounts[address] = AccountRoot(address, 0, self.current_index)
        acct.balance += drops
        self._open.total_coins += drops

    # -- reads ------------------------------------------------------------------------------

    def state(self, validated: bool) -> _State:
        return self._validated if validated else self._open

    def account(self, address: str, validated: bool = False) -> Optional[AccountRoot]:
        return self.state(validated).accounts.get(address)

    def channel(self, index: str, validated: bool = False) -> Optional[PayChannel]:
        return self.state(validated).channels.get(index.upper())

    def channels_of(self, address: str, destination: Optional[str] = None,
                    validated: bool = False) -> list[PayChannel]:
        return [c for c in self.state(validated).channels.values()
                if c.account == address and destination in (None, c.destination)]

    def total_coins(self, validated: bool = False) -> int:
        """All XRP in existence: genesis and ``fund`` minus every fee destroyed."""
        return self.state(validated).total_coins

    # -- submit -----------------------------------------------------------------------------

    def submit(self, blob: str) -> dict[str, Any]:
        """Check a signed blob and apply it to the open ledger; returns the ``submit`` result
        (https://xrpl.org/docs/references/http-websocket-apis/public-api-methods/transaction-methods/submit).

        Raises :class:`RpcError` ``invalidTransaction`` for a blob that does not decode or whose
        ``TxnSignature`` does not verify (rippled: "fails local checks"), and ``notSupported``
        for what the double does not model (multi-signing, issued currencies, other types).
        """
        tx = self._decode_and_verify(blob)
        digest = tx_hash(blob)
        code = self._apply(tx, digest)
        number, message = RESULTS[code]
        applied = code == "tesSUCCESS" or code.startswith("tec")
        acct = self._open.accounts.get(tx["Account"])
        return {
            "engine_result": code, "engine_result_code": number, "engine_result_message": message,
            "tx_blob": blob, "tx_json": dict(tx, hash=digest),
            "accepted": applied, "applied": applied, "broadcast": applied, "kept": applied, "queued": False,
            "open_ledger_cost": str(BASE_FEE), "validated_ledger_index": self.validated_index,
            "account_sequence_available": acct.sequence if acct else 0,
            "account_sequence_next": acct.sequence if acct else 0,
        }

    def _decode_and_verify(self, blob: str) -> dict[str, Any]:
        try:
            tx = decode(blob)
        except Exception as exc:  # noqa: BLE001 - any codec failure means a malformed blob
            raise RpcError("invalidTransaction", f"fails local checks: cannot decode tx_blob ({exc})") from None
        if "Signers" in tx:
            raise RpcError("notSupported", "the rippled double does not support multi-signing")
        if tx.get("TransactionType") not in REQUIRED:
            raise RpcError("notSupported", f"the rippled double does not model {tx.get('TransactionType')}")
        for key in _COMMON_REQUIRED + REQUIRED[tx["TransactionType"]]:
            if key not in tx:
                raise RpcError("invalidTransaction", f"fails local checks: Field '{key}' is required but missing.")
        signature, pubkey = tx.get("TxnSignature"), tx["SigningPubKey"]
        if not signature or not pubkey:
            raise RpcError("invalidTransaction", "fails local checks: Transaction has bad signature.")
        unsigned = {k: v for k, v in tx.items() if k != "TxnSignature"}
        try:
            # rippled's STTx::checkSign over the signing serialization, prefix "STX\0"
            # (https://xrpl.org/docs/concepts/transactions/cryptographic-keys#signing-algorithms).
            good = keypairs.is_valid_message(bytes.fromhex(encode_for_signing(unsigned)), bytes.fromhex(signature),
                                             pubkey)
        except Exception:  # noqa: BLE001 - an unparsable key or signature is a bad signature
            good = False
        if not good:
            raise RpcError("invalidTransaction", "fails local checks: Transaction has bad signature.")
        for key in ("Amount", "Balance"):
            if key in tx and _drops(tx[key]) is None:
                raise RpcError("notSupported", "the rippled double models XRP only, no issued currencies")
        return tx

    def _apply(self, tx: dict[str, Any], digest: str) -> str:
        state = self._open
        kind = tx["TransactionType"]
        try:
            self._preflight(tx, kind)
            acct = self._preclaim_common(tx, state)
        except _Result as failed:
            return failed.code
        fee = _drops(tx["Fee"]) or 0
        prior = acct.balance
        work = _charged(state, acct.address, fee)
        affected = {acct.address}
        nodes: list[dict[str, Any]] = []
        try:
            handler = getattr(self, "_do_" + kind)
            handler(tx, work, prior, affected, nodes, digest)
            code = "tesSUCCESS"
        except _Result as failed:
            code = failed.code
            if not code.startswith("tec"):
                return code          # tem/tef/ter from doApply: nothing applied, no fee
            work = _charged(state, acct.address, fee)
            affected, nodes = {acct.address}, []
        for address in affected:
            if address in work.accounts:
                root = work.accounts[address]
                root.previous_txn, root.previous_lgr = digest, self.current_index
                nodes.append({"ModifiedNode": {"LedgerEntryType": "AccountRoot",
                                               "FinalFields": root.json(), "LedgerIndex": root.json()["index"]}})
        self._open = work
        meta: dict[str, Any] = {"TransactionResult": code, "TransactionIndex": len(self._pending),
                                "AffectedNodes": nodes}
        if kind == "Payment" and code == "tesSUCCESS":
            meta["delivered_amount"] = tx["Amount"]
        record = TxRecord(digest, tx, code, meta, self.current_index, affected)
        self._pending.append(record)
        self.txs[digest] = record
        return code

    # -- common checks (rippled Transactor: preflight1/2, checkSeq, checkFee, checkSign) ----------

    @staticmethod
    def _preflight(tx: dict[str, Any], kind: str) -> None:
        fee = _drops(tx.get("Fee"))
        if fee is None or fee < 0:
            raise _Result("temBAD_FEE")
        flags = tx.get("Flags", 0)
        allowed = _UNIVERSAL | {"Payment": _PAYMENT_FLAGS, "PaymentChannelClaim": TF_CLOSE | TF_RENEW}.get(kind, 0)
        if flags & ~allowed:
            raise _Result("temINVALID_FLAG")
        getattr(Ledger, "_preflight_" + kind)(tx)

    def _preclaim_common(self, tx: dict[str, Any], state: _State) -> AccountRoot:
        acct = state.accounts.get(tx["Account"])
        if acct is None:
            raise _Result("terNO_ACCOUNT")
        # https://xrpl.org/docs/references/protocol/transactions/common-fields (Sequence, LastLedgerSequence)
        seq = tx.get("Sequence", 0)
        if seq < acct.sequence:
            raise _Result("tefPAST_SEQ")
        if seq > acct.sequence:
            raise _Result("terPRE_SEQ")
        if "LastLedgerSequence" in tx and tx["LastLedgerSequence"] < self.current_index:
            raise _Result("tefMAX_LEDGER")
        # https://xrpl.org/docs/concepts/transactions/transaction-cost
        fee = _drops(tx["Fee"]) or 0
        if fee < BASE_FEE:
            raise _Result("telINSUF_FEE_P")
        if acct.balance < fee:
            raise _Result("terINSUF_FEE_B")
        # Master key only (https://xrpl.org/docs/concepts/accounts/cryptographic-keys#master-key-pair):
        # without a regular key, any other key is tefBAD_AUTH_MASTER.
        if keypairs.derive_classic_address(tx["SigningPubKey"]) != acct.address:
            raise _Result("tefBAD_AUTH_MASTER")
        return acct

    def _reserve(self, owner_count: int) -> int:
        return RESERVE_BASE + RESERVE_INC * owner_count

    # -- Payment (https://xrpl.org/docs/references/protocol/transactions/types/payment), XRP-to-XRP only ---

    @staticmethod
    def _preflight_Payment(tx: dict[str, Any]) -> None:
        _positive_drops(tx, "Amount")
        if tx["Destination"] == tx["Account"]:
            raise _Result("temREDUNDANT")

    def _do_Payment(self, tx, work, prior, affected, nodes, digest) -> None:
        amount = int(tx["Amount"])
        src = work.accounts[tx["Account"]]
        dst = work.accounts.get(tx["Destination"])
        if dst is None and amount < RESERVE_BASE:
            # "Destination does not exist. Too little XRP sent to create it."
            raise _Result("tecNO_DST_INSUF_XRP")
        # The sender keeps its reserve: prior balance ≥ amount + max(reserve, fee).
        if prior < amount + max(self._reserve(src.owner_count), _drops(tx["Fee"]) or 0):
            raise _Result("tecUNFUNDED_PAYMENT")
        if dst is None:
            # A new account starts at the current ledger index (DeletableAccounts).
            dst = work.accounts[tx["Destination"]] = AccountRoot(tx["Destination"], 0, self.current_index)
        src.balance -= amount
        dst.balance += amount
        affected.add(dst.address)

    # -- PaymentChannelCreate (https://xrpl.org/docs/references/protocol/transactions/types/paymentchannelcreate) --

    @staticmethod
    def _preflight_PaymentChannelCreate(tx: dict[str, Any]) -> None:
        _positive_drops(tx, "Amount")
        if tx["Destination"] == tx["Account"]:
            raise _Result("temDST_IS_SRC")
        if not _valid_public_key(tx.get("PublicKey", "")):
            raise _Result("temMALFORMED")

    def _do_PaymentChannelCreate(self, tx, work, prior, affected, nodes, digest) -> None:
        src = work.accounts[tx["Account"]]
        amount = int(tx["Amount"])
        # Reserve for one more owned object, then the amount, both from the balance before the fee.
        reserve = self._reserve(src.owner_count + 1)
        if prior < reserve:
            raise _Result("tecINSUFFICIENT_RESERVE")
        if prior < reserve + amount:
            raise _Result("tecUNFUNDED")
        if tx["Destination"] not in work.accounts:
            raise _Result("tecNO_DST")
        # fixPayChanCancelAfter: a CancelAfter already passed is tecEXPIRED.
        if "CancelAfter" in tx and tx["CancelAfter"] <= self.close_time:
            raise _Result("tecEXPIRED")
        index = channel_id(src.address, tx["Destination"], tx["Sequence"])
        chan = PayChannel(index, src.address, tx["Destination"], amount, 0, tx["SettleDelay"], tx["PublicKey"],
                          cancel_after=tx.get("CancelAfter"), source_tag=tx.get("SourceTag"),
                          destination_tag=tx.get("DestinationTag"), previous_txn=digest,
                          previous_lgr=self.current_index)
        work.channels[index] = chan
        src.balance -= amount
        src.owner_count += 1
        affected.add(tx["Destination"])
        nodes.append({"CreatedNode": {"LedgerEntryType": "PayChannel", "LedgerIndex": index,
                                      "NewFields": chan.json()}})

    # -- PaymentChannelFund (https://xrpl.org/docs/references/protocol/transactions/types/paymentchannelfund) --

    @staticmethod
    def _preflight_PaymentChannelFund(tx: dict[str, Any]) -> None:
        _positive_drops(tx, "Amount")

    def _expired(self, chan: PayChannel) -> bool:
        """Expiration or CancelAfter at or before the previous ledger's close time: any Fund or
        Claim touching the channel closes it instead of its normal action
        (https://xrpl.org/docs/references/protocol/ledger-data/ledger-entry-types/paychannel)."""
        return any(t is not None and self.close_time >= t for t in (chan.cancel_after, chan.expiration))

    def _close_channel(self, chan: PayChannel, work: _State, affected: set[str], nodes: list) -> None:
        """Remove the channel; Amount − Balance goes back to the source, whose owner count drops."""
        src = work.accounts[chan.account]
        src.balance += chan.amount - chan.balance
        src.owner_count -= 1
        del work.channels[chan.index]
        affected.update((chan.account, chan.destination))
        nodes.append({"DeletedNode": {"LedgerEntryType": "PayChannel", "LedgerIndex": chan.index,
                                      "FinalFields": chan.json()}})

    def _live_channel(self, tx, work: _State, affected: set[str], nodes: list, missing: str) -> Optional[PayChannel]:
        """The channel ``tx`` names (none: ``missing``, tecNO_ENTRY for Fund, tecNO_TARGET for
        Claim); ``None`` if it had expired, and is now closed (the transaction's only effect)."""
        chan = work.channels.get(tx["Channel"].upper())
        if chan is None:
            raise _Result(missing)
        if self._expired(chan):
            self._close_channel(chan, work, affected, nodes)
            return None
        return chan

    def _do_PaymentChannelFund(self, tx, work, prior, affected, nodes, digest) -> None:
        chan = self._live_channel(tx, work, affected, nodes, missing="tecNO_ENTRY")
        if chan is None:
            return
        if chan.account != tx["Account"]:
            raise _Result("tecNO_PERMISSION")
        if "Expiration" in tx:
            # Must be ≥ previous close time + SettleDelay, or the existing Expiration if earlier.
            minimum = self.close_time + chan.settle_delay
            if chan.expiration is not None and chan.expiration < minimum:
                minimum = chan.expiration
            if tx["Expiration"] < minimum:
                raise _Result("temBAD_EXPIRATION")
            chan.expiration = tx["Expiration"]
        src = work.accounts[tx["Account"]]
        reserve = self._reserve(src.owner_count)
        if src.balance < reserve:        # balance here is after the fee, as in doApply
            raise _Result("tecINSUFFICIENT_RESERVE")
        if src.balance < reserve + int(tx["Amount"]):
            raise _Result("tecUNFUNDED")
        chan.amount += int(tx["Amount"])
        src.balance -= int(tx["Amount"])
        chan.previous_txn, chan.previous_lgr = digest, self.current_index
        nodes.append({"ModifiedNode": {"LedgerEntryType": "PayChannel", "LedgerIndex": chan.index,
                                       "FinalFields": chan.json()}})

    # -- PaymentChannelClaim (https://xrpl.org/docs/references/protocol/transactions/types/paymentchannelclaim) --

    @staticmethod
    def _preflight_PaymentChannelClaim(tx: dict[str, Any]) -> None:
        balance, amount = _positive_drops(tx, "Balance"), _positive_drops(tx, "Amount")
        if balance is not None and amount is not None and balance > amount:
            raise _Result("temBAD_AMOUNT")            # Balance may not exceed the signed Amount
        flags = tx.get("Flags", 0)
        if flags & TF_CLOSE and flags & TF_RENEW:
            raise _Result("temMALFORMED")
        if "Signature" in tx:
            if "PublicKey" not in tx or balance is None or not _valid_public_key(tx["PublicKey"]):
                raise _Result("temMALFORMED")
            # The claim is signed over "CLM\0" ‖ channel ‖ UInt64 drops of Amount (or Balance if no Amount).
            authorized = amount if amount is not None else balance
            message = bytes.fromhex(encode_for_signing_claim({"channel": tx["Channel"], "amount": str(authorized)}))
            try:
                good = keypairs.is_valid_message(message, bytes.fromhex(tx["Signature"]), tx["PublicKey"])
            except Exception:  # noqa: BLE001 - an unparsable signature is a bad signature
                good = False
            if not good:
                raise _Result("temBAD_SIGNATURE")

    def _do_PaymentChannelClaim(self, tx, work, prior, affected, nodes, digest) -> None:
        chan = self._live_channel(tx, work, affected, nodes, missing="tecNO_TARGET")
        if chan is None:
            return
        account = tx["Account"]
        if account not in (chan.account, chan.destination):
            raise _Result("tecNO_PERMISSION")
        if "Balance" in tx:
            requested = int(tx["Balance"])
            if account == chan.destination and "Signature" not in tx:
                raise _Result("temBAD_SIGNATURE")
            if "Signature" in tx and tx["PublicKey"] != chan.public_key:
                raise _Result("temBAD_SIGNER")     # signed with a key that is not the channel's
            if requested > chan.amount:
                raise _Result("tecUNFUNDED_PAYMENT")
            if requested <= chan.balance:
                raise _Result("tecUNFUNDED_PAYMENT")   # Balance only rises: nothing requested
            dst = work.accounts.get(chan.destination)
            if dst is None:
                raise _Result("terNO_ACCOUNT")
            dst.balance += requested - chan.balance
            chan.balance = requested
            affected.add(chan.destination)
        flags = tx.get("Flags", 0)
        if flags & TF_RENEW:
            if account != chan.account:
                raise _Result("tecNO_PERMISSION")
            chan.expiration = None
        if flags & TF_CLOSE:
            # Closes at once if the destination asks or nothing is left; the source only schedules it.
            if account == chan.destination or chan.balance == chan.amount:
                self._close_channel(chan, work, affected, nodes)
                return
            settle = self.close_time + chan.settle_delay
            if chan.expiration is None or chan.expiration > settle:
                chan.expiration = settle
        chan.previous_txn, chan.previous_lgr = digest, self.current_index
        nodes.append({"ModifiedNode": {"LedgerEntryType": "PayChannel", "LedgerIndex": chan.index,
                                       "FinalFields": chan.json()}})


def _charged(state: _State, address: str, fee: int) -> _State:
    """A copy of ``state`` where ``address`` paid ``fee`` (destroyed) and used its sequence: what
    Transactor::apply does for tes and tec results alike
    (https://xrpl.org/docs/references/protocol/transactions/transaction-results/tec-codes)."""
    work = copy.deepcopy(state)
    acct = work.accounts[address]
    acct.balance -= fee
    acct.sequence += 1
    work.total_coins -= fee
    return work


def _positive_drops(tx: dict[str, Any], key: str) -> Optional[int]:
    """``tx[key]`` in drops (``None`` if absent); not XRP or ≤ 0: temBAD_AMOUNT."""
    if key not in tx:
        return None
    drops = _drops(tx[key])
    if drops is None or drops <= 0:
        raise _Result("temBAD_AMOUNT")
    return drops


def _valid_public_key(hex_key: str) -> bool:
    """33 bytes: ``ED`` ‖ ed25519 key, or a compressed secp256k1 point (02/03)."""
    try:
        raw = bytes.fromhex(hex_key)
    except ValueError:
        return False
    return len(raw) == 33 and raw[0] in (0xED, 0x02, 0x03)
