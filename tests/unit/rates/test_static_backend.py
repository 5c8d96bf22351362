"""cross_rate (the reference ecb formula) and the static backend."""

from decimal import Decimal

import pytest
from zope.interface.verify import verifyObject

from ilptx.codec.ilp import ErrorCode
from ilptx.core.rates import StaticBackend, as_decimal, convert, cross_rate
from ilptx.errors import UnreachableError
from ilptx.interfaces import IRateBackend

ECB = {"EUR": Decimal(1), "USD": Decimal("1.0921"), "JPY": Decimal("161.5"), "X": Decimal("0.9"),
       "Y": Decimal("7.4")}


@pytest.mark.parametrize("spread, source, destination, expected", [
    # expected values are bignumber.js 7.2.1 running the reference ecb.ts expression
    ("0.002", ("EUR", 9), ("USD", 9), "1.08991580000000"),
    ("0.002", ("EUR", 9), ("X", 2), "8.98200000000000e-8"),
    # the division is rounded to 20 decimal places before spread: only 5 digits survive
    ("0", ("USD", 18), ("JPY", 0), "1.47880000000000e-16"),
    ("0.002", ("USD", 6), ("Y", 9), "6762.38439703324"),
])
def test_cross_rate_matches_the_reference_digit_for_digit(spread, source, destination, expected):
    """rate = round20(dest·10^ds / (src·10^ss)) · (1 − spread), 15 significant digits, as bignumber.js."""
    assert cross_rate(ECB, Decimal(spread), *source, *destination) == Decimal(expected)


def test_cross_rate_rounds_half_up_to_15_digits():
    """1/3 → 0.333333333333333 (toPrecision(15)); 2/3 → ...667."""
    table = {"A": Decimal(3), "B": Decimal(1), "C": Decimal(2)}
    assert cross_rate(table, Decimal(0), "A", 0, "B", 0) == Decimal("0.333333333333333")
    assert cross_rate(table, Decimal(0), "A", 0, "C", 0) == Decimal("0.666666666666667")


def test_same_asset_needs_no_table_entry():
    """Two accounts in the same asset trade at 1 (before spread and scale) even if unpriced."""
    assert cross_rate({}, Decimal("0.01"), "ABC", 2, "ABC", 4) == Decimal("99")


@pytest.mark.parametrize("table, source, destination, missing", [
    (ECB, "EUR", "GBP", "GBP"), (ECB, "GBP", "EUR", "GBP"),
    ({"EUR": Decimal(1), "USD": Decimal(0)}, "EUR", "USD", "USD"),
])
def test_missing_rate_is_f02_with_the_reference_message(table, source, destination, missing):
    """An unpriced (or zero) asset raises F02 'no rate available. currency=…'."""
    with pytest.raises(UnreachableError) as info:
        cross_rate(table, Decimal(0), source, 9, destination, 9)
    assert info.value.code == ErrorCode.F02_UNREACHABLE
    assert info.value.message == f"no rate available. currency={missing}"


def test_static_backend_prices_from_its_table():
    """backend static: rates[code] = units of code per unit of the common base."""
    backend = StaticBackend({"USD": 1, "EUR": 0.9, "XRP": "0.5"}, Decimal("0.002"))
    verifyObject(IRateBackend, backend)
    assert backend.rates["EUR"] == Decimal("0.9")  # the float 0.9 as written, not its binary value
    assert backend.rate("USD", 2, "EUR", 2) == Decimal("0.8982")
    assert backend.rate("EUR", 2, "USD", 2) == Decimal("1.10888888888889")
    assert backend.rate("XRP", 6, "EUR", 9) == Decimal("1796.4")
    assert convert(1000, backend.rate("USD", 2, "EUR", 2)) == 898


def test_static_backend_unknown_code_is_f02():
    """An asset the table does not list is rejected with F02."""
    with pytest.raises(UnreachableError):
        StaticBackend({"USD": 1, "EUR": "0.9"}).rate("USD", 2, "GBP", 2)


@pytest.mark.parametrize("bad", [0, "-1", "abc", "NaN", "Infinity", True])
def test_static_backend_refuses_non_positive_rates(bad):
    """A rate that is not a positive finite number is refused at construction."""
    with pytest.raises(ValueError):
        StaticBackend({"USD": bad})


def test_static_backend_connect_and_disconnect_fire_at_once():
    """Nothing to fetch: connect() and disconnect() have already fired."""
    backend = StaticBackend({"USD": 1})
    assert backend.connect().called and backend.disconnect().called


def test_as_decimal_reads_floats_as_written():
    """as_decimal(0.1) is Decimal('0.1'), never the binary expansion."""
    assert as_decimal(0.1) == Decimal("0.1") and as_decimal("1e-3") == Decimal("0.001") and as_decimal(7) == 7
