"""Connector configuration: YAML (or JSON) file + ``CONNECTOR_*`` environment → frozen config.

The keys are the reference connector's (``ilp-connector`` 23.x ``Config.json``), so an
``ilp-connector`` config object written as JSON (JSON is YAML) is a valid file. Validation
uses JSON Schema, as the reference does, and reports the *first* problem as one line
naming the key: ``accounts.peer.assetScale: must be an integer 0..255``
(:class:`~ilptx.errors.ConfigError`).

Environment: each top-level key ``fooBar`` may be set with ``CONNECTOR_FOO_BAR`` (the
reference's ``constantCase``; :func:`env_variables` lists them all); objects and arrays are
JSON, booleans ``1/true/0/false`` (or empty = false), numbers as text. The environment
overrides the file, key by key: ``CONNECTOR_ACCOUNTS`` replaces the whole ``accounts``
mapping. Without ``--config``, ``twistd -n ilpconnector`` reads the environment alone when
``CONNECTOR_ACCOUNTS`` is set (as the reference does), else the embedded default file with
the environment over it (:mod:`ilptx.tap`). A ``CONNECTOR_*`` variable that names no key is
logged as a warning, as the reference does, and otherwise ignored.

``backendConfig`` is checked against the schema of the chosen ``backend``
(:data:`BACKEND_CONFIG_SCHEMAS`; see :mod:`ilptx.rates`).

Deviations from the reference, on purpose:

* ``backend`` defaults to ``one-to-one`` (the reference's ``ecb`` fetches rates from the
  internet at start-up, and stops when it cannot).
* ``spread`` must be below 1 (a spread of 1 or more would forward zero or negative amounts).
* An environment value that does not parse (bad JSON, a boolean that is not 1/true/0/false,
  a number that is not one) stops start-up naming the variable; the reference logs it and
  goes on without it (or with ``false``/``NaN``).
* ``adminApiToken`` is ours: the bearer token the admin API requires (empty = none).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Mapping, Optional

import hyperlink
import yaml
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from twisted.logger import Logger

from ilptx.codec.address import is_valid_address, is_valid_segment
from ilptx.core.rates import as_decimal
from ilptx.errors import ConfigError

__all__ = ["AccountConfig", "BACKENDS", "BACKEND_CONFIG_SCHEMAS", "ConnectorConfig", "env_variables",
           "load_config", "load_config_file", "parse_config", "SCHEMA"]

_log = Logger(namespace="ilptx.config")

ENV_PREFIX = "CONNECTOR_"

#: Amounts and balance limits have at most this many digits (Python refuses to parse more
#: than 4300, and no ledger comes near 100).
MAX_DIGITS = 100
_N = r"[1-9][0-9]{0,%d}" % (MAX_DIGITS - 1)
_AMOUNT = {"type": "string", "pattern": rf"^{_N}$",
           "errorMessage": f"must be a positive integer written as a string, e.g. \"1000\" "
                           f"(at most {MAX_DIGITS} digits)"}
_BALANCE_LIMIT = {"type": "string", "pattern": rf"^(0|-?({_N}|Infinity))$",
                  "errorMessage": f"must be an integer string (at most {MAX_DIGITS} digits), \"-Infinity\" or "
                                  f"\"Infinity\""}
_MS = {"type": "integer", "minimum": 0, "errorMessage": "must be a whole number of milliseconds (>= 0)"}
_PREFIX = {"type": "string", "pattern": r"^[a-zA-Z0-9._~-]+$",
           "errorMessage": "must be an ILP address prefix (letters, digits, . _ ~ -)"}

#: JSON Schema of the config file (Draft 7). ``errorMessage`` is ours: the one-line text
#: used when the value under that schema is wrong.
SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "env": {"enum": ["production", "test"]},
        "ilpAddress": {"type": "string", "errorMessage": "must be an ILP address, e.g. test.mynode"},
        "ilpAddressInheritFrom": {"type": "string"},
        "accounts": {
            "type": "object",
            "errorMessage": "must be a mapping of account id to account settings",
            "propertyNames": {"pattern": r"^[a-zA-Z0-9_~-]+$",
                              "errorMessage": "account ids may only hold letters, digits, _ ~ -"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["relation", "plugin", "assetCode", "assetScale"],
                "properties": {
                    "relation": {"enum": ["parent", "peer", "child"]},
                    "plugin": {"type": "string", "errorMessage": "must be a plugin name, e.g. btp"},
                    "assetCode": {"type": "string", "minLength": 1, "errorMessage": "must be a non-empty string"},
                    "assetScale": {"type": "integer", "minimum": 0, "maximum": 255,
                                   "errorMessage": "must be an integer 0..255"},
                    "balance": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["maximum"],
                        "properties": {
                            "minimum": _BALANCE_LIMIT,
                            "maximum": _BALANCE_LIMIT,
                            "settleThreshold": {"type": "string", "pattern": rf"^(0|(-?{_N}|-Infinity))$",
                                                "errorMessage": f"must be an integer string (at most {MAX_DIGITS} "
                                                                f"digits) or \"-Infinity\""},
                            "settleTo": {"type": "string", "pattern": rf"^(0|-?{_N})$",
                                         "errorMessage": f"must be an integer string (at most {MAX_DIGITS} digits)"},
                        },
                    },
                    "maxPacketAmount": _AMOUNT,
                    "throughput": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "refillPeriod": {"type": "integer", "minimum": 100,
                                             "errorMessage": "must be an integer >= 100 (ms)"},
                            "incomingAmount": _AMOUNT,
                            "outgoingAmount": _AMOUNT,
                        },
                    },
                    "rateLimit": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "refillPeriod": {"type": "integer", "minimum": 100,
                                             "errorMessage": "must be an integer >= 100 (ms)"},
                            "refillCount": {"type": "integer", "minimum": 1, "errorMessage": "must be an integer >= 1"},
                            "capacity": {"type": "integer", "minimum": 0, "errorMessage": "must be an integer >= 0"},
                        },
                    },
                    "deduplicate": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "cleanupInterval": {"type": "integer", "minimum": 1,
                                                "errorMessage": "must be an integer >= 1 (ms)"},
                            "packetLifetime": {"type": "integer", "minimum": 1,
                                               "errorMessage": "must be an integer >= 1 (ms)"},
                        },
                    },
                    "sendRoutes": {"type": "boolean"},
                    "receiveRoutes": {"type": "boolean"},
                    "options": {"type": "object"},
                    "ilpAddressSegment": {"type": "string", "pattern": r"^[a-zA-Z0-9_~-]+$",
                                          "errorMessage": "must be one ILP address segment (letters, digits, _ ~ -)"},
                },
            },
        },
        "defaultRoute": {"type": "string"},
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["targetPrefix", "peerId"],
                "properties": {"targetPrefix": _PREFIX, "peerId": _PREFIX},
            },
        },
        "spread": {"type": "number", "exclusiveMaximum": 1, "errorMessage": "must be a number below 1, e.g. 0.002"},
        "minMessageWindow": _MS,
        "maxHoldTime": _MS,
        "routeBroadcastEnabled": {"type": "boolean"},
        "routeBroadcastInterval": _MS,
        "routeCleanupInterval": _MS,
        "routeExpiry": _MS,
        "routingSecret": {"type": "string"},
        "backend": {"type": "string"},
        "backendConfig": {"type": "object"},
        "store": {"type": "string"},
        "storePath": {"type": "string"},
        "storeConfig": {"type": "object"},
        "middlewares": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}, "options": {"type": "object"}},
            },
        },
        "disableMiddleware": {
            "type": "array",
            "items": {"enum": ["errorHandler", "rateLimit", "balance", "maxPacketAmount", "throughput",
                               "deduplicate", "validateFulfillment", "echo", "expire", "stats", "alert"]},
        },
        "reflectPayments": {"type": "boolean"},
        "initialConnectTimeout": _MS,
        "adminApi": {"type": "boolean"},
        "adminApiPort": {"type": "integer", "minimum": 0, "maximum": 65535,
                         "errorMessage": "must be a TCP port 0..65535"},
        "adminApiHost": {"type": "string"},
        "collectDefaultMetrics": {"type": "boolean"},
        "adminApiToken": {"type": "string", "errorMessage": "must be a string (the admin API bearer token)"},
    },
}

#: Defaults of the reference connector (except ``backend``, see the module docstring).
DEFAULTS: dict = {
    "env": "test",
    "ilpAddress": "unknown",
    "ilpAddressInheritFrom": "",
    "defaultRoute": "auto",
    "routes": [],
    "spread": 0.002,
    "minMessageWindow": 1000,
    "maxHoldTime": 30000,
    "routeBroadcastEnabled": True,
    "routeBroadcastInterval": 30000,
    "routeCleanupInterval": 1000,
    "routeExpiry": 45000,
    "routingSecret": "",
    "backend": "one-to-one",
    "backendConfig": {},
    "store": "memory",
    "storePath": "",
    "storeConfig": {},
    "middlewares": {},
    "disableMiddleware": [],
    "reflectPayments": True,
    "initialConnectTimeout": 10000,
    "adminApi": False,
    "adminApiPort": 7780,
    "adminApiHost": "127.0.0.1",
    "collectDefaultMetrics": False,
    "adminApiToken": "",
    "accounts": {},
}

#: ``backend`` names (built by :func:`ilptx.rates.make_rate_backend`).
BACKENDS = ("one-to-one", "static", "ecb", "http")

_SPREAD = {"type": "number", "exclusiveMaximum": 1, "errorMessage": "must be a number below 1, e.g. 0.002"}
_RATE = {"type": ["number", "string"], "errorMessage": "must be a positive number, e.g. 0.9 or \"0.9\""}
_RATES_TABLE = {"type": "object", "minProperties": 1, "additionalProperties": _RATE,
                "propertyNames": {"minLength": 1},
                "errorMessage": "must map asset codes to rates, e.g. {USD: 1, EUR: 0.9}"}
_HTTP_BACKEND = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "spread": _SPREAD,
        "url": {"type": "string", "errorMessage": "must be an http:// or https:// URL"},
        "ratesApiUrl": {"type": "string", "errorMessage": "must be an http:// or https:// URL"},
        "format": {"enum": ["auto", "xml", "json"]},
        "refreshInterval": {"type": "integer", "minimum": 1000, "errorMessage": "must be an integer >= 1000 (ms)"},
        "retryInterval": {"type": "integer", "minimum": 100, "errorMessage": "must be an integer >= 100 (ms)"},
        "timeout": {"type": "integer", "minimum": 100, "errorMessage": "must be an integer >= 100 (ms)"},
        "mockData": {
            "type": "object",
            "required": ["rates"],
            "additionalProperties": False,
            "properties": {"base": {"type": "string", "minLength": 1, "errorMessage": "must be an asset code"},
                           "date": {"type": ["string", "number"]},
                           "rates": _RATES_TABLE},
        },
    },
}
#: JSON Schema of ``backendConfig``, per ``backend``.
BACKEND_CONFIG_SCHEMAS: dict = {
    "one-to-one": {"type": "object", "additionalProperties": False, "properties": {"spread": _SPREAD}},
    "static": {"type": "object", "additionalProperties": False, "required": ["rates"],
               "properties": {"spread": _SPREAD, "rates": _RATES_TABLE}},
    "ecb": _HTTP_BACKEND,
    "http": _HTTP_BACKEND,
}


def _ecma_pattern(validator, pattern: str, instance, schema):
    """The ``pattern`` keyword as ECMA-262 (ajv, the reference's validator) reads it: ``$``
    is the end of the string. (In Python's ``re`` it also matches before a final newline, so
    ``"5\\n"`` would pass ``^[0-9]+$``.)"""
    if validator.is_type(instance, "string") and not re.search(_anchored(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=None)
def _anchored(pattern: str) -> str:
    return re.sub(r"(?<!\\)\$", r"\\Z", pattern)


# Draft 7 with ECMA-262 patterns: the config file, its backendConfig, accounts added at run time
_ConfigValidator = validators.extend(Draft7Validator, {"pattern": _ecma_pattern})

_BACKEND_VALIDATORS = {name: _ConfigValidator(schema) for name, schema in BACKEND_CONFIG_SCHEMAS.items()}

_VALIDATOR = _ConfigValidator(SCHEMA)
_BOOLEANS = {"1": True, "true": True, "0": False, "false": False, "": False}


@dataclass(frozen=True)
class AccountConfig:
    """One ``accounts.<id>`` entry, validated.

    :ivar id: account id. :ivar relation: parent/peer/child. :ivar plugin: plugin name.
    :ivar asset_code: asset code. :ivar asset_scale: 0..255.
    :ivar ilp_address_segment: segment for a child's address, or ``None`` (= id).
    :ivar options: plugin options (read-only mapping).
    :ivar settings: the whole entry as written (read-only mapping).
    """

    id: str
    relation: str
    plugin: str
    asset_code: str
    asset_scale: int
    ilp_address_segment: Optional[str]
    options: Mapping[str, Any]
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class ConnectorConfig:
    """The validated connector config. Durations are in ms, as in the reference.

    :ivar ilp_address: the configured address, or ``None`` when it is taken from a parent.
    :ivar inherit_address_from: the account to ask with IL-DCP (RFC 31) when ``ilpAddress``
        is not set: ``ilpAddressInheritFrom``, else the first parent; ``None`` otherwise.
    :ivar raw: every key, defaults filled in (read-only mapping).
    """

    ilp_address: Optional[str]
    inherit_address_from: Optional[str]
    accounts: tuple
    routes: tuple
    default_route: str
    spread: Decimal
    backend: str
    min_message_window: int
    max_hold_time: int
    reflect_payments: bool
    disable_middleware: frozenset
    raw: Mapping[str, Any] = field(repr=False)

    def account(self, account_id: str) -> AccountConfig:
        """:raises KeyError: no such account."""
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _key_path(path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(error, prefix: tuple = ()) -> ConfigError:
    """Turn a jsonschema error into one line naming the key (``prefix``: path of the
    validated value in the whole config)."""
    path = list(prefix) + list(error.absolute_path)
    schema = error.schema
    validator = error.validator
    if validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        return ConfigError(_key_path(path + [name]), "is required")
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        key = extra[0] if extra else "?"
        return ConfigError(_key_path(path + [key]), "unknown key")
    if validator == "propertyNames":
        return ConfigError(_key_path(path), "has an invalid key name: " + error.message)
    if validator == "enum":
        return ConfigError(_key_path(path), "must be one of " + ", ".join(map(str, schema["enum"])))
    message = schema.get("errorMessage")
    if message is None and validator == "type":
        message = f"must be of type {schema['type']}"
    return ConfigError(_key_path(path), message or error.message)


def env_variables() -> dict:
    """:returns: ``{"CONNECTOR_ILP_ADDRESS": "ilpAddress", ...}``, one variable per top-level
    key (the reference's ``ENV_PREFIX + constantCase(key)``)."""
    return {ENV_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper(): key for key in SCHEMA["properties"]}


def _from_env(env: Mapping[str, str]) -> dict:
    """Read ``CONNECTOR_*`` variables for the schema's top-level keys.

    :raises ConfigError: a value does not parse as its key's type (names the variable).
    """
    out: dict = {}
    variables = env_variables()
    for env_key in sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in variables):
        _log.warn("unrecognized environment variable {variable} (ignored)", variable=env_key)
    for env_key, key in variables.items():
        sub = SCHEMA["properties"][key]
        if env_key not in env:
            continue
        text = env[env_key]
        kind = sub.get("type")
        if kind in ("object", "array"):
            try:
                out[key] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(key, f"{env_key} is not valid JSON ({exc.msg} at char {exc.pos})") from None
        elif kind == "boolean":
            if text.lower() not in _BOOLEANS:
                raise ConfigError(key, f"{env_key} must be 1, true, 0 or false")
            out[key] = _BOOLEANS[text.lower()]
        elif kind in ("integer", "number"):
            try:
                out[key] = int(text) if kind == "integer" else float(text)
            except ValueError:
                raise ConfigError(key, f"{env_key} must be a number") from None
        else:
            out[key] = text
    return out


def parse_config(data: Any, env: Optional[Mapping[str, str]] = None) -> ConnectorConfig:
    """Validate a config mapping (as loaded from YAML/JSON), with environment overrides.

    :param data: the parsed file (a mapping), or ``None`` for an empty file.
    :param env: environment to read ``CONNECTOR_*`` from (default: none).
    :raises ConfigError: the first problem, as ``"<key>: <problem>"``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("", "the config file must hold a mapping of keys (ilpAddress, accounts, ...)")
    merged = dict(data)
    if env:
        merged.update(_from_env(env))
    error = best_match(_VALIDATOR.iter_errors(merged))
    if error is not None:
        raise _describe(error)
    cfg = {**DEFAULTS, **merged}

    if not cfg["accounts"]:  # the reference starts so too (its quick start has CONNECTOR_ACCOUNTS='{}')
        _log.warn("no accounts configured: nothing is forwarded until accounts are added (admin API)")
    accounts = []
    for account_id, entry in cfg["accounts"].items():
        accounts.append(AccountConfig(
            id=account_id,
            relation=entry["relation"],
            plugin=entry["plugin"],
            asset_code=entry["assetCode"],
            asset_scale=entry["assetScale"],
            ilp_address_segment=entry.get("ilpAddressSegment"),
            options=_freeze(entry.get("options", {})),
            settings=_freeze(entry),
        ))
    ids = {a.id for a in accounts}

    address = cfg["ilpAddress"]
    inherit_from = cfg["ilpAddressInheritFrom"]
    if inherit_from and inherit_from not in ids:
        raise ConfigError("ilpAddressInheritFrom", f"no account named {inherit_from!r}")
    if address == "unknown":
        parents = [a.id for a in accounts if a.relation == "parent"]
        if not inherit_from and not parents:
            raise ConfigError("ilpAddress", "is required (no account has relation parent to get it from)")
        inherit_from = inherit_from or parents[0]
        address = None  # taken from inherit_from with IL-DCP at start-up
    elif not is_valid_address(address):
        raise ConfigError("ilpAddress", f"{address!r} is not an ILP address (RFC 15), e.g. test.mynode")
    else:
        inherit_from = None
    for account in accounts:
        if account.ilp_address_segment is not None and not is_valid_segment(account.ilp_address_segment):
            raise ConfigError(f"accounts.{account.id}.ilpAddressSegment", "must be one ILP address segment")

    for i, route in enumerate(cfg["routes"]):
        if route["peerId"] not in ids:
            raise ConfigError(f"routes[{i}].peerId", f"no account named {route['peerId']!r}")
    default_route = cfg["defaultRoute"]
    if default_route not in ("auto", "") and default_route not in ids:
        raise ConfigError("defaultRoute", f"no account named {default_route!r} (use an account id, auto or '')")
    if cfg["backend"] not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {cfg['backend']!r}; available: {', '.join(BACKENDS)}")
    _check_backend_config(cfg["backend"], cfg["backendConfig"], accounts)
    if cfg["minMessageWindow"] > cfg["maxHoldTime"]:
        raise ConfigError("minMessageWindow", "must not exceed maxHoldTime")

    return ConnectorConfig(
        ilp_address=address,
        inherit_address_from=inherit_from,
        accounts=tuple(accounts),
        routes=tuple((r["targetPrefix"], r["peerId"]) for r in cfg["routes"]),
        default_route=default_route,
        spread=Decimal(repr(cfg["spread"])) if isinstance(cfg["spread"], float) else Decimal(cfg["spread"]),
        backend=cfg["backend"],
        min_message_window=cfg["minMessageWindow"],
        max_hold_time=cfg["maxHoldTime"],
        reflect_payments=cfg["reflectPayments"],
        disable_middleware=frozenset(cfg["disableMiddleware"]),
        raw=_freeze(cfg),
    )


def _check_backend_config(backend: str, options: dict, accounts: list) -> None:
    """``backendConfig`` against ``backend``'s schema, then what a schema cannot say."""
    error = best_match(_BACKEND_VALIDATORS[backend].iter_errors(options))
    if error is not None:
        raise _describe(error, ("backendConfig",))
    tables = {"backendConfig.rates": options.get("rates"),
              "backendConfig.mockData.rates": options.get("mockData", {}).get("rates")}
    for where, table in tables.items():
        for code, value in (table or {}).items():
            try:
                positive = as_decimal(value) > 0
            except ValueError:
                positive = False
            if not positive:
                raise ConfigError(f"{where}.{code}", "must be a positive number, e.g. 0.9 or \"0.9\"")
    if backend == "static":
        # every asset must be priced, unless all accounts share one asset (rate 1 then)
        codes = {a.asset_code for a in accounts}
        missing = [a for a in accounts if a.asset_code not in options["rates"]]
        if len(codes) > 1 and missing:
            raise ConfigError("backendConfig.rates", f"no rate for {missing[0].asset_code} "
                                                     f"(accounts.{missing[0].id}.assetCode)")
    for key in ("url", "ratesApiUrl"):
        if key in options:
            _check_url(f"backendConfig.{key}", options[key])
    if backend == "http" and "url" not in options and "ratesApiUrl" not in options and "mockData" not in options:
        raise ConfigError("backendConfig.url", "is required for backend http (or use backend ecb for the ECB's rates)")


def _check_url(key: str, text: str) -> None:
    example = "e.g. https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    try:
        url = hyperlink.parse(text)
    except (hyperlink.URLParseError, ValueError):
        raise ConfigError(key, f"{text!r} is not a URL; {example}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(key, f"must be an http:// or https:// URL, {example}")


def load_config_file(path: str, env: Optional[Mapping[str, str]] = None) -> ConnectorConfig:
    """Read and validate a YAML/JSON config file.

    :raises ConfigError: unreadable file, YAML syntax error (with line), or invalid config.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    return load_config(text, env, source=path)


def load_config(text: str, env: Optional[Mapping[str, str]] = None, source: str = "<config>") -> ConnectorConfig:
    """Parse YAML/JSON ``text`` and validate it (see :func:`parse_config`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("", f"{source}:{where}: invalid YAML: {problem}") from None
    return parse_config(data, env if env is not None else os.environ)
