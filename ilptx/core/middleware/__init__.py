"""Built-in middlewares, one per module, with the reference connector's names and order.

Incoming pipeline (outermost first), then the switch::

    errorHandler → rateLimit → maxPacketAmount → throughput → balance → echo → stats → [custom] → switch

Outgoing pipeline (outermost first), then the next hop's ledger plugin::

    throughput → deduplicate → balance → expire → validateFulfillment → stats → alert → [custom] → plugin

Order decides which error wins: a Prepare that is both rate-limited and too large gets T05,
because ``rateLimit`` runs before ``maxPacketAmount`` (``tests/unit/core/test_middlewares.py``,
"order").

One deliberate difference from ``ilp-connector`` 23.x, whose outgoing order is ``throughput →
balance → deduplicate``: there a Prepare answered from the deduplicate cache still passes the
balance middleware, so six copies of one Prepare reach the next hop once but are charged six
times. Here ``deduplicate`` runs before ``balance``: a copy answered from the cache (in flight:
the same future answer; finished: the same answer) reserves and commits nothing, so the
outgoing balance moves once per Prepare the next hop actually received. Every other precedence
is the reference's; the only one that changes is that a copy of a cached Prepare gets the
cached answer even when the balance could no longer afford a new one (it costs nothing more).
The incoming side is unchanged: each Prepare from the sender is its own bilateral transfer.
Each module's factory ``create(options, *, account, services)`` returns the account's
instance (:class:`ilptx.interfaces.IMiddleware`) or ``None`` when it has nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["MiddlewareServices", "INCOMING_ORDER", "OUTGOING_ORDER", "BUILTIN_NAMES", "builtin_factories"]

INCOMING_ORDER = ("errorHandler", "rateLimit", "maxPacketAmount", "throughput", "balance", "echo", "stats")
OUTGOING_ORDER = ("throughput", "deduplicate", "balance", "expire", "validateFulfillment", "stats", "alert")
#: Every built-in, in the order their factories are called for an account.
BUILTIN_NAMES = ("errorHandler", "rateLimit", "maxPacketAmount", "throughput", "balance", "echo",
                 "deduplicate", "expire", "validateFulfillment", "stats", "alert")


@dataclass
class MiddlewareServices:
    """What middlewares may use (the reference's ``MiddlewareServices``).

    :ivar clock: ``IReactorTime``.
    :ivar address: ``callable() -> str``, the connector's ILP address now.
    :ivar store: :class:`ilptx.interfaces.IStore`.
    :ivar stats: :class:`ilptx.interfaces.IStats`.
    :ivar settlement: :class:`ilptx.core.settlement.SettlementManager` (or ``None``).
    :ivar alerts: :class:`ilptx.core.alerts.Alerts`.
    """

    clock: Any
    address: Callable[[], str]
    store: Any
    stats: Any
    alerts: Any
    settlement: Optional[Any] = None
    extra: dict = field(default_factory=dict)


class Middleware:
    """Base for built-ins: every handler absent unless a subclass defines it."""

    name = "middleware"
    #: each handler is ``None`` (not in that pipeline) or a callable, as :class:`IMiddleware` says
    incoming: Optional[Callable[..., Any]] = None
    outgoing: Optional[Callable[..., Any]] = None
    incoming_money: Optional[Callable[..., Any]] = None
    outgoing_money: Optional[Callable[..., Any]] = None

    def start(self) -> None:
        """No timers by default."""

    def stop(self) -> None:
        """No timers by default."""


def builtin_factories() -> dict[str, Callable]:
    """:returns: name → ``create(options, *, account, services)`` for every built-in."""
    from ilptx.core.middleware import (
        alert, balance, deduplicate, echo, error_handler, expire, max_packet_amount, rate_limit,
        stats, throughput, validate_fulfillment,
    )

    modules = (error_handler, rate_limit, max_packet_amount, throughput, balance, echo, deduplicate,
               expire, validate_fulfillment, stats, alert)
    return {m.NAME: m.create for m in modules}
