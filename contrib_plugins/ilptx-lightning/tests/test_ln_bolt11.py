"""BOLT11 decoding (pyln-proto) of an invoice Electrum 4.3.4 made on regtest, the checks made before paying, and
the sub-protocol entries (peeringRequest, invoiceRequest)."""

from __future__ import annotations

import pytest
from ln_fake_node import make_invoice

from ilptx.codec.btp import ProtocolDataEntry

from ilptx_lightning import protocol
from ilptx_lightning.bolt11 import InvalidInvoiceError, check_invoice, decode

#: made by bob's Electrum 4.3.4 (``add_request 0.0001``) on the regtest network of tests/ln_regtest.py
ELECTRUM_INVOICE = (
    "lnbcrt100u1p4s7ca0pp57tcl32kml98edtgc778n093aze5kjt6wpj8lcwh74zzgsu8m7yqssp557pugld8ng232zx7ksy6vyvgmhl2nzwhmw8jv0"
    "n7jhatjag3vtaqdqz0qcqzynxqrrss9qlzqqqqqqqqqqqqqqqqqqqqqqqqqq9qsqfppq2cfze0vuh0t0a9lxrg40ztphf5p877y7rzjqwrxde30q2e"
    "erkswrx4vvl2ekhasq6w9fuuaw0afuc33dnh2vgxe6qqqvuqqqqgqqyqqqqqqqqqqqqqqqytz9qwrxde30q2eerkswrx4vvl2ekhasq6w9fuuaw0af"
    "uc33dnh2vgxe6qqqqqqqqqqqqqqqzfpqzqa0z46lnhek0azt2wx8wwr74vz4uekss2nu9xvvhj2tw04vy6p353kplpcrwvs9m0heyaqmdqzawsagts"
    "uds6dqth44d05amnvcp4fyarh")
ELECTRUM_HASH = "f2f1f8aadbf94f96ad18f78f37963d1669692f4e0c8ffc3afea8848870fbf101"
KEY = "11" * 32


def test_electrum_invoice_decodes():
    """Amount (msat), payment hash, network, timestamp and expiry of a real Electrum invoice, as Electrum reported."""
    inv = decode(ELECTRUM_INVOICE)
    assert (inv.amount_msat, inv.payment_hash, inv.currency) == (10_000_000, ELECTRUM_HASH, "bcrt")
    assert (inv.timestamp, inv.expiry_s, inv.expires_at) == (1796170671, 3600, 1796174271)
    assert len(inv.payee) == 66 and inv.payee[:2] in ("02", "03")


@pytest.mark.parametrize("text", ["", "lnbcrt1", "garbage", ELECTRUM_INVOICE[:-1] + "q", ELECTRUM_INVOICE[:200], 42])
def test_malformed_invoice_is_one_error(text):
    """Truncated, bad checksum, not bech32, not a string: InvalidInvoiceError saying malformed / not an invoice."""
    with pytest.raises(InvalidInvoiceError, match="malformed|not a BOLT11"):
        decode(text)


def test_check_invoice_rules():
    """Payee, network, time left (> 60 s) and amount (exactly what is owed, or amountless for the pool) are checked."""
    bolt11, _, _ = make_invoice(KEY, date=1000, amount_msat=5000, expiry_s=3600)
    inv = decode(bolt11)
    ok = {"payee": inv.payee, "now": 2000, "amount_msat": 5000, "currency": "bcrt"}
    check_invoice(inv, **ok)
    for change, says in (({"payee": "02" + "00" * 32}, "not the peer's node"), ({"payee": None}, "no Lightning node"),
                         ({"currency": "bc"}, "network"), ({"now": 1000 + 3600 - 60}, "expires in 60 s"),
                         ({"amount_msat": 4999}, "4999 msat is owed"), ({"amount_msat": None}, "amountless invoices only")):
        with pytest.raises(InvalidInvoiceError, match=says):
            check_invoice(inv, **{**ok, **change})
    amountless = decode(make_invoice(KEY, date=1000)[0])
    check_invoice(amountless, **{**ok, "amount_msat": None})
    with pytest.raises(InvalidInvoiceError, match="is amountless; 5000 msat is owed"):
        check_invoice(amountless, **ok)


def test_sub_protocol_entries():
    """peeringRequest takes pubkey[@host] (66 hex), invoiceRequest a positive msat amount; anything else is refused."""
    node = "03" + "ab" * 32
    assert protocol.decode_peering_request(protocol.text_entry("peeringRequest", node + "@127.0.0.1:9735")) == node
    assert protocol.decode_invoice_request(protocol.text_entry("invoiceRequest", "2500000")) == 2_500_000
    for name, text in (("peeringRequest", "04" + "ab" * 32), ("peeringRequest", node[:-1]),
                       ("invoiceRequest", "0"), ("invoiceRequest", "-5"), ("invoiceRequest", "1.5"),
                       ("invoiceRequest", "9" * 21)):
        decoder = protocol.decode_peering_request if name == "peeringRequest" else protocol.decode_invoice_request
        with pytest.raises(protocol.MalformedMessageError, match=name):
            decoder(protocol.text_entry(name, text))
    with pytest.raises(protocol.MalformedMessageError, match="UTF-8"):
        protocol.decode_invoice_request(ProtocolDataEntry("invoiceRequest", 1, b"\xff"))
