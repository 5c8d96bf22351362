"""Config: reference keys, validation errors naming the key, CONNECTOR_* overrides."""

from dataclasses import FrozenInstanceError
from decimal import Decimal
from pathlib import Path

import json

import pytest
from twisted.logger import capturedLogs

from ilptx.config import BACKEND_CONFIG_SCHEMAS, SCHEMA, env_variables, load_config, load_config_file, parse_config
from ilptx.errors import ConfigError
from ilptx.tap import default_config_text

REPO = Path(__file__).resolve().parents[2]


def minimal(**extra):
    cfg = {"ilpAddress": "test.node",
           "accounts": {"peer": {"relation": "peer", "plugin": "btp", "assetCode": "USD", "assetScale": 9}}}
    cfg.update(extra)
    return cfg


def error_of(data, env=None):
    with pytest.raises(ConfigError) as info:
        parse_config(data, env)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_shipped_config_is_valid_and_matches_embedded_default():
    """etc/connector.yml validates and is byte-identical to the embedded default."""
    cfg = load_config_file(str(REPO / "etc" / "connector.yml"), {})
    assert cfg.ilp_address == "test.ilptx"
    assert {a.id for a in cfg.accounts} == {"alice", "bob"}
    assert (REPO / "etc" / "connector.yml").read_bytes() == (REPO / "ilptx" / "default-connector.yml").read_bytes()


def test_reference_json_config_is_accepted():
    """A reference connector config object written as JSON loads, with its defaults."""
    text = ('{"ilpAddress": "g.example", "backend": "one-to-one", "spread": 0.002, "accounts": {'
            '"up": {"relation": "peer", "plugin": "ilp-plugin-btp", "assetCode": "XRP", "assetScale": 6,'
            ' "balance": {"maximum": "1000", "minimum": "-Infinity", "settleThreshold": "-500", "settleTo": "0"},'
            ' "maxPacketAmount": "100", "rateLimit": {"capacity": 10}, "sendRoutes": true,'
            ' "options": {"server": "btp+ws://:s@localhost:7768"}}},'
            ' "routes": [{"targetPrefix": "g.up", "peerId": "up"}], "minMessageWindow": 1500}')
    cfg = load_config(text, {})
    assert cfg.spread == Decimal("0.002") and cfg.min_message_window == 1500 and cfg.max_hold_time == 30000
    assert cfg.routes == (("g.up", "up"),)
    assert cfg.account("up").options["server"] == "btp+ws://:s@localhost:7768"


@pytest.mark.parametrize("patch, expected", [
    ({"assetScale": 256}, "accounts.peer.assetScale: must be an integer 0..255"),
    ({"assetScale": "9"}, "accounts.peer.assetScale: must be an integer 0..255"),
    ({"relation": "friend"}, "accounts.peer.relation: must be one of parent, peer, child"),
    ({"bogus": 1}, "accounts.peer.bogus: unknown key"),
    ({"maxPacketAmount": "-5"}, "accounts.peer.maxPacketAmount: must be a positive integer"),
])
def test_account_errors_name_the_key(patch, expected):
    """A bad account field is reported as one line starting with its dotted path."""
    data = minimal()
    data["accounts"]["peer"].update(patch)
    assert error_of(data).startswith(expected)


def test_missing_required_account_key():
    """A missing plugin is named with its full path."""
    data = minimal()
    del data["accounts"]["peer"]["plugin"]
    assert error_of(data) == "accounts.peer.plugin: is required"


def test_bad_top_level_values():
    """Top-level problems name the key."""
    assert error_of(minimal(ilpAddress="nope")).startswith("ilpAddress: ")
    assert error_of(minimal(spread=1.5)).startswith("spread: must be a number below 1")
    assert error_of(minimal(backend="ecb-plus-xrp")) == \
        "backend: unknown backend 'ecb-plus-xrp'; available: one-to-one, static, ecb, http"
    assert error_of(minimal(routes=[{"targetPrefix": "g.x", "peerId": "ghost"}])) == \
        "routes[0].peerId: no account named 'ghost'"
    assert error_of(minimal(unknownKey=1)) == "unknownKey: unknown key"


def test_environment_overrides_file():
    """CONNECTOR_* variables override file keys, parsed by the schema's type."""
    cfg = parse_config(minimal(), {"CONNECTOR_SPREAD": "0.01", "CONNECTOR_MAX_HOLD_TIME": "5000",
                                   "CONNECTOR_REFLECT_PAYMENTS": "false", "CONNECTOR_ILP_ADDRESS": "g.env"})
    assert cfg.spread == Decimal("0.01") and cfg.max_hold_time == 5000
    assert cfg.reflect_payments is False and cfg.ilp_address == "g.env"


def test_environment_json_accounts_and_bad_json():
    """CONNECTOR_ACCOUNTS is JSON; invalid JSON names the variable."""
    cfg = parse_config({"ilpAddress": "test.a"}, {"CONNECTOR_ACCOUNTS": '{"x": {"relation": "child", '
                                                  '"plugin": "btp", "assetCode": "A", "assetScale": 2}}'})
    assert cfg.account("x").asset_scale == 2
    assert "CONNECTOR_ACCOUNTS is not valid JSON" in error_of({"ilpAddress": "test.a"}, {"CONNECTOR_ACCOUNTS": "{"})


def test_yaml_syntax_error_has_line():
    """A YAML syntax error reports the line."""
    with pytest.raises(ConfigError) as info:
        load_config("accounts:\n  a: [1,\n", {})
    assert "line" in str(info.value) and "invalid YAML" in str(info.value)


def test_unreadable_file():
    """A missing file is a config error, not a traceback."""
    with pytest.raises(ConfigError) as info:
        load_config_file("/nonexistent/connector.yml", {})
    assert "cannot read config file" in str(info.value)


def test_config_is_frozen():
    """The validated config cannot be changed after start-up."""
    cfg = parse_config(minimal())
    with pytest.raises(FrozenInstanceError):
        cfg.ilp_address = "test.other"
    with pytest.raises(TypeError):
        cfg.account("peer").options["x"] = 1


#: every CONNECTOR_* variable of the reference connector 23.x (ENV_PREFIX + constantCase(key))
REFERENCE_ENV = [
    "CONNECTOR_ENV", "CONNECTOR_ILP_ADDRESS", "CONNECTOR_ILP_ADDRESS_INHERIT_FROM", "CONNECTOR_ACCOUNTS",
    "CONNECTOR_DEFAULT_ROUTE", "CONNECTOR_ROUTES", "CONNECTOR_SPREAD", "CONNECTOR_MIN_MESSAGE_WINDOW",
    "CONNECTOR_MAX_HOLD_TIME", "CONNECTOR_ROUTE_BROADCAST_ENABLED", "CONNECTOR_ROUTE_BROADCAST_INTERVAL",
    "CONNECTOR_ROUTE_CLEANUP_INTERVAL", "CONNECTOR_ROUTE_EXPIRY", "CONNECTOR_ROUTING_SECRET",
    "CONNECTOR_BACKEND", "CONNECTOR_BACKEND_CONFIG", "CONNECTOR_STORE", "CONNECTOR_STORE_PATH",
    "CONNECTOR_STORE_CONFIG", "CONNECTOR_MIDDLEWARES", "CONNECTOR_DISABLE_MIDDLEWARE",
    "CONNECTOR_REFLECT_PAYMENTS", "CONNECTOR_INITIAL_CONNECT_TIMEOUT", "CONNECTOR_ADMIN_API",
    "CONNECTOR_ADMIN_API_PORT", "CONNECTOR_ADMIN_API_HOST", "CONNECTOR_COLLECT_DEFAULT_METRICS",
]
JSON_ENV = ["CONNECTOR_ACCOUNTS", "CONNECTOR_ROUTES", "CONNECTOR_BACKEND_CONFIG", "CONNECTOR_STORE_CONFIG",
            "CONNECTOR_MIDDLEWARES", "CONNECTOR_DISABLE_MIDDLEWARE"]


def test_env_variable_names_are_the_references_27_plus_admin_api_token():
    """Every reference CONNECTOR_* name maps to its key; ilptx adds only CONNECTOR_ADMIN_API_TOKEN."""
    assert len(REFERENCE_ENV) == 27
    assert sorted(env_variables()) == sorted(REFERENCE_ENV + ["CONNECTOR_ADMIN_API_TOKEN"])
    assert env_variables()["CONNECTOR_ILP_ADDRESS_INHERIT_FROM"] == "ilpAddressInheritFrom"
    assert env_variables()["CONNECTOR_COLLECT_DEFAULT_METRICS"] == "collectDefaultMetrics"


def test_every_env_variable_overrides_its_key():
    """All 28 variables set at once: each lands on its key, parsed by the key's type."""
    accounts = {"up": {"relation": "parent", "plugin": "btp", "assetCode": "EUR", "assetScale": 9},
                "kid": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 6}}
    env = {
        "CONNECTOR_ENV": "production", "CONNECTOR_ILP_ADDRESS": "g.envnode",
        "CONNECTOR_ILP_ADDRESS_INHERIT_FROM": "up", "CONNECTOR_ACCOUNTS": json.dumps(accounts),
        "CONNECTOR_DEFAULT_ROUTE": "up", "CONNECTOR_ROUTES": '[{"targetPrefix": "g.x", "peerId": "up"}]',
        "CONNECTOR_SPREAD": "0.003", "CONNECTOR_MIN_MESSAGE_WINDOW": "1500", "CONNECTOR_MAX_HOLD_TIME": "20000",
        "CONNECTOR_ROUTE_BROADCAST_ENABLED": "false", "CONNECTOR_ROUTE_BROADCAST_INTERVAL": "31000",
        "CONNECTOR_ROUTE_CLEANUP_INTERVAL": "1001", "CONNECTOR_ROUTE_EXPIRY": "46000",
        "CONNECTOR_ROUTING_SECRET": "c2VjcmV0", "CONNECTOR_BACKEND": "static",
        "CONNECTOR_BACKEND_CONFIG": '{"rates": {"EUR": 1, "USD": "1.1"}}', "CONNECTOR_STORE": "memory",
        "CONNECTOR_STORE_PATH": "/tmp/ilptx-store", "CONNECTOR_STORE_CONFIG": '{"path": "/tmp/x"}',
        "CONNECTOR_MIDDLEWARES": "{}", "CONNECTOR_DISABLE_MIDDLEWARE": '["rateLimit"]',
        "CONNECTOR_REFLECT_PAYMENTS": "0", "CONNECTOR_INITIAL_CONNECT_TIMEOUT": "2000",
        "CONNECTOR_ADMIN_API": "true", "CONNECTOR_ADMIN_API_PORT": "7781", "CONNECTOR_ADMIN_API_HOST": "::1",
        "CONNECTOR_COLLECT_DEFAULT_METRICS": "1", "CONNECTOR_ADMIN_API_TOKEN": "t0ken",
    }
    assert sorted(env) == sorted(env_variables())
    raw = parse_config(minimal(), env).raw
    assert raw["env"] == "production" and raw["ilpAddress"] == "g.envnode" and raw["ilpAddressInheritFrom"] == "up"
    assert set(raw["accounts"]) == {"up", "kid"} and raw["defaultRoute"] == "up"
    assert raw["routes"][0]["peerId"] == "up" and raw["spread"] == 0.003
    assert (raw["minMessageWindow"], raw["maxHoldTime"], raw["routeBroadcastInterval"],
            raw["routeCleanupInterval"], raw["routeExpiry"], raw["initialConnectTimeout"],
            raw["adminApiPort"]) == (1500, 20000, 31000, 1001, 46000, 2000, 7781)
    assert (raw["routeBroadcastEnabled"], raw["reflectPayments"], raw["adminApi"],
            raw["collectDefaultMetrics"]) == (False, False, True, True)
    assert raw["routingSecret"] == "c2VjcmV0" and raw["backend"] == "static"
    assert raw["backendConfig"]["rates"]["USD"] == "1.1" and raw["store"] == "memory"
    assert raw["storePath"] == "/tmp/ilptx-store" and raw["storeConfig"]["path"] == "/tmp/x"
    assert dict(raw["middlewares"]) == {} and raw["disableMiddleware"] == ("rateLimit",)
    assert raw["adminApiHost"] == "::1" and raw["adminApiToken"] == "t0ken"


@pytest.mark.parametrize("variable", JSON_ENV)
def test_invalid_json_in_any_json_variable_names_it(variable):
    """A JSON-typed variable that is not JSON stops start-up naming the variable."""
    text = error_of(minimal(), {variable: "{'single': quotes}"})
    assert f"{variable} is not valid JSON" in text


@pytest.mark.parametrize("variable, value, problem", [
    ("CONNECTOR_ADMIN_API", "yes", "CONNECTOR_ADMIN_API must be 1, true, 0 or false"),
    ("CONNECTOR_MAX_HOLD_TIME", "30s", "CONNECTOR_MAX_HOLD_TIME must be a number"),
    ("CONNECTOR_SPREAD", "0,002", "CONNECTOR_SPREAD must be a number"),
])
def test_unparsable_env_values_name_the_variable(variable, value, problem):
    """A boolean or number variable that does not parse names the variable."""
    assert problem in error_of(minimal(), {variable: value})


def test_json_env_value_of_the_wrong_type_names_the_key():
    """Valid JSON of the wrong shape is a schema error on the key."""
    assert error_of(minimal(), {"CONNECTOR_ROUTES": "{}"}) == "routes: must be of type array"


def test_env_booleans_accept_the_references_values():
    """1/true/0/false and the empty string (false), case-insensitively."""
    for text, value in [("1", True), ("TRUE", True), ("0", False), ("false", False), ("", False)]:
        assert parse_config(minimal(), {"CONNECTOR_REFLECT_PAYMENTS": text}).reflect_payments is value


def test_unrecognized_env_variable_is_a_warning():
    """A CONNECTOR_* name that matches no key is logged (as the reference) and ignored."""
    with capturedLogs() as events:
        parse_config(minimal(), {"CONNECTOR_ILP_ADRESS": "g.typo", "OTHER": "x"})
    warnings = [e for e in events if e.get("variable")]
    assert [e["variable"] for e in warnings] == ["CONNECTOR_ILP_ADRESS"]


def test_no_config_file_env_only_quickstart():
    """No --config: the embedded default plus CONNECTOR_ACCOUNTS / CONNECTOR_ILP_ADDRESS, key by key."""
    accounts = {"sender": {"relation": "child", "plugin": "btp", "assetCode": "XRP", "assetScale": 6,
                           "options": {"listener": {"port": 8001, "secret": "s"}}}}
    cfg = load_config(default_config_text(), {"CONNECTOR_ACCOUNTS": json.dumps(accounts),
                                              "CONNECTOR_ILP_ADDRESS": "test.quickstart"})
    assert cfg.ilp_address == "test.quickstart"
    assert [a.id for a in cfg.accounts] == ["sender"]  # alice and bob are gone: the key is replaced
    assert cfg.account("sender").asset_code == "XRP"
    assert cfg.backend == "one-to-one" and cfg.max_hold_time == 30000  # the rest is the default file's


def test_environment_alone_is_a_complete_config():
    """What twistd does with CONNECTOR_ACCOUNTS and no --config: the environment alone, reference defaults."""
    accounts = {"sender": {"relation": "child", "plugin": "btp", "assetCode": "XRP", "assetScale": 6}}
    cfg = parse_config({}, {"CONNECTOR_ACCOUNTS": json.dumps(accounts), "CONNECTOR_ILP_ADDRESS": "test.quickstart"})
    assert cfg.ilp_address == "test.quickstart" and [a.id for a in cfg.accounts] == ["sender"]
    assert cfg.spread == Decimal("0.002") and cfg.backend == "one-to-one"


def test_admin_api_token():
    """adminApiToken is an ilptx key: a string, default empty."""
    assert parse_config(minimal()).raw["adminApiToken"] == ""
    assert parse_config(minimal(adminApiToken="abc")).raw["adminApiToken"] == "abc"
    assert error_of(minimal(adminApiToken=5)).startswith("adminApiToken: must be a string")


def test_backends_with_their_backend_config():
    """static, ecb and http accept their backendConfig."""
    two = minimal()
    two["accounts"]["eu"] = {"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 9}
    assert parse_config({**two, "backend": "static",
                         "backendConfig": {"rates": {"USD": 1, "EUR": 0.9}, "spread": 0.001}}).backend == "static"
    assert parse_config(minimal(backend="ecb")).raw["backendConfig"] == {}
    ecb = {"url": "http://127.0.0.1:8000/rates.json", "format": "json", "refreshInterval": 60000,
           "retryInterval": 1000, "timeout": 500}
    assert parse_config(minimal(backend="ecb", backendConfig=ecb)).backend == "ecb"
    assert parse_config(minimal(backend="http", backendConfig={"ratesApiUrl": "https://x.example/r"})).backend == "http"
    assert parse_config(minimal(backend="ecb", backendConfig={"mockData": {"base": "EUR", "rates": {"USD": 1.1}}}))


@pytest.mark.parametrize("backend, backend_config, expected", [
    ("static", {}, "backendConfig.rates: is required"),
    ("static", {"rates": {}}, "backendConfig.rates: must map asset codes to rates"),
    ("static", {"rates": {"USD": "abc"}}, "backendConfig.rates.USD: must be a positive number"),
    ("static", {"rates": {"USD": 0}}, "backendConfig.rates.USD: must be a positive number"),
    ("static", {"rates": {"USD": [1]}}, "backendConfig.rates.USD: must be a positive number"),
    ("static", {"rates": {"USD": 1}, "url": "http://x"}, "backendConfig.url: unknown key"),
    ("static", {"rates": {"USD": 1, "GBP": 2}}, "backendConfig.rates: no rate for EUR (accounts.eu.assetCode)"),
    ("one-to-one", {"rates": {}}, "backendConfig.rates: unknown key"),
    ("one-to-one", {"spread": 2}, "backendConfig.spread: must be a number below 1"),
    ("ecb", {"url": "ftp://rates.example/x"}, "backendConfig.url: must be an http:// or https:// URL"),
    ("ecb", {"url": "http://"}, "backendConfig.url: must be an http:// or https:// URL"),
    ("ecb", {"ratesApiUrl": 5}, "backendConfig.ratesApiUrl: must be an http:// or https:// URL"),
    ("ecb", {"format": "csv"}, "backendConfig.format: must be one of auto, xml, json"),
    ("ecb", {"refreshInterval": 10}, "backendConfig.refreshInterval: must be an integer >= 1000 (ms)"),
    ("ecb", {"timeout": "5s"}, "backendConfig.timeout: must be an integer >= 100 (ms)"),
    ("ecb", {"mockData": {"rates": {"USD": -1}}}, "backendConfig.mockData.rates.USD: must be a positive number"),
    ("ecb", {"refresh": 1000}, "backendConfig.refresh: unknown key"),
    ("http", {}, "backendConfig.url: is required for backend http"),
])
def test_backend_config_errors_name_the_key(backend, backend_config, expected):
    """A bad backendConfig is one line naming backendConfig.<key>."""
    two = minimal(backend=backend, backendConfig=backend_config)
    two["accounts"]["eu"] = {"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 9}
    assert error_of(two).startswith(expected)


def test_static_backend_needs_no_table_entry_for_a_single_asset():
    """All accounts in one asset: static needs no rate for it (rate 1)."""
    assert parse_config(minimal(backend="static", backendConfig={"rates": {"EUR": 1}})).backend == "static"


def test_readme_documents_every_key_and_variable():
    """README's Configuration section names every top-level key, CONNECTOR_* variable and account key."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration"):readme.index("### BTP")]
    for variable, key in env_variables().items():
        assert f"`{variable}`" in section and f"`{key}`" in section, key
    account_schema = SCHEMA["properties"]["accounts"]["additionalProperties"]["properties"]
    for key, sub in account_schema.items():
        names = [f"{key}.{child}" for child in sub.get("properties", {})] or [key]
        for name in names:
            assert f"`{name}`" in section or (key in ("sendRoutes", "receiveRoutes") and f"`{key}`" in section), name
    for backend in BACKEND_CONFIG_SCHEMAS:
        assert f"`{backend}`" in section
        for option in BACKEND_CONFIG_SCHEMAS[backend]["properties"]:
            assert f"`{option}`" in section, (backend, option)


def test_balance_limit_past_the_digit_bound_is_one_config_line():
    """A balance maximum of 5,001 digits (past Python's int-string limit) is a config error naming the key."""
    entry = {"relation": "child", "plugin": "btp", "assetCode": "X", "assetScale": 2}
    assert error_of({"ilpAddress": "test.x", "accounts": {"a": {**entry, "balance": {"maximum": "1" * 5001}}}}) == \
        'accounts.a.balance.maximum: must be an integer string (at most 100 digits), "-Infinity" or "Infinity"'
    assert error_of({"ilpAddress": "test.x", "accounts": {"a": {**entry, "maxPacketAmount": "9" * 101}}}) == \
        'accounts.a.maxPacketAmount: must be a positive integer written as a string, e.g. "1000" (at most 100 digits)'
    ok = parse_config({"ilpAddress": "test.x", "accounts": {"a": {**entry, "balance": {"maximum": "9" * 100}}}})
    assert ok.accounts[0].settings["balance"]["maximum"] == "9" * 100


def test_no_accounts_is_a_valid_config():
    """A config without accounts loads (the reference's quick start has CONNECTOR_ACCOUNTS='{}')."""
    assert parse_config({"ilpAddress": "test.quickstart"}).accounts == ()
    assert parse_config({}, {"CONNECTOR_ACCOUNTS": "{}", "CONNECTOR_ILP_ADDRESS": "test.q"}).accounts == ()
