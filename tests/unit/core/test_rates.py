"""One-to-one rate backend and amount conversion."""

from decimal import Decimal

from ilptx.core.rates import OneToOneBackend, convert


def test_rate_applies_spread_and_scale_difference():
    """rate = (1 - spread) * 10^(dest scale - source scale)."""
    backend = OneToOneBackend(Decimal("0.002"))
    assert backend.rate("USD", 9, "USD", 9) == Decimal("0.998")
    assert backend.rate("USD", 9, "XRP", 6) == Decimal("0.000998")
    assert backend.rate("XRP", 6, "USD", 9) == Decimal("998")


def test_rate_is_decimal_not_float():
    """Rates are Decimal, so no binary rounding creeps in."""
    rate = OneToOneBackend(Decimal("0.1")).rate("A", 2, "B", 2)
    assert isinstance(rate, Decimal) and rate == Decimal("0.9")


def test_rate_rounds_to_15_significant_digits_like_the_reference():
    """The reference rounds its rate with toPrecision(15)."""
    rate = OneToOneBackend(Decimal("0.0000000000000001")).rate("A", 0, "B", 0)
    assert rate == Decimal("1.00000000000000")


def test_convert_floors():
    """Amounts are floored, never rounded up."""
    assert convert(1000, Decimal("0.998")) == 998
    assert convert(999, Decimal("0.001")) == 0
    assert convert(1999, Decimal("0.001")) == 1


def test_convert_is_exact_for_uint64():
    """A UInt64 amount times a 15-digit rate loses no digits."""
    amount = 2**64 - 1
    assert convert(amount, Decimal("0.999999999999999")) == (amount * 999999999999999) // 10**15
