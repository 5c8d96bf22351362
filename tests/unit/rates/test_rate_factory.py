"""make_rate_backend: backend names and backendConfig → a configured IRateBackend."""

from decimal import Decimal
from pathlib import Path

import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from zope.interface.verify import verifyObject

from ilptx.config import parse_config
from ilptx.core.rates import OneToOneBackend, StaticBackend
from ilptx.interfaces import IRateBackend
from ilptx.node import _make_rate_backend
from ilptx.rates import BACKEND_NAMES, make_rate_backend
from ilptx.rates.http import DEFAULT_ECB_URL, HttpRatesBackend

ECB_XML = (Path(__file__).parent / "fixtures" / "eurofxref-daily.xml").read_bytes()


class EcbFile(Resource):
    """Serves the ECB fixture at every path."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader("content-type", "text/xml")
        return ECB_XML


def config(backend, backend_config=None, spread=0.002, assets=("EUR", "USD")):
    accounts = {f"a{i}": {"relation": "child", "plugin": "btp", "assetCode": code, "assetScale": 9}
                for i, code in enumerate(assets)}
    data = {"ilpAddress": "test.rates", "accounts": accounts, "backend": backend, "spread": spread}
    if backend_config is not None:
        data["backendConfig"] = backend_config
    return parse_config(data, {})


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_backend_name_builds_an_irate_backend(name):
    """one-to-one, static, ecb and http each build something that provides IRateBackend."""
    options = {"static": {"rates": {"EUR": 1, "USD": 1.1}}, "http": {"url": "http://127.0.0.1:1/r.json"}}
    backend = make_rate_backend(config(name, options.get(name)), Clock())
    verifyObject(IRateBackend, backend)


def test_one_to_one_uses_top_level_spread_or_backend_config_spread():
    """backendConfig.spread wins over spread, as the reference merges them."""
    assert make_rate_backend(config("one-to-one"), Clock()).spread == Decimal("0.002")
    backend = make_rate_backend(config("one-to-one", {"spread": 0.01}), Clock())
    assert isinstance(backend, OneToOneBackend) and backend.spread == Decimal("0.01")


def test_static_backend_from_config():
    """backend static: YAML floats and strings become exact Decimals."""
    backend = make_rate_backend(config("static", {"rates": {"USD": 1, "EUR": 0.9, "XRP": "0.5"}},
                                       assets=("USD", "EUR", "XRP")), Clock())
    assert isinstance(backend, StaticBackend)
    assert backend.rate("USD", 9, "EUR", 9) == Decimal("0.8982")


def test_ecb_defaults():
    """backend ecb with no backendConfig fetches the reference's ECB URL hourly, 10 s timeout."""
    backend = make_rate_backend(config("ecb"), Clock())
    assert isinstance(backend, HttpRatesBackend)
    assert backend.url.to_text() == DEFAULT_ECB_URL and backend.name == "ecb"
    assert (backend.refresh_interval, backend.retry_interval, backend.timeout) == (3600000, 60000, 10000)
    assert backend.format == "auto" and backend.spread == Decimal("0.002")


def test_ecb_options_and_reference_rates_api_url():
    """ratesApiUrl (the reference's key) is read as url; format/intervals/timeout are passed on."""
    backend = make_rate_backend(config("ecb", {"ratesApiUrl": "http://127.0.0.1:8080/x.xml", "format": "xml",
                                               "refreshInterval": 60000, "retryInterval": 5000,
                                               "timeout": 2000}), Clock())
    assert backend.url.to_text() == "http://127.0.0.1:8080/x.xml" and backend.format == "xml"
    assert (backend.refresh_interval, backend.retry_interval, backend.timeout) == (60000, 5000, 2000)


def test_ecb_mock_data_fetches_nothing():
    """The reference's backendConfig.mockData serves that table (no HTTP)."""
    backend = make_rate_backend(config("ecb", {"mockData": {"base": "EUR", "rates": {"USD": 1.0921}}}), Clock())
    assert isinstance(backend, StaticBackend)
    assert backend.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")


def test_injected_http_client_and_clock():
    """With StubTreq and a Clock the ecb backend fetches through the stub on connect()."""
    clock = Clock()
    backend = make_rate_backend(config("ecb"), clock, http_client=StubTreq(EcbFile()))
    backend.connect()
    assert backend.rate("EUR", 9, "USD", 9) == Decimal("1.08991580000000")
    assert [c.getTime() for c in clock.getDelayedCalls()] == [3600]
    backend.disconnect()


def test_node_builds_the_configured_backend():
    """ilptx.node._make_rate_backend delegates to the factory with the reactor."""
    backend = _make_rate_backend(config("static", {"rates": {"EUR": 1, "USD": 2}}), Clock())
    assert isinstance(backend, StaticBackend)
