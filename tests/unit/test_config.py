"""Config: reference keys, validation errors naming the key, CONNECTOR_* overrides."""

from decimal import Decimal
from pathlib import Path

import pytest

from ilptx.config import load_config, load_config_file, parse_config
from ilptx.errors import ConfigError

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
    assert error_of(minimal(backend="ecb")) == "backend: unknown backend 'ecb'; available: one-to-one"
    assert error_of(minimal(routes=[{"targetPrefix": "g.x", "peerId": "ghost"}])) == \
        "routes[0].peerId: no account named 'ghost'"
    assert error_of(minimal(unknownKey=1)) == "unknownKey: unknown key"
    assert error_of({"ilpAddress": "test.x"}) == "accounts: is required"


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
    with pytest.raises(Exception):
        cfg.ilp_address = "test.other"
    with pytest.raises(TypeError):
        cfg.account("peer").options["x"] = 1
