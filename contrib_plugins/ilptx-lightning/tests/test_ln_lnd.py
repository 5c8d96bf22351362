"""LndBackend against recorded lnd REST responses (tests/fixtures/lnd_responses.json, in the shapes of the lnd API
reference; no lnd runs here) through treq's StubTreq: the requests it makes (path, method, macaroon header, JSON
body) and how it reads each answer, including errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.web.resource import Resource

from ilptx.testing import failure_of, result_of

from ilptx_lightning.backend import EXPIRED, INFLIGHT, PAID, UNKNOWN, UNPAID, BackendError, ILightningBackend
from ilptx_lightning.lnd import LndBackend

FX = json.loads((Path(__file__).resolve().parent / "fixtures" / "lnd_responses.json").read_text())
V = FX["_values"]
MACAROON = "0201036c6e6402f801"


class Lnd(Resource):
    """Answers ``(method, path)`` with a recorded ``(code, body)``; keeps every request (method, uri, headers, JSON)."""

    isLeaf = True

    def __init__(self, routes: dict) -> None:
        super().__init__()
        self.routes, self.requests = routes, []

    def render(self, request):
        body = request.content.read()
        self.requests.append((request.method.decode(), request.uri.decode(),
                              request.requestHeaders.getRawHeaders("grpc-metadata-macaroon"),
                              json.loads(body) if body else None))
        code, answer = self.routes[(request.method.decode(), request.path.decode())]
        request.setResponseCode(code)
        return json.dumps(answer).encode()


def backend(routes: dict):
    """An LndBackend on StubTreq serving ``routes``, and the fake lnd."""
    lnd = Lnd(routes)
    return LndBackend("https://127.0.0.1:8080", MACAROON, http=StubTreq(lnd)), lnd


def test_lnd_backend_provides_the_interface_and_pays_amountless():
    """LndBackend is an ILightningBackend, and lnd pays amountless invoices (amt_msat), unlike Electrum."""
    b, _ = backend({})
    assert ILightningBackend.providedBy(b) and b.pays_amountless is True


def test_node_id_and_channel_balance():
    """getinfo's identity_pubkey is the node id; channel balance is local/remote msat, with the macaroon sent."""
    b, lnd = backend({("GET", "/v1/getinfo"): (200, FX["getinfo"]),
                      ("GET", "/v1/balance/channels"): (200, FX["channel_balance"])})
    assert result_of(b.node_id()) == V["node"]
    balance = result_of(b.channel_balance())
    assert (balance.local_msat, balance.remote_msat) == (400000123, 590000000)
    assert [(m, u, h) for m, u, h, _ in lnd.requests] == [("GET", "/v1/getinfo", [MACAROON]),
                                                          ("GET", "/v1/balance/channels", [MACAROON])]


def test_create_invoice_sends_msat_memo_expiry_and_reads_the_hash():
    """POST /v1/invoices with value_msat (0 = amountless), memo, expiry; r_hash (base64) comes back as hex."""
    b, lnd = backend({("POST", "/v1/invoices"): (200, FX["add_invoice"])})
    created = result_of(b.create_invoice(2_500_000, "m", 3600))
    assert (created.bolt11, created.payment_hash) == (FX["add_invoice"]["payment_request"], V["payment_hash"])
    result_of(b.create_invoice(None, "pool", 3600))
    assert [body for *_, body in lnd.requests] == [{"value_msat": "2500000", "memo": "m", "expiry": "3600"},
                                                   {"value_msat": "0", "memo": "pool", "expiry": "3600"}]


@pytest.mark.parametrize("answer, state, amount", [
    ((200, FX["invoice_open"]), UNPAID, 0),
    ((200, FX["invoice_settled"]), PAID, 2_500_000),
    ((200, FX["invoice_canceled"]), EXPIRED, 0),
    ((404, FX["invoice_not_found"]), UNKNOWN, 0),
])
def test_invoice_status(answer, state, amount):
    """GET /v1/invoice/<hash hex>: OPEN unpaid, SETTLED paid with amt_paid_msat, CANCELED expired, not found unknown."""
    b, lnd = backend({("GET", f"/v1/invoice/{V['payment_hash']}"): answer})
    status = result_of(b.invoice_status(V["payment_hash"]))
    assert (status.state, status.amount_received_msat) == (state, amount)


def test_pay_invoice_returns_the_preimage_and_sends_amt_only_for_amountless():
    """SendPaymentSync: the base64 preimage comes back hex; amt_msat is sent only when given (amountless invoice)."""
    b, lnd = backend({("POST", "/v1/channels/transactions"): (200, FX["send_ok"])})
    assert result_of(b.pay_invoice("lnbcrt1x")) == V["preimage"]
    assert result_of(b.pay_invoice("lnbcrt1y", 1_000_000)) == V["preimage"]
    assert [body for *_, body in lnd.requests] == [{"payment_request": "lnbcrt1x"},
                                                   {"payment_request": "lnbcrt1y", "amt_msat": "1000000"}]


def test_pay_invoice_error_is_a_backend_error():
    """A payment_error ("invoice is already paid") or an HTTP error is a BackendError naming it."""
    b, _ = backend({("POST", "/v1/channels/transactions"): (200, FX["send_paid_already"])})
    assert "invoice is already paid" in str(failure_of(b.pay_invoice("lnbcrt1x")).value)
    b, _ = backend({("POST", "/v1/channels/transactions"): (500, {"code": 2, "message": "permission denied"})})
    error = failure_of(b.pay_invoice("lnbcrt1x")).value
    assert isinstance(error, BackendError) and "HTTP 500" in str(error) and "permission denied" in str(error)


def test_payment_status_by_hash():
    """ListPayments: SUCCEEDED is paid with its preimage, IN_FLIGHT in flight without (lnd's zeros), absent unknown."""
    b, lnd = backend({("GET", "/v1/payments"): (200, FX["payments"])})
    paid = result_of(b.payment_status(V["payment_hash"]))
    assert (paid.state, paid.preimage) == (PAID, V["preimage"])
    inflight = result_of(b.payment_status(V["amountless_hash"]))
    assert (inflight.state, inflight.preimage) == (INFLIGHT, None)
    assert result_of(b.payment_status("ab" * 32)).state == UNKNOWN
    assert lnd.requests[0][1] == "/v1/payments?include_incomplete=true&reversed=true&max_payments=1000"


def test_module_with_lnd_options_uses_lnd(tmp_path):
    """Options lnd {restUrl, macaroonPath, tlsCertPath}: the module's backend is LndBackend with the macaroon in hex."""
    from ilptx.testing import plugin_services
    from ilptx.testing_tls import make_test_pki

    from ilptx_lightning.module import LightningModule

    (tmp_path / "admin.macaroon").write_bytes(bytes.fromhex(MACAROON))
    pki = make_test_pki(tmp_path)
    module = LightningModule({"lnd": {"restUrl": "https://127.0.0.1:8080", "macaroonPath": str(tmp_path / "admin.macaroon"),
                                      "tlsCertPath": pki.ca_cert}}, account_id="p", services=plugin_services())
    assert isinstance(module.backend, LndBackend) and module.backend._headers["Grpc-Metadata-macaroon"] == [MACAROON]


@pytest_twisted.inlineCallbacks
def test_pinned_tls_trusts_only_the_nodes_certificate(tmp_path):
    """Over a real HTTPS socket: the node whose certificate is pinned answers; one with another certificate is refused."""
    from twisted.internet import reactor, ssl
    from twisted.web.server import Site

    from ilptx.testing_tls import make_test_pki

    from ilptx_lightning.lnd import pinned_treq

    (tmp_path / "node").mkdir()
    (tmp_path / "other").mkdir()
    pki, other = make_test_pki(tmp_path / "node"), make_test_pki(tmp_path / "other")
    key_pem = Path(pki.server_key).read_bytes()
    cert = ssl.PrivateCertificate.loadPEM(key_pem + Path(pki.server_cert).read_bytes())
    port = reactor.listenSSL(0, Site(Lnd({("GET", "/v1/getinfo"): (200, FX["getinfo"])})), cert.options(),
                             interface="127.0.0.1")
    try:
        url = f"https://127.0.0.1:{port.getHost().port}"
        good = LndBackend(url, MACAROON, http=pinned_treq(reactor, Path(pki.ca_cert).read_bytes()))
        assert (yield good.node_id()) == V["node"]
        bad = LndBackend(url, MACAROON, http=pinned_treq(reactor, Path(other.ca_cert).read_bytes()))
        with pytest.raises(BackendError):
            yield bad.node_id()
    finally:
        yield port.stopListening()
