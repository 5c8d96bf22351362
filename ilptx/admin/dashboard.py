"""The operator dashboard of the admin API (``/dashboard/``, the moneyd-gui role).

``GET /dashboard/``
    the page (``index.html``) and, under ``/dashboard/<name>``, its static files, built once
    from pinned npm libraries into ``ilptx/admin/ui/static/`` (``ilptx/admin/ui/build.sh``) and
    shipped in the package: no CDN, works offline. They hold no data, so they are served
    without the bearer token (:class:`~ilptx.admin.auth.BearerTokenGuard` ``public``); the
    page asks for the token once and keeps it in ``sessionStorage`` only, sending it as
    ``Authorization: Bearer`` on every data request, never in a URL.
``GET /dashboard/api/routes``
    ``{"routingTableId", "currentEpoch", "routes": {prefix: {"nextHop", "path", "source"}}}``:
    ``/routing``'s ``localRoutingTable`` with where each route comes from, ``source`` one of
    ``"configured"`` (``routes`` in the config), ``"local"`` (ourselves, an account's own
    address) or ``"learned"`` (CCP).
``GET /dashboard/api/live``
    server-sent events (``text/event-stream``; read with ``fetch()`` so the token goes in a
    header): first ``event: history`` with the samples of up to the last
    :data:`HISTORY_SAMPLES` seconds (a JSON array), then ``event: sample`` once per
    :data:`SAMPLE_INTERVAL` second. A sample is ``{"t": ms since the epoch, "accounts": {id:
    {"in": {result: n}, "out": {result: n}, "codes": {code: n}, "balance": "123" | null}}}``:
    running totals of the Prepares from (``in``) and to (``out``) each account since start,
    ``result`` ``fulfilled``/``rejected``/``failed`` (the ``ilp_connector_*_ilp_packets``
    counters of :mod:`ilptx.metrics`), the ILP codes of incoming Prepares not fulfilled, and
    the balance (base units, decimal string; ``null`` without ``balance`` settings). The
    page derives packets per second from consecutive samples. At most
    :data:`MAX_STREAMS` streams at once (``503`` past that); a client that does not read
    misses samples instead of making the connector buffer them.

The page's actions use the admin API's own routes (``POST /balance``, ``PUT`` / ``DELETE
/accounts/ID``, ``DELETE /alerts/ID``). Samples are taken only while a stream is open, so
nothing is added to the per-packet path, and none at all while nobody watches.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Optional

from klein import Klein
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import HTTPException
from zope.interface import implementer

from ilptx.admin.api import HttpError, _json, _text
from ilptx.metrics import INCOMING_PACKETS, OUTGOING_PACKETS

__all__ = ["Dashboard", "LiveTraffic", "STATIC_DIR", "SAMPLE_INTERVAL", "HISTORY_SAMPLES", "MAX_STREAMS",
           "packet_totals"]

#: where the built page is (``index.html``, ``dashboard.js``, ``dashboard.css``, ...)
STATIC_DIR = Path(__file__).with_name("ui") / "static"
#: seconds between two live samples
SAMPLE_INTERVAL = 1.0
#: samples kept for the chart (5 minutes at one a second)
HISTORY_SAMPLES = 300
#: live streams served at once
MAX_STREAMS = 8
#: the path the dashboard is mounted at (by :class:`ilptx.admin.api.AdminApi`)
PREFIX = b"/dashboard"

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
          ".svg": "image/svg+xml", ".png": "image/png"}
#: only the package's own files: no inline script or style, no other origin, not framed
_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _load_static(directory: Path) -> dict[str, tuple[bytes, str]]:
    """:returns: ``{file name: (content, content type)}`` of the files directly in ``directory``
    whose suffix is known (read once, so a request can name nothing but these)."""
    if not directory.is_dir():
        return {}
    return {path.name: (path.read_bytes(), _TYPES[path.suffix])
            for path in sorted(directory.iterdir()) if path.is_file() and path.suffix in _TYPES}


def packet_totals(families) -> dict[str, dict]:
    """Sum the packet counters per account.

    :param families: :meth:`ilptx.metrics.PrometheusStats.families`.
    :returns: ``{account id: {"in": {result: n}, "out": {result: n}, "codes": {code: n}}}``
        (``codes``: incoming Prepares rejected or failed, by ILP error code).
    """
    out: dict[str, dict] = {}
    for family in families:
        side = "in" if family.name == INCOMING_PACKETS else "out" if family.name == OUTGOING_PACKETS else None
        if side is None:
            continue
        for sample in family.samples:
            labels = sample.labels
            entry = out.setdefault(labels["account"], {"in": {}, "out": {}, "codes": {}})
            counts = entry[side]
            counts[labels["result"]] = counts.get(labels["result"], 0) + sample.value
            code = labels.get("code")
            if side == "in" and code:
                entry["codes"][code] = entry["codes"].get(code, 0) + sample.value
    return out


class LiveTraffic:
    """Samples every account's packet totals and balance each :data:`SAMPLE_INTERVAL` while at
    least one stream is open, keeps the last :data:`HISTORY_SAMPLES`, and hands each sample
    to the open streams.

    :param api: the :class:`~ilptx.admin.api.AdminApi` (its connector's ``stats``, ``store``,
        ``accounts``, and which accounts keep a balance).
    :param clock: an ``IReactorTime``.
    """

    log = Logger()

    def __init__(self, api, clock, *, interval: float = SAMPLE_INTERVAL,
                 history: int = HISTORY_SAMPLES, max_streams: int = MAX_STREAMS) -> None:
        self.api = api
        self.connector = api.connector
        self.clock = clock
        self.interval = interval
        self.max_streams = max_streams
        #: the samples kept (oldest first), each the ``dict`` sent as JSON
        self.history: deque = deque(maxlen=history)
        self.streams: set = set()
        self._loop: Optional[LoopingCall] = None

    def check_room(self) -> None:
        """:raises HttpError: 503 when :attr:`max_streams` streams are open."""
        if len(self.streams) >= self.max_streams:
            raise HttpError(503, f"too many live streams open (at most {self.max_streams})")

    def subscribe(self, stream) -> None:
        """Start sending samples to ``stream`` (``stream.send(sample)``); the first stream
        starts the sampling (a sample at once)."""
        self.streams.add(stream)
        if self._loop is None:
            self._loop = LoopingCall(self._tick)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=True)

    def unsubscribe(self, stream) -> None:
        """Stop sending to ``stream``; the last one gone stops the sampling."""
        self.streams.discard(stream)
        if not self.streams and self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    def _tick(self):
        return maybeDeferred(self.connector.store.all_balances).addCallback(self._sample).addErrback(
            lambda failure: self.log.failure("dashboard: a live traffic sample failed", failure))

    def _sample(self, balances: dict) -> None:
        families = getattr(self.connector.stats, "families", None)
        totals = packet_totals(families()) if families is not None else {}
        empty = {"in": {}, "out": {}, "codes": {}}
        accounts = {}
        for account in self.connector.accounts:
            state = balances.get(account.id)
            balance = None  # as /balance: only accounts with balance settings have one
            if self.api.limits(account.id) is not None:
                balance = str(state.balance) if state is not None else "0"
            accounts[account.id] = {**totals.get(account.id, empty), "balance": balance}
        sample = {"t": int(self.clock.seconds() * 1000), "accounts": accounts}
        self.history.append(sample)
        for stream in list(self.streams):
            stream.send(sample)


@implementer(IPushProducer)
class _EventStream(Resource):
    """One ``text/event-stream`` response: the history, then each sample; paused while the
    client's connection is full (samples meanwhile are skipped, not buffered)."""

    isLeaf = True

    def __init__(self, live: LiveTraffic) -> None:
        super().__init__()
        self._live = live
        self._request = None
        self._paused = False

    def render_GET(self, request):
        self._request = request
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        request.write(_event("history", list(self._live.history)))
        self._live.subscribe(self)
        return NOT_DONE_YET

    def send(self, sample: dict) -> None:
        if not self._paused and self._request is not None:
            self._request.write(_event("sample", sample))

    def _finished(self, _) -> None:
        self._live.unsubscribe(self)
        self._request = None

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False

    def stopProducing(self) -> None:
        self._live.unsubscribe(self)
        self._paused = True


def _event(name: str, data) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode("utf-8")


class Dashboard:
    """The dashboard's routes, mounted by :class:`ilptx.admin.api.AdminApi` at ``/dashboard/``.

    :param api: the :class:`~ilptx.admin.api.AdminApi` (its connector and routing state).
    :param clock: an ``IReactorTime`` for the live samples.
    :param static_dir: the built page (default :data:`STATIC_DIR`).
    """

    app = Klein()

    def __init__(self, api, *, clock, static_dir: Path = STATIC_DIR) -> None:
        self.api = api
        self.files = _load_static(static_dir)
        self.live = LiveTraffic(api, clock)
        self.resource = self.app.resource()

    @property
    def public_paths(self) -> frozenset:
        """The request paths served without the token: the page and its static files."""
        return frozenset({PREFIX, PREFIX + b"/"} | {PREFIX + b"/" + name.encode("utf-8") for name in self.files})

    @app.route("/", methods=["GET"])
    def index(self, request):
        """The page."""
        return self._file(request, "index.html")

    @app.route("/<name>", methods=["GET"])
    def static(self, request, name):
        """A static file of the page (404 for any other name)."""
        return self._file(request, name)

    @app.route("/api/routes", methods=["GET"])
    def routes(self, request):
        """The local routing table with each route's source (see the module docstring)."""
        state = self.api.routing_state()
        manager = self.api.connector.switch.route_manager
        if manager is not None:
            configured, local = set(manager.configured), set(manager.local_routes)
        else:
            configured = {prefix for prefix, _ in self.api.connector.config.routes}
            local = set(state["localRoutingTable"]) - configured
        routes = {}
        for prefix, route in state["localRoutingTable"].items():
            if route is None:
                continue
            source = "configured" if prefix in configured else "local" if prefix in local else "learned"
            routes[prefix] = {**route, "source": source}
        return _json(request, {"routingTableId": state["routingTableId"], "currentEpoch": state["currentEpoch"],
                               "routes": routes})

    @app.route("/api/live", methods=["GET"])
    def live_stream(self, request):
        """Server-sent events of the live traffic (see the module docstring)."""
        self.live.check_room()
        return _EventStream(self.live)

    def _file(self, request, name: str):
        found = self.files.get(name)
        if found is None:
            if not self.files:
                raise HttpError(404, f"the dashboard is not built: no files in {STATIC_DIR}")
            raise HttpError(404, f"no such dashboard file: {name}")
        content, kind = found
        request.setHeader(b"Content-Type", kind.encode("ascii"))
        request.setHeader(b"Content-Security-Policy", _CSP)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        request.setHeader(b"Cache-Control", b"no-cache")
        return content

    @app.handle_errors(HttpError, HTTPException)
    def _http_error(self, request, failure):
        error = failure.value
        return _text(request, error.code, getattr(error, "message", None) or error.name)
