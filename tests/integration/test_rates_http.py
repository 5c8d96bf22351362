"""The ecb/http rate backend against real HTTP servers on 127.0.0.1 (real reactor, pytest-twisted),
and a twistd connector whose rates server is down or up."""

from __future__ import annotations

import json
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import Logger, formatEvent
from twisted.web.resource import Resource
from twisted.web.server import Site

from ilptx.config import parse_config
from ilptx.rates import make_rate_backend
from integration.procs import assert_clean_twistd_stop, free_port, free_ports, wait_for_port

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "rates" / "fixtures"


class FixtureFiles(Resource):
    """Serves tests/unit/rates/fixtures/<name> with a content type by extension; counts requests."""

    isLeaf = True
    types = {".xml": "text/xml", ".json": "application/json"}

    def __init__(self):
        super().__init__()
        self.requests = 0

    def render_GET(self, request):
        self.requests += 1
        path = FIXTURES / request.postpath[-1].decode()
        if not path.is_file():
            request.setResponseCode(404)
            return b"not found"
        request.setHeader("content-type", self.types.get(path.suffix, "application/octet-stream"))
        return path.read_bytes()


@pytest.fixture
def rates_server():
    """A real HTTP server on 127.0.0.1 (port 0) serving the fixtures; stopped at teardown."""
    resource = FixtureFiles()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    resource.base = f"http://127.0.0.1:{port.getHost().port}"
    resource.port = port
    yield resource
    stopped = port.stopListening()  # None when a test already stopped it
    if stopped is not None:
        pytest_twisted.blockon(stopped)


def backend_for(url, backend="ecb", **options):
    accounts = {"eu": {"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 9},
                "us": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9}}
    config = parse_config({"ilpAddress": "test.rates", "accounts": accounts, "backend": backend,
                           "backendConfig": {"url": url, "timeout": 5000, **options}}, {})
    rates = make_rate_backend(config, reactor)
    events = []
    rates.log = Logger(namespace="test.rates", observer=events.append)
    return rates, events


@pytest_twisted.inlineCallbacks
def test_fetches_ecb_xml_from_a_real_server(rates_server):
    """backend ecb fetches the XML fixture over a real socket with treq and prices from it."""
    rates, _ = backend_for(rates_server.base + "/eurofxref-daily.xml")
    try:
        yield rates.connect()
        assert rates.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")
        assert rates.document.date == "2024-01-05" and rates_server.requests == 1
    finally:
        yield rates.disconnect()


@pytest_twisted.inlineCallbacks
def test_fetches_json_from_a_real_server(rates_server):
    """backend http reads a JSON document chosen by its Content-Type."""
    rates, _ = backend_for(rates_server.base + "/rates.json", backend="http")
    try:
        yield rates.connect()
        assert rates.document.base == "USD" and rates.rates["EUR"] == Decimal("0.91567")
    finally:
        yield rates.disconnect()


@pytest_twisted.inlineCallbacks
def test_server_gone_keeps_the_last_rates(rates_server):
    """After the server stops listening a refresh fails (connection refused); the rates stay."""
    rates, events = backend_for(rates_server.base + "/eurofxref-daily.xml")
    try:
        yield rates.connect()
        before = rates.document
        yield rates_server.port.stopListening()
        ok = yield rates.refresh()
        assert ok is False and rates.document is before
        assert rates.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")
        assert "ConnectionRefusedError" in formatEvent(events[-1])
    finally:
        yield rates.disconnect()


@pytest_twisted.inlineCallbacks
def test_http_404_and_refused_at_start_never_fail_connect(rates_server):
    """A 404 or a closed port at start-up: connect() still fires, rate() raises T00 until rates come."""
    for url in (rates_server.base + "/missing.xml", f"http://127.0.0.1:{free_port()}/r.xml"):
        rates, events = backend_for(url)
        try:
            yield rates.connect()
            assert rates.rates is None
            assert "no rates yet" in formatEvent(events[-1])
        finally:
            yield rates.disconnect()


def test_twistd_starts_without_its_rates_server_and_picks_them_up_later(processes):
    """A twistd connector with backend ecb: the rates server down at start-up neither blocks nor
    stops it; once the server is up the retry loads the rates; SIGTERM stops it cleanly."""
    btp_port, http_port = free_ports(2)
    accounts = {"alice": {"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 9,
                          "options": {"listener": {"host": "127.0.0.1", "port": btp_port, "secret": "a"}}}}
    connector = processes.connector([], env={
        "CONNECTOR_ILP_ADDRESS": "test.rates",
        "CONNECTOR_ACCOUNTS": json.dumps(accounts),
        "CONNECTOR_BACKEND": "ecb",
        "CONNECTOR_BACKEND_CONFIG": json.dumps({"url": f"http://127.0.0.1:{http_port}/eurofxref-daily.xml",
                                                "retryInterval": 500, "timeout": 2000}),
    })
    wait_for_port(btp_port, connector)
    assert "rates backend ecb: fetching" in connector.full_output()
    assert "no rates yet" in connector.full_output()
    processes.run([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(FIXTURES),
                   str(http_port)])
    deadline = time.monotonic() + 20
    while "rates backend ecb: 7 assets" not in connector.full_output():
        assert time.monotonic() < deadline, connector.output()
        assert connector.proc.poll() is None, connector.output()
        time.sleep(0.1)
    assert_clean_twistd_stop(connector.stop(signal.SIGTERM), signal.SIGTERM, connector)
