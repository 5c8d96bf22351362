"""Exchange rates (the reference connector's ``backend``).

Rates are :class:`decimal.Decimal`; amounts are ``int``. Never float.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal

from twisted.internet.defer import succeed
from zope.interface import implementer

from ilptx.interfaces import IRateBackend

__all__ = ["OneToOneBackend", "convert"]

# The reference's one-to-one backend rounds its rate to 15 significant digits
# (BigNumber#toPrecision(15), half-up); we keep that so both connectors agree to the unit.
_RATE_CONTEXT = Context(prec=15, rounding=ROUND_HALF_UP)
# Wide enough that a UInt64 (20 digits) times a 15-digit rate is exact before flooring.
_EXACT = Context(prec=80)


@implementer(IRateBackend)
class OneToOneBackend:
    """Every asset is worth the same: rate = (1 − spread) · 10^(destination scale − source scale).

    :param spread: fraction kept by the connector, e.g. ``Decimal("0.002")``.
    """

    name = "one-to-one"

    def __init__(self, spread: Decimal = Decimal(0)) -> None:
        self.spread = Decimal(spread)

    def rate(self, source_asset_code: str, source_asset_scale: int,
             destination_asset_code: str, destination_asset_scale: int) -> Decimal:
        """:returns: destination base units per source base unit (asset codes are ignored)."""
        raw = (Decimal(1) - self.spread).scaleb(destination_asset_scale - source_asset_scale)
        return _RATE_CONTEXT.plus(raw)

    def connect(self):
        """Nothing to fetch."""
        return succeed(None)

    def disconnect(self):
        """Nothing to release."""
        return succeed(None)


def convert(amount: int, rate: Decimal) -> int:
    """:returns: ``floor(amount · rate)`` as an ``int`` (the reference floors, never rounds up)."""
    return int(_EXACT.multiply(Decimal(amount), rate).to_integral_value(rounding=ROUND_FLOOR))
