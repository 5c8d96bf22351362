"""Exchange rates (the reference connector's ``backend``).

Rates are :class:`decimal.Decimal`; amounts are ``int``. Never float.

Two backends live here because they do no I/O: :class:`OneToOneBackend` and
:class:`StaticBackend` (a fixed rates table from the config). The backend that fetches a
rates table over HTTP (``ecb``/``http``) is :mod:`ilptx.rates.http`; it prices packets with
:func:`cross_rate`, like :class:`StaticBackend`.

**Rates table convention** (the reference's ``ecb`` backend): ``rates[code]`` is how many
units of asset ``code`` one unit of a common base asset buys. The ECB's table has base EUR,
so ``{"EUR": 1, "USD": 1.1}`` says 1 EUR = 1.1 USD. The base is implicit: any asset can be
it (``{"USD": 1, "EUR": 0.9}`` says 1 USD = 0.9 EUR).

Errors (the switch turns them into Rejects):

* an asset code missing from the table: ``F02 Unreachable``, message
  ``no rate available. currency=XYZ`` (the reference's text; it throws a plain ``Error``, which
  goes out as ``F00``). F02 because the packet cannot be delivered through this connector
  until the operator adds a rate: a final error, so a sender does not retry, and not F00,
  which would blame the sender for a well-formed packet.
* no rates loaded yet (HTTP backend before its first successful fetch): ``T00 Internal
  Error``, temporary: the next fetch may bring the rates (see :mod:`ilptx.rates.http`).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Union

from twisted.internet.defer import succeed
from zope.interface import implementer

from ilptx.errors import UnreachableError
from ilptx.interfaces import IRateBackend

__all__ = ["OneToOneBackend", "StaticBackend", "as_decimal", "convert", "cross_rate"]

# The reference's one-to-one backend rounds its rate to 15 significant digits
# (BigNumber#toPrecision(15), half-up); we keep that so both connectors agree to the unit.
_RATE_CONTEXT = Context(prec=15, rounding=ROUND_HALF_UP)
# Wide enough that a UInt64 (20 digits) times a 15-digit rate is exact before flooring.
_EXACT = Context(prec=80)
# bignumber.js (the reference's arithmetic) rounds every division to DECIMAL_PLACES = 20,
# half-up; cross_rate does the same so that both connectors quote the same rate.
_DIVISION_PLACES = 20
# Exact for any product cross_rate forms: asset scales are 0..255, so a quotient has at most
# 20 + 255 + a few digits, times a spread of a few dozen digits.
_WIDE = Context(prec=1000)


@implementer(IRateBackend)
class OneToOneBackend:
    """Every asset is worth the same: rate = (1 − spread) · 10^(destination scale − source scale).

    :param spread: fraction kept by the connector, e.g. ``Decimal("0.002")``.
    """

    name = "one-to-one"

    def __init__(self, spread: Decimal = Decimal(0)) -> None:
        self.spread = Decimal(spread)
        self._by_scales: dict[tuple[int, int], Decimal] = {}  # the rate is fixed: compute it once

    def rate(self, source_asset_code: str, source_asset_scale: int,
             destination_asset_code: str, destination_asset_scale: int) -> Decimal:
        """:returns: destination base units per source base unit (asset codes are ignored)."""
        key = (source_asset_scale, destination_asset_scale)
        rate = self._by_scales.get(key)
        if rate is None:
            raw = (Decimal(1) - self.spread).scaleb(destination_asset_scale - source_asset_scale)
            rate = self._by_scales[key] = _RATE_CONTEXT.plus(raw)
        return rate

    def connect(self):
        """Nothing to fetch."""
        return succeed(None)

    def disconnect(self):
        """Nothing to release."""
        return succeed(None)


def as_decimal(value: Union[int, float, str, Decimal]) -> Decimal:
    """A config number as a Decimal, without binary noise: a float becomes the decimal it
    was written as (``0.9`` → ``Decimal("0.9")``, via ``repr``), a string is parsed as is.

    :raises ValueError: ``value`` is a bool or not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value)
    except Exception:
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def cross_rate(rates: Mapping[str, Decimal], spread: Decimal,
               source_asset_code: str, source_asset_scale: int,
               destination_asset_code: str, destination_asset_scale: int) -> Decimal:
    """The reference ``ecb`` backend's formula, digit for digit::

        rate = round20(rates[dest] · 10^dest_scale / (rates[source] · 10^source_scale))
               · (1 − spread), rounded to 15 significant digits, half-up

    where ``round20`` is bignumber.js's division (20 decimal places, half-up). Two accounts
    with the same asset code trade at 1 (before spread and scale) even when the code is not
    in the table (the reference would fail such a packet with "no rate available").

    :param rates: asset code → units of that asset per unit of the common base (> 0).
    :returns: destination base units per source base unit.
    :raises UnreachableError: (F02) an asset code has no rate.
    """
    if source_asset_code == destination_asset_code:
        source_rate = destination_rate = Decimal(1)
    else:
        source_rate = _lookup(rates, source_asset_code)
        destination_rate = _lookup(rates, destination_asset_code)
    quotient = (Fraction(destination_rate) * Fraction(10) ** destination_asset_scale
                / (Fraction(source_rate) * Fraction(10) ** source_asset_scale))
    # round half-up to 20 decimal places with integers: exact, unlike a float or a short context
    units = (quotient * 10 ** _DIVISION_PLACES * 2 + 1) // 2
    rounded = Decimal(units).scaleb(-_DIVISION_PLACES, _WIDE)
    return _RATE_CONTEXT.plus(_WIDE.multiply(rounded, Decimal(1) - Decimal(spread)))


def _lookup(rates: Mapping[str, Decimal], asset_code: str) -> Decimal:
    rate = rates.get(asset_code)
    if not rate:  # missing or zero, as the reference tests it
        raise UnreachableError(f"no rate available. currency={asset_code}")
    return rate


@implementer(IRateBackend)
class StaticBackend:
    """Fixed rates from the config (``backend: static``), priced with :func:`cross_rate`.

    :param rates: asset code → units of that asset per unit of a common base, e.g.
        ``{"USD": Decimal(1), "EUR": Decimal("0.9")}`` (1 USD = 0.9 EUR). Every rate > 0.
    :param spread: fraction kept by the connector, e.g. ``Decimal("0.002")``.
    :raises ValueError: a rate is not a positive number.
    """

    name = "static"

    def __init__(self, rates: Mapping[str, Decimal], spread: Decimal = Decimal(0)) -> None:
        table = {code: as_decimal(rate) for code, rate in rates.items()}
        for code, rate in table.items():
            if rate <= 0:
                raise ValueError(f"rate of {code} must be positive, not {rate}")
        self.rates = MappingProxyType(table)
        self.spread = Decimal(spread)
        self._cache: dict[tuple, Decimal] = {}  # fixed table: each pair of assets is priced once

    def rate(self, source_asset_code: str, source_asset_scale: int,
             destination_asset_code: str, destination_asset_scale: int) -> Decimal:
        """:returns: destination base units per source base unit, after spread.
        :raises UnreachableError: (F02) an asset code is not in the table."""
        key = (source_asset_code, source_asset_scale, destination_asset_code, destination_asset_scale)
        rate = self._cache.get(key)
        if rate is None:
            rate = self._cache[key] = cross_rate(self.rates, self.spread, *key)
        return rate

    def connect(self):
        """Nothing to fetch."""
        return succeed(None)

    def disconnect(self):
        """Nothing to release."""
        return succeed(None)


def convert(amount: int, rate: Decimal) -> int:
    """:returns: ``floor(amount · rate)`` as an ``int`` (the reference floors, never rounds up)."""
    return int(_EXACT.multiply(Decimal(amount), rate).to_integral_value(rounding=ROUND_FLOOR))
