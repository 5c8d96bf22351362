"""The narrow interface the ``lightning`` plugin needs from a Lightning node
(:class:`ILightningBackend`), and the values it passes.

The plugin uses no other call of the node: an adapter for another implementation (Electrum:
:mod:`ilptx_lightning.electrum`; LND: :mod:`ilptx_lightning.lnd`; CLN) implements these seven methods. Amounts are ``int``
**msat**; hashes, preimages and node ids lower-case hex; every method returns a ``Deferred`` and
runs the node's (blocking) client off the reactor thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from zope.interface import Attribute, Interface

__all__ = ["ILightningBackend", "CreatedInvoice", "InvoiceStatus", "PaymentStatus", "ChannelBalance",
           "UNPAID", "PAID", "EXPIRED", "INFLIGHT", "FAILED", "UNKNOWN", "BackendError"]

#: states of :class:`InvoiceStatus` / :class:`PaymentStatus`
UNPAID, PAID, EXPIRED, INFLIGHT, FAILED, UNKNOWN = "unpaid", "paid", "expired", "inflight", "failed", "unknown"


class BackendError(Exception):
    """The node refused or failed a call (its message kept); nothing is assumed to have moved."""


@dataclass(frozen=True)
class CreatedInvoice:
    """An invoice the node made: ``bolt11`` (``str``) and its ``payment_hash`` (hex)."""

    bolt11: str
    payment_hash: str


@dataclass(frozen=True)
class InvoiceStatus:
    """An invoice of ours (incoming): ``state`` (:data:`UNPAID`, :data:`PAID`, :data:`EXPIRED`,
    :data:`UNKNOWN`) and ``amount_received_msat`` (``int``; 0 unless paid)."""

    state: str
    amount_received_msat: int = 0


@dataclass(frozen=True)
class PaymentStatus:
    """A payment of ours (outgoing), by payment hash: ``state`` (:data:`PAID`, :data:`INFLIGHT`,
    :data:`FAILED`, :data:`UNKNOWN`: never attempted) and the ``preimage`` (hex) once paid."""

    state: str
    preimage: Optional[str] = None


@dataclass(frozen=True)
class ChannelBalance:
    """What the node can send (``local_msat``) and receive (``remote_msat``) over its open
    channels, summed."""

    local_msat: int
    remote_msat: int


class ILightningBackend(Interface):
    """A Lightning node, as the plugin uses it (issue 11: create invoice, pay invoice, invoice
    status, node id, channel balance). ``ilp-plugin-lightning`` 1.0.0-beta.25 uses lnd's
    ``getInfo``, ``addInvoice``, ``subscribeInvoices`` and ``sendPayment`` for the same."""

    pays_amountless = Attribute(
        "``bool``: :meth:`pay_invoice` can pay an amountless invoice with an amount of our choosing "
        "(lnd: yes; Electrum's command interface: no, so peers ask for exact-amount invoices).")

    def start():
        """Start the client (its thread pool). :returns: ``None``."""

    def stop():
        """Stop the client. :returns: ``None``."""

    def node_id():
        """:returns: ``Deferred[str]``: the node's public key, 66 hex digits."""

    def create_invoice(amount_msat, memo, expiry_s):
        """Make an invoice for ``amount_msat`` (``int`` > 0) or an amountless one (``None``),
        valid ``expiry_s`` seconds. :returns: ``Deferred[CreatedInvoice]``.
        :raises BackendError: the node refused."""

    def invoice_status(payment_hash):
        """:returns: ``Deferred[InvoiceStatus]`` of an invoice this node made."""

    def pay_invoice(bolt11, amount_msat=None):
        """Pay ``bolt11``; ``amount_msat`` only for an amountless invoice (needs
        :attr:`pays_amountless`). Blocks (off the reactor) until the payment succeeded or failed.

        :returns: ``Deferred[str]``: the preimage (hex).
        :raises BackendError: the payment failed, or the node refuses to pay this hash again
            (already paid, or a payment is in flight: the node keeps the payment hash as the
            idempotency key)."""

    def payment_status(payment_hash):
        """:returns: ``Deferred[PaymentStatus]`` of our payment for ``payment_hash``."""

    def channel_balance():
        """:returns: ``Deferred[ChannelBalance]`` over the open channels."""
