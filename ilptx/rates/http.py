"""The ``ecb`` / ``http`` rate backend: a rates table fetched over HTTP and kept fresh.

It fetches ``url`` (default: the ECB's daily reference rates, the reference connector's
``RATES_API``) with treq, parses it with :mod:`ilptx.rates.formats` (ECB XML or JSON) and
prices packets from the last table it read, with :func:`ilptx.core.rates.cross_rate` (the
reference ``ecb`` backend's formula). Unlike the reference, which fetches once in
``connect()`` and stops the connector when that fails, it never blocks start-up and never
stops the connector:

* :meth:`HttpRatesBackend.connect` starts fetching and fires after the first attempt,
  whether it worked or not, so start-up waits at most ``timeout`` ms (default 10000) for the
  rates; it never errbacks.
* Until a fetch has worked, :meth:`~HttpRatesBackend.rate` raises ``T00 Internal Error``
  ("exchange rates not available yet"): temporary, a sender may retry.
* After a successful fetch the next one is ``refreshInterval`` ms later; after a failed one
  (connection refused, timeout, HTTP status other than 200, a body that is not a rates
  table) the backend keeps the rates it had, logs one warning line, and tries again
  ``retryInterval`` ms later (at most ``refreshInterval``).

What it does not do: convert amounts (the switch does, :func:`ilptx.core.rates.convert`),
expire old rates (the last good table is used however old it is; every failed refresh says
its age in the log), or follow more than treq's default redirects.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping, Optional, Union

from hyperlink import DecodedURL
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, inlineCallbacks, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from zope.interface import implementer

from ilptx.core.rates import cross_rate
from ilptx.errors import InternalError
from ilptx.interfaces import IRateBackend
from ilptx.rates.formats import RatesDocument, RatesDocumentError, parse_rates

__all__ = [
    "DEFAULT_ECB_URL",
    "DEFAULT_REFRESH_INTERVAL",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_BODY_BYTES",
    "HttpRatesBackend",
    "RatesFetchError",
]

#: The reference connector's ``RATES_API`` (src/backends/ecb.ts).
DEFAULT_ECB_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
#: ms between successful fetches. The ECB publishes once per working day (about 16:00 CET);
#: hourly picks that up within the hour for a ~2 kB request.
DEFAULT_REFRESH_INTERVAL = 3_600_000
#: ms before trying again after a failed fetch (also before the first success).
DEFAULT_RETRY_INTERVAL = 60_000
#: ms for one whole fetch (connect, response, body). Also the longest start-up waits for the
#: first fetch (the connector connects its accounts after the rate backend, as the reference).
DEFAULT_TIMEOUT = 10_000
#: a larger body is refused (the ECB daily file is ~2 kB, its full history ~600 kB).
MAX_BODY_BYTES = 1_048_576

_ACCEPT = "application/xml, text/xml;q=0.9, application/json;q=0.9, */*;q=0.1"


class RatesFetchError(Exception):
    """A fetch got an answer that is not a rates table (HTTP status, body too large)."""


@implementer(IRateBackend)
class HttpRatesBackend:
    """Rates from a document fetched over HTTP, refreshed on a schedule.

    :param url: ``http``/``https`` URL of the rates document.
    :param reactor: ``IReactorTime`` for the schedule and the fetch timeout (a
        :class:`twisted.internet.task.Clock` in tests).
    :param http_client: a treq-like client: ``get(url, headers=..., unbuffered=True)`` →
        ``Deferred`` of a response with ``code``, ``headers`` and ``collect(callback)``
        (:class:`treq.client.HTTPClient`, or :class:`treq.testing.StubTreq` in tests).
    :param spread: fraction kept by the connector, e.g. ``Decimal("0.002")``.
    :param fmt: ``auto`` (by Content-Type, else by the first byte), ``xml`` or ``json``.
    :param refresh_interval: ms between successful fetches.
    :param retry_interval: ms before retrying after a failed fetch (capped at
        ``refresh_interval``).
    :param timeout: ms allowed for one fetch, body included.
    :param name: the backend's config name (``ecb`` or ``http``), for logs.
    """

    log = Logger()

    def __init__(self, url: Union[str, DecodedURL], *, reactor, http_client, spread: Decimal = Decimal(0),
                 fmt: str = "auto", refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
                 retry_interval: int = DEFAULT_RETRY_INTERVAL, timeout: int = DEFAULT_TIMEOUT,
                 name: str = "ecb", max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.url = url if isinstance(url, DecodedURL) else DecodedURL.from_text(url)
        self.reactor = reactor
        self.spread = Decimal(spread)
        self.format = fmt
        self.refresh_interval = refresh_interval
        self.retry_interval = min(retry_interval, refresh_interval)
        self.timeout = timeout
        self.name = name
        self.max_body_bytes = max_body_bytes
        #: the last table read, or ``None`` before the first successful fetch
        self.document: Optional[RatesDocument] = None
        #: ``reactor.seconds()`` of the last successful fetch, or ``None``
        self.fetched_at: Optional[float] = None
        self._http = http_client
        self._running = False
        self._call = None  # IDelayedCall of the next fetch
        self._fetching: Optional[Deferred] = None
        self._timed_out = False
        self._waiting: list[Deferred] = []  # refresh() callers while a fetch is in flight

    # -- IRateBackend -------------------------------------------------------------------

    def rate(self, source_asset_code: str, source_asset_scale: int,
             destination_asset_code: str, destination_asset_scale: int) -> Decimal:
        """:returns: destination base units per source base unit, after spread, from the
        last table fetched.

        :raises InternalError: (T00) no fetch has worked yet.
        :raises UnreachableError: (F02) an asset code is not in the table.
        """
        document = self.document
        if document is None:
            raise InternalError("exchange rates not available yet")
        return cross_rate(document.rates, self.spread, source_asset_code, source_asset_scale,
                          destination_asset_code, destination_asset_scale)

    def connect(self) -> Deferred:
        """Start fetching: now, then on the schedule.

        :returns: ``Deferred[None]`` that fires after the first fetch, successful or not
            (at most ``timeout`` ms); it never errbacks. A second call does nothing.
        """
        if self._running:
            return succeed(None)
        self._running = True
        self.log.info("rates backend {name}: fetching {url} every {interval} ms",
                      name=self.name, url=self._safe_url(), interval=self.refresh_interval)
        return self._cycle()

    def disconnect(self) -> Deferred:
        """Stop the schedule and abandon a fetch in flight. :returns: ``Deferred[None]``."""
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._fetching is not None:
            self._fetching.cancel()
        return succeed(None)

    # -- fetching ------------------------------------------------------------------------

    @property
    def rates(self) -> Optional[Mapping[str, Decimal]]:
        """asset code → units per unit of the base, or ``None`` before the first fetch."""
        return None if self.document is None else self.document.rates

    def refresh(self) -> Deferred:
        """Fetch the table once, now; on failure keep the old one and log why.

        :returns: ``Deferred[bool]``: whether this fetch brought a new table. Never errbacks.
            Called while a fetch is in flight, it waits for that one.
        """
        if self._fetching is not None:
            waiter: Deferred = Deferred()
            self._waiting.append(waiter)
            return waiter
        d = self._fetch()
        self._fetching = d
        # Our own timer rather than Deferred.addTimeout: cancelling the Agent's request fails
        # it with ResponseNeverReceived([CancelledError]), which addTimeout does not recognise.
        timer = self.reactor.callLater(self.timeout / 1000.0, self._time_out, d)
        d.addBoth(_cancel_timer, timer)
        d.addCallback(self._loaded)
        d.addErrback(self._failed)
        d.addBoth(self._done)
        return d

    def _cycle(self) -> Deferred:
        self._call = None
        return self.refresh().addCallback(self._schedule)

    def _schedule(self, ok: bool) -> None:
        if not self._running:
            return
        delay = self.refresh_interval if ok else self.retry_interval
        self._call = self.reactor.callLater(delay / 1000.0, self._cycle)

    @inlineCallbacks
    def _fetch(self):
        response = yield self._http.get(self.url, headers={"Accept": [_ACCEPT]}, unbuffered=True)
        chunks: list[bytes] = []
        received = [0]

        def collect(data: bytes) -> None:
            received[0] += len(data)
            if received[0] > self.max_body_bytes:
                raise RatesFetchError(f"body larger than {self.max_body_bytes} bytes")
            chunks.append(data)

        yield response.collect(collect)
        if response.code != 200:
            raise RatesFetchError(f"HTTP status {response.code}")
        content_type = (response.headers.getRawHeaders("content-type") or [""])[0]
        return parse_rates(b"".join(chunks), content_type, self.format)

    def _loaded(self, document: RatesDocument) -> bool:
        self.document = document
        self.fetched_at = self.reactor.seconds()
        self.log.info("rates backend {name}: {count} assets from {url} (base {base}, date {date})",
                      name=self.name, count=len(document.rates), url=self._safe_url(),
                      base=document.base or "-", date=document.date or "-")
        return True

    def _time_out(self, fetching: Deferred) -> None:
        self._timed_out = True
        fetching.cancel()

    def _failed(self, failure: Failure) -> bool:
        if self._timed_out:
            failure = Failure(TimeoutError(f"no complete answer within {self.timeout} ms"))
        elif not self._running and _cancelled(failure):
            return False  # disconnect() abandoned it
        if self.document is None:
            keeping = "no rates yet: packets that need a rate are rejected with T00"
        else:
            age = self.reactor.seconds() - self.fetched_at
            keeping = f"keeping the rates fetched {age:.0f} s ago (date {self.document.date or '-'})"
        retry = f"; next try in {self.retry_interval} ms" if self._running else ""
        self.log.warn("rates backend {name}: fetching {url} failed: {reason}; {keeping}{retry}",
                      name=self.name, url=self._safe_url(), reason=_reason(failure),
                      keeping=keeping, retry=retry)
        return False

    def _done(self, ok: bool) -> bool:
        self._fetching = None
        self._timed_out = False
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(ok)
        return ok

    def _safe_url(self) -> str:
        """The URL for logs, without credentials or query (which may hold an API key)."""
        return self.url.replace(userinfo=(), query=(), fragment="").to_text()


def _cancel_timer(result, timer):
    if timer.active():
        timer.cancel()
    return result


def _cancelled(failure: Failure) -> bool:
    """Did cancelling the fetch cause ``failure`` (directly, or inside the Agent's wrappers)?"""
    if failure.check(CancelledError):
        return True
    if failure.check(ResponseNeverReceived, ResponseFailed):
        return any(_cancelled(inner) for inner in failure.value.reasons)
    return False


def _reason(failure: Failure) -> str:
    """One line saying why a fetch failed (no traceback: these are expected)."""
    if failure.check(TimeoutError):
        return failure.getErrorMessage()
    if failure.check(ResponseNeverReceived, ResponseFailed):
        inner: Any = failure.value.reasons
        return "; ".join(_reason(f) for f in inner) or type(failure.value).__name__
    if failure.check(RatesDocumentError):
        return f"not a rates table: {failure.getErrorMessage()}"
    message = failure.getErrorMessage()
    return f"{type(failure.value).__name__}: {message}" if not failure.check(RatesFetchError) else message
