"""Rate backends by config name, and the factory the composition root calls.

========== ============================================== ====================================
``backend`` class                                          ``backendConfig``
========== ============================================== ====================================
one-to-one :class:`ilptx.core.rates.OneToOneBackend`       ``spread``
static     :class:`ilptx.core.rates.StaticBackend`         ``rates`` (required), ``spread``
ecb        :class:`ilptx.rates.http.HttpRatesBackend`      ``url`` (default: the ECB daily XML),
                                                           ``ratesApiUrl``, ``format``,
                                                           ``refreshInterval``, ``retryInterval``,
                                                           ``timeout``, ``mockData``, ``spread``
http       :class:`ilptx.rates.http.HttpRatesBackend`      as ``ecb``, but ``url`` is required
========== ============================================== ====================================

``backendConfig.spread``, when given, wins over the top-level ``spread`` (the reference
merges ``{spread}`` with ``backendConfig`` the same way). ``ratesApiUrl`` and ``mockData``
are the reference ``ecb`` backend's option names: ``mockData: {base, rates}`` serves that
table and fetches nothing.

This package does network I/O (treq); :mod:`ilptx.core` must not import it.
"""

from __future__ import annotations

from typing import Optional

from treq.client import HTTPClient
from twisted.web.client import Agent

from ilptx.config import ConnectorConfig
from ilptx.core.rates import OneToOneBackend, StaticBackend, as_decimal
from ilptx.errors import ConfigError
from ilptx.rates.formats import RatesDocumentError, parse_table
from ilptx.rates.http import (
    DEFAULT_ECB_URL,
    DEFAULT_REFRESH_INTERVAL,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_TIMEOUT,
    HttpRatesBackend,
)

__all__ = ["BACKEND_NAMES", "make_rate_backend"]

#: every ``backend`` name this factory builds (config.py's ``BACKENDS`` lists the same)
BACKEND_NAMES = ("one-to-one", "static", "ecb", "http")


def make_rate_backend(config: ConnectorConfig, reactor, http_client=None):
    """Build the rate backend ``config.backend`` names, with its ``backendConfig``.

    :param config: validated config (``backendConfig`` already checked against the
        backend's schema by :func:`ilptx.config.parse_config`).
    :param reactor: ``IReactorTime`` (and ``IReactorTCP``/``IReactorSSL`` for the default
        HTTP client) for the HTTP backends.
    :param http_client: treq-like client for ``ecb``/``http``; default
        ``treq.client.HTTPClient(Agent(reactor))``. Tests pass ``treq.testing.StubTreq``.
    :returns: an :class:`ilptx.interfaces.IRateBackend` provider, not yet connected.
    :raises ConfigError: unknown backend, or a ``backendConfig`` value it cannot use.
    """
    name = config.backend
    options = config.raw.get("backendConfig", {})
    spread = as_decimal(options["spread"]) if "spread" in options else config.spread
    if name == "one-to-one":
        return OneToOneBackend(spread)
    if name == "static":
        try:
            return StaticBackend(options["rates"], spread)
        except ValueError as exc:
            raise ConfigError("backendConfig.rates", str(exc)) from None
    if name in ("ecb", "http"):
        if "mockData" in options:
            try:
                return StaticBackend(parse_table(options["mockData"]).rates, spread)
            except (RatesDocumentError, ValueError) as exc:
                raise ConfigError("backendConfig.mockData", str(exc)) from None
        url: Optional[str] = options.get("url") or options.get("ratesApiUrl")
        if url is None:
            if name == "http":
                raise ConfigError("backendConfig.url", "is required for backend http")
            url = DEFAULT_ECB_URL
        if http_client is None:
            http_client = HTTPClient(Agent(reactor))
        return HttpRatesBackend(
            url, reactor=reactor, http_client=http_client, spread=spread, name=name,
            fmt=options.get("format", "auto"),
            refresh_interval=options.get("refreshInterval", DEFAULT_REFRESH_INTERVAL),
            retry_interval=options.get("retryInterval", DEFAULT_RETRY_INTERVAL),
            timeout=options.get("timeout", DEFAULT_TIMEOUT),
        )
    raise ConfigError("backend", f"unknown backend {name!r}; available: {', '.join(BACKEND_NAMES)}")
