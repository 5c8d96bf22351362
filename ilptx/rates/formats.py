"""Rates documents: bytes in, a :class:`RatesDocument` out. Sans-IO: no network, no clock.

Two formats:

* **ECB XML**, the European Central Bank's ``eurofxref-daily.xml`` (base EUR)::

      <gesmes:Envelope ...><Cube><Cube time="2024-01-05">
        <Cube currency="USD" rate="1.0921"/> ...

  Only the first ``<Cube time="...">`` is read (the ECB's history files list the newest day
  first); a document without ``time`` cubes yields every ``<Cube currency rate>``.
* **JSON**, the shape of the reference's ``mockData`` (and of exchangeratesapi.io /
  frankfurter.app): ``{"base": "EUR", "date": "2024-01-05", "rates": {"USD": 1.0921, ...}}``;
  ``base`` and ``date`` are optional, rates are numbers or decimal strings.

``rates[code]`` is units of ``code`` per unit of ``base`` (the convention of
:mod:`ilptx.core.rates`); the base itself is added with rate 1. Every rate must be a
positive finite number, or the whole document is refused (the caller keeps its old rates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Mapping, Optional
from xml.etree import ElementTree

__all__ = ["FORMATS", "RatesDocument", "RatesDocumentError", "parse_ecb_xml", "parse_json", "parse_rates", "parse_table"]

#: values of ``backendConfig.format``
FORMATS = ("auto", "xml", "json")


class RatesDocumentError(ValueError):
    """The body is not a rates document we can read; ``str()`` says why, in one line."""


@dataclass(frozen=True)
class RatesDocument:
    """A parsed rates table.

    :ivar base: the base asset code, or ``None`` when the document does not say.
    :ivar rates: asset code → units of that asset per unit of ``base`` (``Decimal`` > 0),
        including ``base`` itself at 1.
    :ivar date: the date the document gives for its rates (text as written), or ``None``.
    """

    base: Optional[str]
    rates: Mapping[str, Decimal]
    date: Optional[str] = None


def parse_rates(body: bytes, content_type: str = "", fmt: str = "auto") -> RatesDocument:
    """Parse ``body`` as ``fmt``; ``auto`` picks by ``content_type`` (``…json`` / ``…xml``),
    else by the first non-blank byte (``{`` JSON, ``<`` XML).

    :raises RatesDocumentError: unreadable, or not a rates table.
    """
    if fmt == "auto":
        fmt = _sniff(body, content_type)
    if fmt == "json":
        return parse_json(body)
    if fmt == "xml":
        return parse_ecb_xml(body)
    raise RatesDocumentError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _sniff(body: bytes, content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type.endswith("json"):
        return "json"
    if media_type.endswith("xml"):
        return "xml"
    head = body.lstrip()[:1]
    if head == b"{":
        return "json"
    if head == b"<":
        return "xml"
    raise RatesDocumentError(f"neither JSON nor XML (content type {content_type or 'none'!r})")


def parse_ecb_xml(body: bytes) -> RatesDocument:
    """Read the ECB's XML format (base EUR). See the module docstring.

    :raises RatesDocumentError: not well-formed XML, entity declarations, no rates, or a bad rate.
    """
    if b"<!ENTITY" in body or b"<!DOCTYPE" in body:
        # The ECB file has neither; refusing them rules out entity-expansion bombs.
        raise RatesDocumentError("XML with a DOCTYPE or entity declarations is not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise RatesDocumentError(f"invalid XML: {exc}") from None
    cubes = [e for e in root.iter() if _local_name(e.tag) == "Cube"]
    day = next((c for c in cubes if c.get("time")), None)
    if day is not None:
        cubes = [c for c in day.iter() if _local_name(c.tag) == "Cube"]
    rates: dict[str, Decimal] = {}
    for cube in cubes:
        currency, rate = cube.get("currency"), cube.get("rate")
        if currency is None and rate is None:
            continue
        if not currency:
            raise RatesDocumentError(f"<Cube rate={rate!r}> has no currency")
        rates[currency] = _positive(rate, f"rate of {currency}")
    if not rates:
        raise RatesDocumentError("no <Cube currency=... rate=...> entries")
    return _document("EUR", rates, day.get("time") if day is not None else None)


def parse_json(body: bytes) -> RatesDocument:
    """Read ``{"base": "EUR", "date": "...", "rates": {"USD": 1.1, ...}}`` (floats are read
    as decimals, never as binary floats).

    :raises RatesDocumentError: not JSON, no ``rates`` object, or a bad rate.
    """
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RatesDocumentError(f"invalid JSON: {exc}") from None
    return parse_table(data)


def parse_table(data: Any) -> RatesDocument:
    """Check an already-parsed ``{"base", "date", "rates"}`` mapping (the JSON format, or the
    reference's ``backendConfig.mockData``).

    :raises RatesDocumentError: no ``rates`` mapping, a bad ``base``, or a bad rate.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("rates"), Mapping):
        raise RatesDocumentError('expected an object with "rates": {"USD": 1.1, ...}')
    base = data.get("base")
    if base is not None and (not isinstance(base, str) or not base):
        raise RatesDocumentError('"base" must be an asset code')
    rates = {}
    for code, rate in data["rates"].items():
        if not code:
            raise RatesDocumentError("an empty asset code in \"rates\"")
        rates[code] = _positive(rate, f"rate of {code}")
    if not rates:
        raise RatesDocumentError('"rates" is empty')
    date = data.get("date")
    return _document(base, rates, None if date is None else str(date))


def _document(base: Optional[str], rates: dict, date: Optional[str]) -> RatesDocument:
    if base is not None:
        rates[base] = Decimal(1)  # as the reference: rates[base] = 1
    return RatesDocument(base, MappingProxyType(rates), date)


def _positive(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise RatesDocumentError(f"{what} is not a number: {value!r}")
    try:
        rate = Decimal(repr(value) if isinstance(value, float) else value)
    except Exception:
        raise RatesDocumentError(f"{what} is not a number: {value!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise RatesDocumentError(f"{what} must be a positive number, not {value!r}")
    return rate


def _local_name(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
