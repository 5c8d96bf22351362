"""The LND backend: :class:`LndBackend`, an :class:`~ilptx_lightning.backend.ILightningBackend`
over LND's REST API (the grpc-gateway of ``lnrpc.Lightning``, port 8080 by default), with treq
(non-blocking, on the reactor).

Calls (lnd API reference, api.lightning.community; JSON field names of ``lightning.proto``,
64-bit integers as decimal strings, ``bytes`` as base64):

* ``GET /v1/getinfo`` -> ``identity_pubkey``;
* ``POST /v1/invoices`` ``{"value_msat", "memo", "expiry"}`` -> ``{"r_hash", "payment_request"}``
  (``value_msat`` 0: an amountless invoice, which the JS plugin's ``addInvoice({})`` makes);
* ``GET /v1/invoice/{r_hash hex}`` -> ``{"state": OPEN|SETTLED|CANCELED|ACCEPTED, "amt_paid_msat"}``;
* ``POST /v1/channels/transactions`` (``SendPaymentSync``) ``{"payment_request"[, "amt_msat"]}``
  -> ``{"payment_error", "payment_preimage"}``: lnd pays an amountless invoice with ``amt_msat``
  (the JS plugin's ``sendPayment {amt, paymentRequest}``), so :attr:`LndBackend.pays_amountless`;
* ``GET /v1/payments?include_incomplete=true`` -> ``payments[]`` with ``payment_hash`` (hex),
  ``status`` (SUCCEEDED|IN_FLIGHT|FAILED|INITIATED|UNKNOWN) and ``payment_preimage`` (hex);
* ``GET /v1/balance/channels`` -> ``local_balance`` / ``remote_balance`` ``{"sat", "msat"}``.

Authentication: the macaroon, hex, in the ``Grpc-Metadata-macaroon`` header; TLS pinned to the
node's own ``tls.cert``. lnd refuses a second payment of a hash ("invoice is already paid",
"payment is in transition"), like Electrum.

Tested only against recorded responses (``tests/fixtures/lnd/``, in the shapes of the lnd API
reference): no lnd runs on this machine.
"""

from __future__ import annotations

import base64
import json
from typing import Optional
from urllib.parse import quote

from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from ilptx_lightning.backend import (
    EXPIRED, FAILED, INFLIGHT, PAID, UNKNOWN, UNPAID, BackendError, ChannelBalance, CreatedInvoice,
    ILightningBackend, InvoiceStatus, PaymentStatus,
)

__all__ = ["LndBackend", "pinned_treq"]

_PAYMENT_STATES = {"SUCCEEDED": PAID, "IN_FLIGHT": INFLIGHT, "INITIATED": INFLIGHT, "FAILED": FAILED}


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex() if b64 else ""


def pinned_treq(reactor, cert_pem: bytes):
    """A ``treq.client.HTTPClient`` whose HTTPS trusts only ``cert_pem`` (lnd's self-signed ``tls.cert``)."""
    from treq.client import HTTPClient
    from twisted.internet.ssl import Certificate, optionsForClientTLS
    from twisted.web.client import Agent
    from twisted.web.iweb import IPolicyForHTTPS

    root = Certificate.loadPEM(cert_pem)

    @implementer(IPolicyForHTTPS)
    class Pinned:
        def creatorForNetloc(self, hostname, port):
            return optionsForClientTLS(hostname.decode("ascii"), trustRoot=root)

    return HTTPClient(Agent(reactor, contextFactory=Pinned()))


@implementer(ILightningBackend)
class LndBackend:
    """:class:`~ilptx_lightning.backend.ILightningBackend` on lnd's REST API.

    :param url: ``https://host:8080``. :param macaroon_hex: the (admin or invoice+offchain) macaroon, hex.
    :param http: a treq-like client (``treq.client.HTTPClient``; tests pass ``treq.testing.StubTreq``),
        e.g. :func:`pinned_treq`.
    """

    pays_amountless = True

    def __init__(self, url: str, macaroon_hex: str, *, http) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Grpc-Metadata-macaroon": [macaroon_hex], "Content-Type": ["application/json"]}
        self._http = http

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    @inlineCallbacks
    def _call(self, method: str, path: str, body: Optional[dict] = None):
        try:
            response = yield self._http.request(method, self.url + path, headers=self._headers,
                                                data=None if body is None else json.dumps(body).encode())
            text = yield response.content()
        except Exception as exc:
            raise BackendError(f"lnd {method} {path}: {type(exc).__name__}: {exc}") from None
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            raise BackendError(f"lnd {method} {path}: HTTP {response.code}, not JSON") from None
        if response.code != 200:
            message = answer.get("message") or answer.get("error") if isinstance(answer, dict) else None
            raise BackendError(f"lnd {method} {path}: HTTP {response.code}: {message or text[:200]!r}")
        return answer

    @inlineCallbacks
    def node_id(self):
        info = yield self._call("GET", "/v1/getinfo")
        return str(info["identity_pubkey"]).lower()

    @inlineCallbacks
    def create_invoice(self, amount_msat: Optional[int], memo: str, expiry_s: int):
        answer = yield self._call("POST", "/v1/invoices", {"value_msat": str(amount_msat or 0), "memo": memo,
                                                           "expiry": str(int(expiry_s))})
        return CreatedInvoice(answer["payment_request"], _hex(answer["r_hash"]))

    @inlineCallbacks
    def invoice_status(self, payment_hash: str):
        try:
            invoice = yield self._call("GET", f"/v1/invoice/{quote(payment_hash)}")
        except BackendError as exc:
            if "unable to locate invoice" in str(exc):
                return InvoiceStatus(UNKNOWN)
            raise
        state = invoice.get("state", "OPEN")
        if state == "SETTLED":
            return InvoiceStatus(PAID, int(invoice.get("amt_paid_msat") or 0))
        if state == "CANCELED":
            return InvoiceStatus(EXPIRED)
        return InvoiceStatus(UNPAID)  # OPEN, or ACCEPTED (a hold invoice's HTLC, not settled)

    @inlineCallbacks
    def pay_invoice(self, bolt11: str, amount_msat: Optional[int] = None):
        body = {"payment_request": bolt11}
        if amount_msat is not None:
            body["amt_msat"] = str(amount_msat)
        answer = yield self._call("POST", "/v1/channels/transactions", body)
        if answer.get("payment_error") or not answer.get("payment_preimage"):
            raise BackendError(f"lnd payment failed: {answer.get('payment_error') or 'no preimage'}")
        return _hex(answer["payment_preimage"])

    @inlineCallbacks
    def payment_status(self, payment_hash: str):
        answer = yield self._call("GET", "/v1/payments?include_incomplete=true&reversed=true&max_payments=1000")
        for payment in answer.get("payments") or ():
            if str(payment.get("payment_hash", "")).lower() == payment_hash.lower():
                state = _PAYMENT_STATES.get(payment.get("status"), UNKNOWN)
                preimage = payment.get("payment_preimage") or None
                if preimage and set(preimage) == {"0"}:  # lnd shows zeros until it has the preimage
                    preimage = None
                return PaymentStatus(state, preimage if state == PAID else None)
        return PaymentStatus(UNKNOWN)

    @inlineCallbacks
    def channel_balance(self):
        answer = yield self._call("GET", "/v1/balance/channels")
        local, remote = answer.get("local_balance") or {}, answer.get("remote_balance") or {}
        return ChannelBalance(int(local.get("msat") or 0), int(remote.get("msat") or 0))
