"""The ecb/http rate backend over treq's StubTreq and a task.Clock: fetch, refresh schedule,
failed refreshes keeping the last rates, timeouts, disconnect."""

from decimal import Decimal
from pathlib import Path

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import fail
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface.verify import verifyObject

from ilptx.codec.ilp import ErrorCode
from ilptx.errors import InternalError, UnreachableError
from ilptx.interfaces import IRateBackend
from ilptx.rates.http import DEFAULT_ECB_URL, HttpRatesBackend

FIXTURES = Path(__file__).parent / "fixtures"
ECB_XML = (FIXTURES / "eurofxref-daily.xml").read_bytes()
RATES_JSON = (FIXTURES / "rates.json").read_bytes()
URL = "http://rates.example/eurofxref-daily.xml"
HOUR, MINUTE = 3600, 60  # seconds, as the Clock counts


class RatesServer(Resource):
    """Serves ``self.answer`` = (status, content type, body); ``None`` never answers."""

    isLeaf = True

    def __init__(self, answer=(200, "text/xml", ECB_XML)):
        super().__init__()
        self.answer = answer
        self.requests = []

    def render_GET(self, request):
        self.requests.append(request)
        if self.answer is None:
            return NOT_DONE_YET
        status, content_type, body = self.answer
        request.setResponseCode(status)
        request.setHeader("content-type", content_type)
        return body


class Events(list):
    """Log events of one backend."""

    def formatted(self):
        return [formatEvent(e) for e in self]


def make_backend(server=None, client=None, **kwargs):
    clock = Clock()
    server = server if server is not None else RatesServer()
    backend = HttpRatesBackend(kwargs.pop("url", URL), reactor=clock,
                               http_client=client if client is not None else StubTreq(server),
                               spread=Decimal("0.002"), **kwargs)
    events = Events()
    backend.log = Logger(namespace="test.rates", observer=events.append)
    return backend, server, clock, events


def test_provides_irate_backend():
    """HttpRatesBackend provides IRateBackend."""
    backend, _, _, _ = make_backend()
    verifyObject(IRateBackend, backend)


def test_connect_fetches_ecb_xml_and_prices_packets():
    """connect() fetches the ECB XML once; rates follow the reference formula (EUR base)."""
    backend, server, _, events = make_backend()
    d = backend.connect()
    assert d.called and len(server.requests) == 1
    assert backend.rates["USD"] == Decimal("1.0921") and backend.document.date == "2024-01-05"
    assert backend.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")
    assert "7 assets" in events.formatted()[-1]


def test_json_document_by_content_type():
    """A JSON answer (by Content-Type) is read as {base, rates}."""
    backend, _, _, _ = make_backend(RatesServer((200, "application/json", RATES_JSON)))
    backend.connect()
    assert backend.document.base == "USD"
    assert backend.rate("USD", 2, "EUR", 2) == Decimal("0.91567") * Decimal("0.998")


def test_explicit_format():
    """format json reads JSON served as text/plain."""
    backend, _, _, _ = make_backend(RatesServer((200, "text/plain", RATES_JSON)), fmt="json")
    backend.connect()
    assert backend.document.base == "USD"


def test_before_first_fetch_rate_is_t00():
    """Until a fetch worked, rate() raises T00 (temporary), not an exception the switch doesn't know."""
    backend, _, _, _ = make_backend(RatesServer((503, "text/plain", b"down")))
    with pytest.raises(InternalError) as info:
        backend.rate("EUR", 9, "USD", 9)
    assert info.value.code == ErrorCode.T00_INTERNAL_ERROR
    backend.connect()
    with pytest.raises(InternalError):
        backend.rate("EUR", 9, "USD", 9)


def test_unknown_currency_is_f02():
    """An asset missing from the fetched table is F02."""
    backend, _, _, _ = make_backend()
    backend.connect()
    with pytest.raises(UnreachableError):
        backend.rate("EUR", 9, "XRP", 6)


def test_refresh_schedule_on_the_clock():
    """After a success the next fetch is refreshInterval later; nothing in between."""
    backend, server, clock, _ = make_backend(refresh_interval=HOUR * 1000)
    backend.connect()
    clock.advance(HOUR - 1)
    assert len(server.requests) == 1
    clock.advance(1)
    assert len(server.requests) == 2
    clock.advance(HOUR)
    assert len(server.requests) == 3


def test_new_rates_replace_old_on_refresh():
    """A successful refresh replaces the table."""
    backend, server, clock, _ = make_backend(refresh_interval=HOUR * 1000)
    backend.connect()
    server.answer = (200, "application/json", b'{"base": "EUR", "rates": {"USD": "1.2"}}')
    clock.advance(HOUR)
    assert backend.rates["USD"] == Decimal("1.2")


@pytest.mark.parametrize("answer, reason", [
    ((500, "text/plain", b"oops"), "HTTP status 500"),
    ((404, "text/html", b"<html>not found</html>"), "HTTP status 404"),
    ((200, "text/html", b"<html><body>maintenance</body></html>"), "not a rates table"),
    ((200, "application/json", b'{"rates": {"USD": -1}}'), "not a rates table"),
    ((200, "text/xml", b"<Envelope><Cube>"), "not a rates table"),
])
def test_failed_refresh_keeps_last_rates_and_retries(answer, reason):
    """A failed refresh keeps the last table, logs one warning line, retries after retryInterval."""
    backend, server, clock, events = make_backend(refresh_interval=HOUR * 1000, retry_interval=MINUTE * 1000)
    backend.connect()
    before = backend.document
    server.answer = answer
    clock.advance(HOUR)
    assert len(server.requests) == 2 and backend.document is before
    assert backend.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")
    line = events.formatted()[-1]
    assert reason in line and "keeping the rates fetched 3600 s ago (date 2024-01-05)" in line
    assert "next try in 60000 ms" in line and "\n" not in line
    assert events[-1]["log_level"].name == "warn"
    clock.advance(MINUTE)
    assert len(server.requests) == 3  # the retry
    server.answer = (200, "text/xml", ECB_XML)
    clock.advance(MINUTE)
    assert len(server.requests) == 4 and backend.document is not before
    clock.advance(MINUTE)
    assert len(server.requests) == 4  # back on the hourly schedule


@pytest.mark.parametrize("error, reason", [
    (ConnectionRefusedError("127.0.0.1"), "ConnectionRefusedError"),
    (DNSLookupError("rates.example"), "DNSLookupError"),
])
def test_network_errors_keep_last_rates(error, reason):
    """Connection refused / DNS failure: logged, old rates kept, retried; never raised."""

    class Flaky:
        def __init__(self):
            self.real, self.down, self.calls = StubTreq(RatesServer()), False, 0

        def get(self, url, **kwargs):
            self.calls += 1
            return fail(error) if self.down else self.real.get(url, **kwargs)

    client = Flaky()
    backend, _, clock, events = make_backend(client=client, refresh_interval=HOUR * 1000,
                                             retry_interval=MINUTE * 1000)
    backend.connect()
    client.down = True
    clock.advance(HOUR)
    assert client.calls == 2 and backend.rates["USD"] == Decimal("1.0921")
    assert reason in events.formatted()[-1]
    clock.advance(MINUTE)
    assert client.calls == 3


def test_first_fetch_failing_never_errbacks_connect():
    """connect() fires (never errbacks) when the first fetch fails; retries every retryInterval."""
    client = type("Down", (), {"get": lambda self, url, **kw: fail(ConnectionRefusedError())})()
    backend, _, clock, events = make_backend(client=client, retry_interval=MINUTE * 1000)
    results = []
    backend.connect().addBoth(results.append)
    assert results == [None]
    assert "no rates yet: packets that need a rate are rejected with T00" in events.formatted()[-1]
    assert [c.getTime() for c in clock.getDelayedCalls()] == [MINUTE]


def test_timeout_abandons_a_hanging_fetch():
    """A server that never answers: after timeout ms the fetch fails, connect() fires, retry scheduled."""
    server = RatesServer(None)
    backend, _, clock, events = make_backend(server, timeout=5000, retry_interval=MINUTE * 1000)
    results = []
    backend.connect().addBoth(results.append)
    assert results == [] and len(server.requests) == 1
    clock.advance(5)
    assert results == [None] and backend.rates is None
    assert "no complete answer within 5000 ms" in events.formatted()[-1]
    assert [c.getTime() for c in clock.getDelayedCalls()] == [5 + MINUTE]


def test_retry_interval_is_capped_by_refresh_interval():
    """retryInterval longer than refreshInterval is cut to refreshInterval."""
    backend, _, _, _ = make_backend(refresh_interval=2000, retry_interval=60000)
    assert backend.retry_interval == 2000


def test_body_too_large_is_refused():
    """A body over the size cap is a failed fetch."""
    backend, _, _, events = make_backend(RatesServer((200, "text/xml", ECB_XML)), max_body_bytes=100)
    backend.connect()
    assert backend.rates is None and "body larger than 100 bytes" in events.formatted()[-1]


def test_disconnect_stops_the_schedule():
    """After disconnect() no fetch happens however far the clock moves."""
    backend, server, clock, _ = make_backend(refresh_interval=HOUR * 1000)
    backend.connect()
    assert backend.disconnect().called
    clock.advance(10 * HOUR)
    assert len(server.requests) == 1 and clock.getDelayedCalls() == []
    assert backend.rates is not None  # the rates stay usable while the connector drains


def test_disconnect_during_a_fetch_is_quiet():
    """Disconnecting with a fetch in flight cancels it without a warning or a retry."""
    server = RatesServer(None)
    backend, _, clock, events = make_backend(server)
    results = []
    backend.connect().addBoth(results.append)
    backend.disconnect()
    assert results == [None] and clock.getDelayedCalls() == []
    assert not [e for e in events if e["log_level"].name == "warn"]


def test_connect_twice_fetches_once():
    """A second connect() does not start a second schedule."""
    backend, server, clock, _ = make_backend(refresh_interval=HOUR * 1000)
    backend.connect()
    backend.connect()
    clock.advance(HOUR)
    assert len(server.requests) == 2


def test_refresh_while_in_flight_shares_the_fetch():
    """refresh() during a fetch waits for it instead of starting another."""
    server = RatesServer(None)
    backend, _, clock, _ = make_backend(server)
    first, second = [], []
    backend.refresh().addBoth(first.append)
    backend.refresh().addBoth(second.append)
    assert len(server.requests) == 1
    clock.advance(backend.timeout / 1000)
    assert first == [False] and second == [False]


def test_logs_hide_credentials_and_query():
    """The URL in logs has no userinfo or query (an API key there stays out of the logs)."""
    backend, _, _, events = make_backend(url="https://user:pw@rates.example/latest?access_key=SECRET")
    backend.connect()
    text = " ".join(events.formatted())
    assert "SECRET" not in text and "pw" not in text and "https://rates.example/latest" in text


def test_default_url_is_the_references_ecb_url():
    """The reference's RATES_API is the default."""
    assert DEFAULT_ECB_URL == "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
