"""The admin API (``adminApi: true``): the reference connector's paths and JSON shapes, on Klein.

``GET /status``
    ``{"balances": {id: "123"}, "connected": {id: bool}, "localRoutingTable": {prefix: {"nextHop", "path"}}}``
``GET /routing``
    ``{"routingTableId", "currentEpoch", "localRoutingTable", "forwardingRoutingTable", "routingLog", "peers"}``
``GET /accounts``
    ``{"address", "accounts": {id: {"info": settings without options, "connected", "adminInfo"}}}``
``GET /accounts/ID``
    ``{"account", "plugin", "info"}`` from ``get_admin_info()`` (``IAdminInfoProvider``; else 501)
``POST /accounts/ID``
    ``{"account", "plugin", "result"}`` from ``send_admin_info(body)`` (``IAdminInfoReceiver``; else 501)
``PUT /accounts/ID``
    add (201) or replace (200) an account at run time; body: an ``accounts.ID`` entry. The
    account is kept only if its plugin starts (else ``409`` with the cause, and nothing kept);
    its listener binds ``127.0.0.1`` unless it names a ``host``
    (:func:`ilptx.node.runtime_account_config`, :meth:`ilptx.node.Connector.add_account`)
``DELETE /accounts/ID``
    remove an account at run time (204)
``GET /balance``
    ``{"accounts": {id: {"balance", "minimum", "maximum", "incomingReserved", "outgoingReserved",
    "settling"}}}``
``POST /balance``
    body ``{"accountId", "amountDiff": "-100"}`` → the account's new balance entry
``GET /rates``
    ``{sourceId: {destinationId: rate}}``
``GET /stats``
    the ``ilp_connector_*`` metrics as prom-client's ``getMetricsAsJSON``
``GET /alerts``
    ``{"alerts": [{"id", "accountId", "triggeredBy", "message", "count", "createdAt", "updatedAt"}]}``
``DELETE /alerts/ID``
    dismiss an alert (204)
``GET /metrics``
    Prometheus text format 0.0.4
``POST /addAccount``
    body ``{"id", "options": an accounts entry}`` → ``{"plugin": id, "connected"}`` (as ``PUT``)
``GET /dashboard/``
    the operator dashboard: a page and its static files (no data, so served without the
    token), ``GET /dashboard/api/routes`` and the live stream ``GET /dashboard/api/live``
    (:mod:`ilptx.admin.dashboard`)

Amounts are decimal strings (``amountDiff``: at most :data:`MAX_AMOUNT_DIGITS` digits).
A body is JSON of at most :data:`MAX_BODY_BYTES` bytes, nested at most
:data:`MAX_JSON_DEPTH` levels, with no number of more than :data:`MAX_AMOUNT_DIGITS` digits.
Errors are one line of ``text/plain``: ``400`` for a body that is not such JSON or fails
validation (an account's settings fail with the config file's one-line message, e.g.
``accounts.carol.assetScale: must be an integer 0..255``), ``404`` for an unknown account
or alert, ``409`` for a request the connector's state refuses, ``413`` for a body over the
limit, ``501`` when a plugin has no admin info. (The reference answers every error with ``500``.)

Accounts added through ``PUT /accounts/ID`` or ``POST /addAccount`` are kept in the store
and come back after a restart (:meth:`ilptx.node.Connector.add_account`); accounts defined
in the config file cannot be added or replaced here (edit the file), only removed until the
next start.

Authentication (``adminApiToken``) is :mod:`ilptx.admin.auth`.
"""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any, Optional

from klein import Klein
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from werkzeug.exceptions import HTTPException

from ilptx.admin.auth import BearerTokenGuard
from ilptx.errors import ConfigError
from ilptx.interfaces import IAdminInfoProvider, IAdminInfoReceiver
from ilptx.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

__all__ = ["AdminApi", "HttpError", "MAX_AMOUNT_DIGITS", "MAX_BODY_BYTES", "MAX_JSON_DEPTH"]

#: The largest request body read (bytes); a larger one is answered ``413`` without being kept.
MAX_BODY_BYTES = 1 << 20
#: How deeply a body's JSON arrays and objects may nest (the reference's bodies use 3 levels).
MAX_JSON_DEPTH = 32
#: The most digits of an amount (``amountDiff``) or of any JSON number in a body: as many as
#: a balance limit in the config may have, far above any ledger's (a UInt64 has 20), far
#: below Python's int-string limit (4300).
MAX_AMOUNT_DIGITS = 100

# the reference's BalanceUpdate.json pattern, matched against the whole string
_AMOUNT_DIFF = re.compile(r"0|-?[1-9][0-9]{0,%d}" % (MAX_AMOUNT_DIGITS - 1))
_ALERT_ID = re.compile(r"[0-9]{1,%d}" % MAX_AMOUNT_DIGITS)


class HttpError(Exception):
    """An answer other than 2xx: ``code`` and a one-line ``message`` (sent as text/plain)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AdminApi:
    """The admin API of one connector.

    :param connector: the :class:`ilptx.node.Connector`.
    :param token: ``adminApiToken``; when set (non-empty) every request needs
        ``Authorization: Bearer <token>``.
    """

    app = Klein()
    log = Logger()

    def __init__(self, connector, *, token: Optional[str] = None, clock=None) -> None:
        from ilptx.admin.dashboard import Dashboard

        self.connector = connector
        self.token = token or None
        #: the operator dashboard under ``/dashboard/`` (:mod:`ilptx.admin.dashboard`); ``clock``
        #: (default: the connector's reactor) paces its live traffic samples
        self.dashboard = Dashboard(self, clock=clock if clock is not None else connector.reactor)

    def resource(self) -> IResource:
        """:returns: the ``twisted.web`` resource to serve (behind the token check if any; the
        dashboard's static files, which hold no data, are served without it)."""
        resource = self.app.resource()
        if self.token:
            return BearerTokenGuard(resource, self.token, public=self.dashboard.public_paths)
        return resource

    def site(self) -> Site:
        """:returns: the :class:`~twisted.web.server.Site` to listen with: :meth:`resource`,
        keeping at most :data:`MAX_BODY_BYTES` of a request body (:class:`BoundedRequest`)."""
        site = Site(self.resource(), requestFactory=BoundedRequest)
        site.noisy = False
        return site

    # -- status -----------------------------------------------------------------------------

    @app.route("/status", methods=["GET"])
    async def status(self, request):
        """Balances, connection state and the local routing table at a glance."""
        balances = await self._balances()
        return _json(request, {
            "balances": {account_id: entry["balance"] for account_id, entry in balances.items()},
            "connected": {account.id: bool(account.plugin.is_connected()) for account in self.connector.accounts},
            "localRoutingTable": self._local_routes(),
        })

    @app.route("/routing", methods=["GET"])
    def routing(self, request):
        """The routing state (:meth:`routing_state`)."""
        return _json(request, self.routing_state())

    def routing_state(self) -> dict:
        """:returns: the routing state in the reference's shape: routing table id, epoch, local
        and forwarding tables, routing log and per-peer send/receive state (CCP). With
        ``routeBroadcastEnabled: false`` the local table is the static one and the rest is empty."""
        manager = self.connector.switch.route_manager
        if manager is not None:
            return manager.status()
        table = self.connector.routing_table
        local = self._local_routes()
        forwarding = {prefix: {"nextHop": route["nextHop"], "path": prefix if not route["nextHop"] else ""}
                      for prefix, route in local.items()}
        return {
            "routingTableId": getattr(table, "routing_table_id", None),
            "currentEpoch": getattr(table, "epoch", 0),
            "localRoutingTable": local,
            "forwardingRoutingTable": forwarding,
            "routingLog": [],
            "peers": {},
        }

    # -- accounts ---------------------------------------------------------------------------

    @app.route("/accounts", methods=["GET"])
    def accounts(self, request):
        """Every account: settings (without plugin options, which hold secrets), connected."""
        return _json(request, {
            "address": self.connector.address,
            "accounts": {account.id: self._account_status(account) for account in self.connector.accounts},
        })

    @app.route("/accounts/<account_id>", methods=["GET"])
    async def account_admin_info(self, request, account_id):
        """The plugin's own admin info (``get_admin_info()``)."""
        account = self._account(account_id)
        if not IAdminInfoProvider.providedBy(account.plugin):
            raise HttpError(501, f"plugin has no admin info. account={account_id}")
        info = await maybeDeferred(account.plugin.get_admin_info)
        return _json(request, {"account": account_id, "plugin": account.plugin_name, "info": info})

    @app.route("/accounts/<account_id>", methods=["POST"])
    async def send_account_admin_info(self, request, account_id):
        """Hand the JSON body to the plugin's ``send_admin_info(body)``."""
        body = _body(request)
        account = self._account(account_id)
        if not IAdminInfoReceiver.providedBy(account.plugin):
            raise HttpError(501, f"plugin does not support sending admin info. account={account_id}")
        result = await maybeDeferred(account.plugin.send_admin_info, body)
        return _json(request, {"account": account_id, "plugin": account.plugin_name, "result": result})

    @app.route("/accounts/<account_id>", methods=["PUT"])
    async def put_account(self, request, account_id):
        """Add or replace an account at run time; the body is its ``accounts.<id>`` entry."""
        account_config = self._validate_account(account_id, _body(request))
        old = None
        if account_id in self.connector.accounts:
            old = self.connector.accounts.get(account_id)
            self.log.warn("admin API: replacing account {account}", account=account_id)
            await self.connector.remove_account(account_id)
        try:
            account = await self._add(account_config)
        except HttpError:
            if old is not None:  # the new settings were refused, or did not start: put the old ones back
                try:
                    await self._add(self._validate_account(account_id, _thaw(old.settings)))
                except HttpError as exc:
                    self.log.error("admin API: the previous account {account} did not start again either: "
                                   "{error}", account=account_id, error=exc.message)
            raise
        request.setResponseCode(200 if old is not None else 201)
        return _json(request, {"account": account_id, **self._account_status(account)})

    @app.route("/accounts/<account_id>", methods=["DELETE"])
    async def delete_account(self, request, account_id):
        """Remove an account: routes, pipelines, plugin (its balance stays in the store)."""
        self._account(account_id)
        self.log.warn("admin API: removing account {account}", account=account_id)
        await self.connector.remove_account(account_id)
        return _no_content(request)

    @app.route("/addAccount", methods=["POST"])
    async def add_account(self, request):
        """The reference's ``{id, options}`` form of adding an account."""
        body = _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or "options" not in body:
            raise HttpError(400, "invalid account: the body must be {\"id\": string, \"options\": {account settings}}")
        account_id = body["id"]
        if account_id in self.connector.accounts:
            raise HttpError(409, f"account already exists. id={account_id}")
        account = await self._add(self._validate_account(account_id, body["options"]))
        return _json(request, {"plugin": account_id, "connected": bool(account.plugin.is_connected())})

    # -- balances ---------------------------------------------------------------------------

    @app.route("/balance", methods=["GET"])
    async def balance(self, request):
        """Every account with ``balance`` settings: balance, limits, reservations."""
        return _json(request, {"accounts": await self._balances()})

    @app.route("/balance", methods=["POST"])
    async def post_balance(self, request):
        """Add ``amountDiff`` to an account's balance (e.g. money received out of band)."""
        body = _body(request)
        account_id, diff = _balance_update(body)
        account = self._account(account_id)
        limits = self.limits(account_id)
        if limits is None:
            raise HttpError(409, f"account {account_id} has no balance settings, so no balance is kept for it")
        self.log.warn("admin API: modifying balance of {account} by {diff}", account=account_id, diff=diff)
        state = await self.connector.store.adjust(account_id, diff)
        self.connector.stats.balance(account, state.balance)
        if diff < 0:  # as the reference: less owed to us may mean it is time to settle
            self.connector.settlement.maybe_settle(account, state, limits)
        return _json(request, {"accountId": account_id, **_balance_entry(state, limits)})

    # -- rates, stats, alerts, metrics ------------------------------------------------------

    @app.route("/rates", methods=["GET"])
    def rates(self, request):
        """The rate from every account's asset to every other's (``null``: no rate)."""
        backend = self.connector.rate_backend
        accounts = list(self.connector.accounts)
        table: dict = {}
        for source in accounts:
            row = table[source.id] = {}
            for destination in accounts:
                if destination is source:
                    continue
                try:
                    rate = backend.rate(source.asset_code, source.asset_scale,
                                        destination.asset_code, destination.asset_scale)
                except Exception:  # no rate for this pair (yet)
                    rate = None
                row[destination.id] = _number(rate)
        return _json(request, table)

    @app.route("/stats", methods=["GET"])
    def stats(self, request):
        """The ``ilp_connector_*`` metrics as JSON (prom-client's ``getMetricsAsJSON``)."""
        as_json = getattr(self.connector.stats, "as_json", None)
        return _json(request, as_json() if as_json is not None else [])

    @app.route("/alerts", methods=["GET"])
    def alerts(self, request):
        """Alerts raised by the ``alert`` middleware, oldest first."""
        return _json(request, {"alerts": [alert.as_json() for alert in self.connector.alerts.list()]})

    @app.route("/alerts/<alert_id>", methods=["DELETE"])
    def delete_alert(self, request, alert_id):
        """Dismiss one alert."""
        if not _ALERT_ID.fullmatch(alert_id):
            raise HttpError(400, f"invalid alert id {alert_id!r}")
        if not self.connector.alerts.dismiss(int(alert_id)):
            raise HttpError(404, f"no alert with id {alert_id}")
        return _no_content(request)

    @app.route("/metrics", methods=["GET"])
    def metrics(self, request):
        """Prometheus text format (the reference's names, see :mod:`ilptx.metrics`)."""
        render = getattr(self.connector.stats, "exposition", None)
        request.setHeader(b"Content-Type", METRICS_CONTENT_TYPE.encode("ascii"))
        return render() if render is not None else b""

    @app.route("/dashboard/", branch=True)
    def dashboard_branch(self, request):
        """The dashboard's page, static files, ``api/routes`` and ``api/live`` (see
        :class:`ilptx.admin.dashboard.Dashboard`)."""
        return self.dashboard.resource

    # -- errors -----------------------------------------------------------------------------

    @app.handle_errors(HttpError)
    def _http_error(self, request, failure):
        return _text(request, failure.value.code, failure.value.message)

    @app.handle_errors(HTTPException)
    def _routing_error(self, request, failure):
        error = failure.value
        if error.code == 405:
            allowed = [m for m in getattr(error, "valid_methods", None) or []]
            if allowed:
                request.setHeader(b"Allow", ", ".join(allowed).encode("ascii"))
        return _text(request, error.code, error.name)

    @app.handle_errors(Exception)
    def _internal_error(self, request, failure):
        self.log.failure("admin API: {method} {path} failed", failure,
                         method=request.method.decode("ascii", "replace"),
                         path=request.path.decode("utf-8", "replace"))
        return _text(request, 500, f"internal error: {failure.value}")

    # -- helpers ----------------------------------------------------------------------------

    def _account(self, account_id: str):
        if account_id not in self.connector.accounts:
            raise HttpError(404, f"account does not exist. account={account_id}")
        return self.connector.accounts.get(account_id)

    def _account_status(self, account) -> dict:
        info = {k: v for k, v in _thaw(account.settings).items() if k != "options"}
        return {"info": info, "connected": bool(account.plugin.is_connected()),
                "adminInfo": IAdminInfoProvider.providedBy(account.plugin)}

    def _validate_account(self, account_id: str, settings: Any):
        from ilptx.node import runtime_account_config

        if any(a.id == account_id for a in self.connector.config.accounts):
            raise HttpError(409, f"accounts.{account_id} is defined in the config file; change it there")
        try:
            return runtime_account_config(account_id, settings, self.connector.address)
        except ConfigError as exc:
            raise HttpError(400, str(exc)) from None

    async def _add(self, account_config):
        """Add (and start) the account. :raises HttpError: 400 the plugin refuses its options;
        409 it did not start (the account is gone again, nothing stored)."""
        from ilptx.node import AccountStartError

        try:
            account = await self.connector.add_account(account_config)
        except AccountStartError as exc:
            raise HttpError(409, str(exc)) from None
        except ConfigError as exc:
            raise HttpError(400, str(exc)) from None
        self.log.warn("admin API: added account {account} ({relation}, plugin {plugin})",
                      account=account.id, relation=account.relation, plugin=account.plugin_name)
        return account

    def limits(self, account_id: str):
        """:returns: the account's balance middleware's limits, or ``None`` (no ``balance``
        settings, or ``disableMiddleware: [balance]``)."""
        pipelines = self.connector.switch.pipelines.get(account_id)
        for middleware in pipelines.middlewares if pipelines is not None else ():
            if middleware.name == "balance":
                return middleware.limits
        return None

    async def _balances(self) -> dict:
        out = {}
        for account in list(self.connector.accounts):
            limits = self.limits(account.id)
            if limits is not None:
                out[account.id] = _balance_entry(await self.connector.store.get_balance(account.id), limits)
        return out

    def _local_routes(self) -> dict:
        # our own address is delivered locally (the reference lists it with no next hop)
        routes = {self.connector.address: {"nextHop": "", "path": ""}}
        for prefix, account_id in self.connector.routing_table:
            routes[prefix] = {"nextHop": account_id, "path": ""}
        return routes


def _balance_update(body: Any) -> tuple[str, int]:
    """Validate a ``POST /balance`` body (the reference's ``BalanceUpdate.json``)."""
    if not isinstance(body, dict):
        raise HttpError(400, "invalid balance update: the body must be {\"accountId\": string, \"amountDiff\": string}")
    for key in ("accountId", "amountDiff"):
        if key not in body:
            raise HttpError(400, f"invalid balance update: {key} is required")
    extra = sorted(set(body) - {"accountId", "amountDiff"})
    if extra:
        raise HttpError(400, f"invalid balance update: unknown key {extra[0]!r}")
    if not isinstance(body["accountId"], str):
        raise HttpError(400, "invalid balance update: accountId must be a string")
    diff = body["amountDiff"]
    if not isinstance(diff, str) or not _AMOUNT_DIFF.fullmatch(diff):
        raise HttpError(400, "invalid balance update: amountDiff must be an integer written as a string, "
                             f"e.g. \"-1000\" (at most {MAX_AMOUNT_DIGITS} digits)")
    return body["accountId"], int(diff)


def _balance_entry(state, limits) -> dict:
    return {
        "balance": str(state.balance),
        "minimum": "-Infinity" if limits.minimum is None else str(limits.minimum),
        "maximum": "Infinity" if limits.maximum is None else str(limits.maximum),
        "incomingReserved": str(state.incoming_reserved),
        "outgoingReserved": str(state.outgoing_reserved),
        "settling": str(state.settling),
    }


def _number(rate: Optional[Decimal]):
    """A rate as a JSON number, as the reference shows it (``1``, ``0.998``)."""
    if rate is None:
        return None
    if rate == rate.to_integral_value():
        return int(rate)
    return float(rate)


class BoundedRequest(Request):
    """A :class:`~twisted.web.server.Request` that keeps at most :data:`MAX_BODY_BYTES` of its
    body: past that (by ``Content-Length`` or as chunks arrive) the rest is read and dropped,
    :attr:`body_too_large` is set, and :func:`_body` answers ``413``. So a body of any size
    holds at most that much memory (or temporary file)."""

    #: the body was over :data:`MAX_BODY_BYTES` (what was kept of it is not the body)
    body_too_large = False

    def gotLength(self, length) -> None:
        if length is not None and length > MAX_BODY_BYTES:
            self.body_too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        if self.content.tell() + len(data) > MAX_BODY_BYTES:
            self.body_too_large = True
            self.content = io.BytesIO()
            return
        super().handleContentChunk(data)


def _body(request) -> Any:
    """The request's JSON body. :raises HttpError: 413 over :data:`MAX_BODY_BYTES`; 400 empty,
    not UTF-8, not JSON, nested deeper than :data:`MAX_JSON_DEPTH`, or with a number of more
    than :data:`MAX_AMOUNT_DIGITS` digits."""
    raw = request.content.read(MAX_BODY_BYTES + 1) if request.content is not None else b""
    if getattr(request, "body_too_large", False) or len(raw) > MAX_BODY_BYTES:
        raise HttpError(413, f"request body too large: the admin API reads at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise HttpError(400, "a JSON body is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "invalid JSON body: not UTF-8") from None
    # Measured before parsing: json.loads recurses once per level, and a process whose recursion
    # limit a library raised (py_ecc sets 100000) would overflow the C stack and crash, not raise.
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise HttpError(400, f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_json_int, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"invalid JSON body: {exc.msg} at char {exc.pos}") from None
    except _BadJson as exc:
        raise HttpError(400, f"invalid JSON body: {exc}") from None


class _BadJson(ValueError):
    """JSON that :func:`json.loads` would take but the admin API does not."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_AMOUNT_DIGITS:
        raise _BadJson(f"a number has more than {MAX_AMOUNT_DIGITS} digits")
    return int(text)


def _json_constant(name: str):
    raise _BadJson(f"{name} is not JSON")


#: the tokens that matter for nesting: a JSON string literal with its escapes (to the end of the
#: text if it is not closed, so a scan never backtracks or restarts: one pass), or a bracket.
#: The loop is unrolled (runs of plain characters, then one escape each), so it has one way to
#: match and nothing to backtrack to, without 3.11's possessive ``*+`` (PyPy 3.9 has none).
_NESTING_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def _nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of the JSON ``text`` nest (0 for a scalar), counted in
    one pass without recursion; brackets inside strings do not count. Malformed text is
    measured as it is (the parser then rejects it)."""
    depth = deepest = 0
    for token in _NESTING_TOKENS.findall(text):
        first = token[0]
        if first == "[" or first == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif first == "]" or first == "}":
            depth -= 1
    return deepest


def _json(request, value: Any) -> bytes:
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps(value).encode("utf-8")


def _text(request, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    return (message + "\n").encode("utf-8")


def _no_content(request) -> bytes:
    request.setResponseCode(204)
    return b""


def _thaw(value):
    """Read-only config mappings → plain dicts/lists (for JSON)."""
    if hasattr(value, "items"):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_thaw(v) for v in value]
    return value
