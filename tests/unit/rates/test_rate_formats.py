"""Rates documents: ECB XML and JSON, bytes in, Decimal table out; garbage is refused."""

from decimal import Decimal
from pathlib import Path

import pytest

from ilptx.rates.formats import RatesDocumentError, parse_ecb_xml, parse_json, parse_rates, parse_table

FIXTURES = Path(__file__).parent / "fixtures"
ECB_XML = (FIXTURES / "eurofxref-daily.xml").read_bytes()
RATES_JSON = (FIXTURES / "rates.json").read_bytes()


def test_ecb_daily_xml():
    """The ECB daily file: base EUR (added at 1), the day's date, every currency as Decimal."""
    doc = parse_ecb_xml(ECB_XML)
    assert doc.base == "EUR" and doc.date == "2024-01-05"
    assert doc.rates["USD"] == Decimal("1.0921") and doc.rates["GBP"] == Decimal("0.86115")
    assert doc.rates["EUR"] == 1 and len(doc.rates) == 7


def test_ecb_history_xml_uses_the_first_day():
    """A history file (several <Cube time>) yields its first, i.e. newest, day."""
    body = (b"<Envelope><Cube><Cube time='2024-01-05'><Cube currency='USD' rate='1.09'/></Cube>"
            b"<Cube time='2024-01-04'><Cube currency='USD' rate='1.10'/><Cube currency='JPY' rate='158'/>"
            b"</Cube></Cube></Envelope>")
    doc = parse_ecb_xml(body)
    assert doc.date == "2024-01-05" and dict(doc.rates) == {"USD": Decimal("1.09"), "EUR": 1}


def test_json_with_numbers_and_strings():
    """JSON rates may be numbers or strings; floats are read as written (no binary float)."""
    doc = parse_json(RATES_JSON)
    assert doc.base == "USD" and doc.date == "2024-01-05"
    assert doc.rates == {"EUR": Decimal("0.91567"), "XRP": Decimal("1.6"), "JPY": Decimal("145.01"), "USD": 1}
    assert all(isinstance(rate, Decimal) for rate in doc.rates.values())


def test_json_without_base():
    """base is optional (then no asset is added at 1)."""
    assert dict(parse_json(b'{"rates": {"A": 2}}').rates) == {"A": Decimal(2)}


@pytest.mark.parametrize("content_type, body, base", [
    ("application/json; charset=utf-8", RATES_JSON, "USD"),
    ("text/xml", ECB_XML, "EUR"),
    ("application/xml", ECB_XML, "EUR"),
    ("", b"  \n" + RATES_JSON, "USD"),
    ("application/octet-stream", ECB_XML, "EUR"),
])
def test_auto_format_by_content_type_then_first_byte(content_type, body, base):
    """format auto: Content-Type …json/…xml decides, else the first non-blank byte."""
    assert parse_rates(body, content_type).base == base


def test_explicit_format_wins_over_content_type():
    """format xml reads XML even when the server says text/plain."""
    assert parse_rates(ECB_XML, "application/json", "xml").base == "EUR"
    with pytest.raises(RatesDocumentError):
        parse_rates(ECB_XML, "text/xml", "json")


@pytest.mark.parametrize("body, content_type", [
    (b"<html><body>Service unavailable</body></html>", "text/html"),
    (b"<Envelope><Cube>", "text/xml"),
    (b"<Envelope><Cube><Cube currency='USD' rate='abc'/></Cube></Envelope>", "text/xml"),
    (b"<Envelope><Cube><Cube currency='USD' rate='-1'/></Cube></Envelope>", "text/xml"),
    (b"<Envelope><Cube><Cube rate='1.1'/></Cube></Envelope>", "text/xml"),
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><l>&a;</l>', "text/xml"),
    (b"{not json", "application/json"),
    (b'{"rates": []}', "application/json"),
    (b'{"rates": {}}', "application/json"),
    (b'{"rates": {"USD": 0}}', "application/json"),
    (b'{"rates": {"USD": true}}', "application/json"),
    (b'{"rates": {"USD": "NaN"}}', "application/json"),
    (b'{"base": 5, "rates": {"USD": 1}}', "application/json"),
    (b"", ""),
    (b"plain text", "text/plain"),
])
def test_garbage_is_refused(body, content_type):
    """Anything that is not a complete, positive rates table raises RatesDocumentError."""
    with pytest.raises(RatesDocumentError) as info:
        parse_rates(body, content_type)
    assert "\n" not in str(info.value)


def test_parse_table_reads_reference_mock_data():
    """The reference's mockData shape {base, rates} is read by parse_table."""
    doc = parse_table({"base": "EUR", "rates": {"USD": 1.1}})
    assert doc.rates == {"USD": Decimal("1.1"), "EUR": 1}
