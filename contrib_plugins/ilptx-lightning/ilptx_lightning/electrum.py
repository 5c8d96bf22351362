"""The Electrum backend: :class:`ElectrumBackend`, an
:class:`~ilptx_lightning.backend.ILightningBackend` over the JSON-RPC interface of an Electrum
daemon (tested with Electrum 4.3.4, Debian bookworm).

The daemon is configured with ``rpcport`` (plain HTTP on 127.0.0.1) and ``rpcuser`` /
``rpcpassword`` (HTTP basic auth); a request is ``{"jsonrpc": "2.0", "id", "method", "params":
{named arguments}}`` and the answer ``{"result"}`` or ``{"error": {"message"}}``
(``electrum/daemon.py``, ``AuthenticatedServer.handle``). Commands used: ``nodeid``,
``add_request`` (``amount`` in BTC, ``0`` = amountless; ``force`` so the wallet's gap limit never
refuses), ``get_request`` / ``get_invoice`` (``status``: 0 unpaid, 1 expired, 3 paid, 4 in flight,
5 failed; ``electrum/invoices.py``), ``lightning_history`` (amounts and preimages of settled
payments), ``lnpay`` and ``list_channels``.

``lnpay`` takes no amount: Electrum's command interface cannot pay an amountless invoice
(``lnworker._check_invoice`` raises "Missing amount"; so do 4.5.8 and 4.8.3), so
:attr:`ElectrumBackend.pays_amountless` is ``False``. Electrum keeps the payment hash of every
invoice it paid or is paying and refuses a second ``lnpay`` of it ("This invoice has been paid
already", "A payment was already initiated for this invoice"), which is what makes the payment
hash the idempotency key of a payout.

Every call runs on the backend's own thread pool (urllib, blocking), never on the reactor thread.
"""

from __future__ import annotations

import base64
import itertools
import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any, Optional

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ilptx_lightning.backend import (
    EXPIRED, FAILED, INFLIGHT, PAID, UNKNOWN, UNPAID, BackendError, ChannelBalance, CreatedInvoice,
    ILightningBackend, InvoiceStatus, PaymentStatus,
)

__all__ = ["ElectrumBackend", "ElectrumRpc", "SAT_PER_BTC"]

SAT_PER_BTC = 10 ** 8
#: Electrum's ``PR_*`` status codes (``electrum/invoices.py``) -> ours
_STATUS = {0: UNPAID, 1: EXPIRED, 2: UNKNOWN, 3: PAID, 4: INFLIGHT, 5: FAILED, 6: INFLIGHT, 7: UNPAID}


class ElectrumRpc:
    """A blocking JSON-RPC client of one Electrum daemon (``url`` like ``http://127.0.0.1:7777``,
    HTTP basic auth ``user``/``password``); for a thread, not the reactor."""

    def __init__(self, url: str, user: str, password: str, timeout_s: float = 300.0) -> None:
        self.url = url
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._ids = itertools.count(1)
        self.timeout_s = timeout_s

    def call(self, method: str, **params: Any) -> Any:
        """:returns: the ``result``. :raises BackendError: an ``error`` answer, HTTP or connection failure."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json",
                                                          "Authorization": self._auth})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raise BackendError(f"Electrum {method}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise BackendError(f"Electrum {method}: {type(exc).__name__}: {exc}") from None
        if answer.get("error"):
            raise BackendError(f"Electrum {method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result")


@implementer(ILightningBackend)
class ElectrumBackend:
    """:class:`~ilptx_lightning.backend.ILightningBackend` on an Electrum daemon.

    :param url: the daemon's JSON-RPC URL. :param user, password: its ``rpcuser``/``rpcpassword``.
    :param reactor: for ``deferToThreadPool``. :param max_threads: of its pool (a payment holds one
        thread until it settles or fails).
    """

    pays_amountless = False

    def __init__(self, url: str, user: str, password: str, *, reactor, max_threads: int = 4) -> None:
        self.rpc = ElectrumRpc(url, user, password)
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name="ilptx-lightning-electrum")

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    def _defer(self, f, *args):
        return deferToThreadPool(self._reactor, self._pool, f, *args)

    def node_id(self):
        return self._defer(lambda: str(self.rpc.call("nodeid")).split("@")[0].lower())

    def create_invoice(self, amount_msat: Optional[int], memo: str, expiry_s: int):
        if amount_msat is not None and (amount_msat <= 0 or amount_msat % 1000):
            raise ValueError(f"Electrum invoices are whole satoshis: {amount_msat} msat")
        amount_btc = "0" if amount_msat is None else str(Decimal(amount_msat // 1000) / SAT_PER_BTC)

        def create():
            request = self.rpc.call("add_request", amount=amount_btc, memo=memo, expiration=int(expiry_s),
                                    force=True)
            if not request or not request.get("lightning_invoice"):
                raise BackendError(f"Electrum add_request made no Lightning invoice: {request!r}")
            return CreatedInvoice(request["lightning_invoice"], request["rhash"].lower())

        return self._defer(create)

    def _history(self, payment_hash: str) -> Optional[dict]:
        for item in self.rpc.call("lightning_history") or ():
            if str(item.get("payment_hash", "")).lower() == payment_hash.lower():
                return item
        return None

    def _find(self, method: str, **params) -> Optional[dict]:
        """``method`` (``get_request`` / ``get_invoice``), ``None`` when Electrum says "Request not found"."""
        try:
            return self.rpc.call(method, **params)
        except BackendError as exc:
            if "not found" in str(exc).lower():
                return None
            raise

    def invoice_status(self, payment_hash: str):
        def status():
            request = self._find("get_request", request_id=payment_hash)
            if request is None:
                return InvoiceStatus(UNKNOWN)
            state = _STATUS.get(request.get("status"), UNKNOWN)
            if state != PAID:
                return InvoiceStatus(state if state in (UNPAID, EXPIRED) else UNPAID)
            amount = int(request.get("amount_msat") or 0)
            if amount == 0:  # amountless: what the node received
                item = self._history(payment_hash)
                amount = abs(int(item["amount_msat"])) if item else 0
            return InvoiceStatus(PAID, amount)

        return self._defer(status)

    def pay_invoice(self, bolt11: str, amount_msat: Optional[int] = None):
        if amount_msat is not None:
            raise BackendError("Electrum's lnpay cannot pay an amountless invoice")

        def pay():
            result = self.rpc.call("lnpay", invoice=bolt11)
            if not result or not result.get("success") or not result.get("preimage"):
                log = result.get("log") if isinstance(result, dict) else result
                raise BackendError(f"Electrum lnpay failed: {log!r}")
            return str(result["preimage"]).lower()

        return self._defer(pay)

    def payment_status(self, payment_hash: str):
        def status():
            invoice = self._find("get_invoice", invoice_id=payment_hash)
            if invoice is None:
                return PaymentStatus(UNKNOWN)
            state = _STATUS.get(invoice.get("status"), UNKNOWN)
            if state == PAID:
                item = self._history(payment_hash)
                return PaymentStatus(PAID, str(item["preimage"]).lower() if item else None)
            if state == UNPAID:  # saved by lnpay, never attempted or its attempt is over
                return PaymentStatus(UNKNOWN)
            return PaymentStatus(state if state in (INFLIGHT, FAILED) else UNKNOWN)

        return self._defer(status)

    def channel_balance(self):
        def balance():
            local = remote = 0
            for channel in self.rpc.call("list_channels") or ():
                if channel.get("state") == "OPEN":
                    local += int(channel["local_balance"]) * 1000
                    remote += int(channel["remote_balance"]) * 1000
            return ChannelBalance(local, remote)

        return self._defer(balance)
