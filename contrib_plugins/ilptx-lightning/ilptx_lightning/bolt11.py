"""BOLT11 invoices: decoding (with pyln-proto: bech32, the signature and payee recovery) and the
checks the plugin makes before it pays an invoice or keeps one in its pool.

``ilp-plugin-lightning`` 1.0.0-beta.25 (``src/account.ts``, ``handleData``) checks an incoming
``paymentRequest`` with lnd's ``decodePayReq``: destination = the peer's public key, amount 0
(amountless), and drops invoices with 60 s or less left before paying (``sendMoney``). The same
rules here, plus the exact amount for the exact-amount extension (:mod:`ilptx_lightning.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from pyln.proto.invoice import Invoice

__all__ = ["DecodedInvoice", "InvalidInvoiceError", "decode", "check_invoice", "DEFAULT_EXPIRY_S",
           "MIN_TIME_LEFT_S", "MSAT_PER_BTC"]

#: BOLT11: an invoice without an ``x`` field expires 3600 s after its timestamp
DEFAULT_EXPIRY_S = 3600
#: an invoice with this little time left (seconds) is not paid (JS: ``minuteFromNow``)
MIN_TIME_LEFT_S = 60
MSAT_PER_BTC = 10 ** 11


class InvalidInvoiceError(ValueError):
    """An invoice the plugin will not pay or keep; the message says why."""


@dataclass(frozen=True)
class DecodedInvoice:
    """A decoded, signature-checked BOLT11 invoice.

    :ivar bolt11: the invoice text. :ivar payee: the payee's node id (66 hex digits).
    :ivar payment_hash: 64 hex digits. :ivar amount_msat: ``int`` msat, ``None`` when amountless.
    :ivar timestamp: ``int`` UNIX seconds. :ivar expiry_s: ``int`` seconds.
    :ivar currency: the BOLT11 prefix after ``ln`` (``bc``, ``tb``, ``bcrt``).
    """

    bolt11: str
    payee: str
    payment_hash: str
    amount_msat: Optional[int]
    timestamp: int
    expiry_s: int
    currency: str

    @property
    def expires_at(self) -> int:
        """``int`` UNIX seconds."""
        return self.timestamp + self.expiry_s


def decode(bolt11) -> DecodedInvoice:
    """Decode ``bolt11`` (``str``) with ``pyln.proto.invoice.Invoice.decode``.

    :raises InvalidInvoiceError: not a ``str``, bad bech32 or checksum, bad signature, no payment
        hash, an amount below 1 msat."""
    if not isinstance(bolt11, str) or not bolt11:
        raise InvalidInvoiceError(f"not a BOLT11 invoice: {bolt11!r}")
    try:
        inv = Invoice.decode(bolt11.strip().lower())
    except Exception as exc:  # pyln-proto raises ValueError, bitstring errors, coincurve errors
        raise InvalidInvoiceError(f"malformed BOLT11 invoice ({type(exc).__name__}: {exc})") from None
    if inv.paymenthash is None or len(inv.paymenthash) != 32 or inv.pubkey is None:
        raise InvalidInvoiceError("malformed BOLT11 invoice: no payment hash or payee")
    amount_msat = None
    if inv.amount is not None:
        msat = Decimal(inv.amount) * MSAT_PER_BTC
        if msat != msat.to_integral_value() or msat < 1:
            raise InvalidInvoiceError(f"malformed BOLT11 invoice: amount {inv.amount} BTC is not a whole msat")
        amount_msat = int(msat)
    expiry = next((value for tag, value in inv.tags if tag == "x"), DEFAULT_EXPIRY_S)
    return DecodedInvoice(bolt11=bolt11.strip(), payee=inv.hexpubkey, payment_hash=inv.hexpaymenthash,
                          amount_msat=amount_msat, timestamp=int(inv.date), expiry_s=int(expiry),
                          currency=inv.currency)


def check_invoice(invoice: DecodedInvoice, *, payee: Optional[str], now: float, amount_msat: Optional[int],
                  currency: Optional[str] = None, min_time_left_s: int = MIN_TIME_LEFT_S) -> None:
    """Check that ``invoice`` may be paid (or kept to be paid later).

    :param payee: the peer's node id (hex); ``None`` (not learned yet) refuses every invoice.
    :param now: UNIX seconds (the injected clock's ``seconds()``).
    :param amount_msat: ``None``: the invoice must be amountless (the JS pool); an ``int``: it must
        ask exactly that many msat (what is owed: never more).
    :param currency: the network's BOLT11 prefix (``bcrt`` on regtest), or ``None`` for any.
    :raises InvalidInvoiceError: which rule failed, with both values.
    """
    if payee is None:
        raise InvalidInvoiceError("no Lightning node id is linked to the peer yet (no peeringRequest)")
    if invoice.payee.lower() != payee.lower():
        raise InvalidInvoiceError(f"invoice is for node {invoice.payee}, not the peer's node {payee}")
    if currency is not None and invoice.currency != currency:
        raise InvalidInvoiceError(f"invoice is for network 'ln{invoice.currency}', not 'ln{currency}'")
    left = invoice.expires_at - now
    if left <= min_time_left_s:
        raise InvalidInvoiceError(f"invoice {invoice.payment_hash} expires in {int(left)} s "
                                  f"(at {invoice.expires_at}); at least {min_time_left_s} s are needed")
    if amount_msat is None:
        if invoice.amount_msat is not None:
            raise InvalidInvoiceError(f"invoice asks for {invoice.amount_msat} msat; the pool takes amountless "
                                      "invoices only")
    elif invoice.amount_msat != amount_msat:
        what = "amountless" if invoice.amount_msat is None else f"for {invoice.amount_msat} msat"
        raise InvalidInvoiceError(f"invoice is {what}; {amount_msat} msat is owed")
