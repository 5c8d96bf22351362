"""BTP sub-protocol messages of ilp-plugin-ethereum 3.0.0-beta.20, byte for byte (fixtures made by its own code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilptx_ethereum import protocol
from ilptx_ethereum.model import Claim
from ilptx_ethereum.protocol import MalformedMessageError, SubProtocolEntry

VECTORS = json.loads((Path(__file__).resolve().parent / "fixtures" / "js_vectors.json").read_text())
GOOD = json.loads(VECTORS["claims"][0]["btp"]["data"])


def _entry(payload, name="machinomy", content_type=2) -> SubProtocolEntry:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return SubProtocolEntry(name, content_type, data)


@pytest.mark.parametrize("v", VECTORS["claims"], ids=lambda v: f"{v['value'][:8]}-{bool(v['tokenContract'])}")
def test_claim_encodes_as_js_send_claim(v):
    """encode_claim writes what the JS sendClaim sends: name machinomy, JSON (2), same bytes (key order, no spaces)."""
    claim = Claim(v["channelId"], v["signature"], int(v["value"]), v["contractAddress"], v["tokenContract"])
    entry = protocol.encode_claim(claim)
    assert entry == SubProtocolEntry(v["btp"]["protocolName"], v["btp"]["contentType"], v["btp"]["data"].encode())
    assert list(json.loads(entry.data)) == ["channelId", "signature", "value", "contractAddress"] + (
        ["tokenContract"] if v["tokenContract"] else [])


@pytest.mark.parametrize("v", VECTORS["claims"], ids=lambda v: f"{v['value'][:8]}-{bool(v['tokenContract'])}")
def test_claim_decodes_js_bytes(v):
    """decode_claim reads the JS plugin's machinomy message back into the same Claim (value as int wei)."""
    b = v["btp"]
    claim = protocol.decode_claim(SubProtocolEntry(b["protocolName"], b["contentType"], b["data"].encode()))
    assert claim == Claim(v["channelId"], v["signature"], int(v["value"]), v["contractAddress"], v["tokenContract"])


def test_info_matches_js_both_ways():
    """encode_info is the JS info request and answer byte for byte; decode_info reads the address back."""
    info = VECTORS["info"]
    ours = protocol.encode_info(info["address"])
    for js in (info["request"], *info["response"]):
        assert ours == SubProtocolEntry(js["protocolName"], js["contentType"], js["data"].encode())
    assert protocol.decode_info(ours) == info["address"]


def test_claim_is_answered_with_no_protocol_data():
    """The JS plugin answers a machinomy claim with an empty protocol-data list."""
    assert VECTORS["claimResponse"] == []


def test_deposit_and_close_messages():
    """channelDeposit is an empty octet-stream entry and requestClose an empty text entry (account.ts)."""
    assert protocol.encode_channel_deposit() == SubProtocolEntry("channelDeposit", 0, b"")
    assert protocol.encode_request_close() == SubProtocolEntry("requestClose", 1, b"")


def test_select_follows_js_handle_data_order():
    """select picks info, then channelDeposit, then requestClose, then machinomy, whatever their order in a message."""
    claim = _entry(GOOD)
    close = protocol.encode_request_close()
    deposit = protocol.encode_channel_deposit()
    ilp = SubProtocolEntry("ilp", 0, b"\x0c")
    assert protocol.select([claim, close, deposit]) is deposit
    assert protocol.select([ilp, claim, close]) is close
    assert protocol.select([ilp, claim]) is claim
    assert protocol.select([ilp]) is None


@pytest.mark.parametrize("change, words", [
    ({"value": 5}, "value must be a string"),
    ({"value": "-1"}, "decimal uint256"),
    ({"value": "1e18"}, "decimal uint256"),
    ({"value": "01"}, "decimal uint256"),
    ({"value": " 1"}, "decimal uint256"),
    ({"value": str(2 ** 256)}, "decimal uint256"),
    ({"value": "9" * 100}, "decimal uint256"),
    ({"channelId": "0x12"}, "channel id"),
    ({"channelId": None}, "channelId must be a string"),
    ({"signature": "0x1234"}, "signature must be 0x"),
    ({"signature": 7}, "signature must be a string"),
    ({"contractAddress": "0xnothex"}, "contractAddress is not an Ethereum address"),
    ({"tokenContract": 5}, "tokenContract must be a string"),
    ({"tokenContract": "0x12"}, "tokenContract is not an Ethereum address"),
])
def test_malformed_claim_field_named(change, words):
    """decode_claim rejects a mistyped or malformed field with a MalformedMessageError naming it."""
    with pytest.raises(MalformedMessageError, match=words):
        protocol.decode_claim(_entry({**GOOD, **change}))


def test_claim_missing_field():
    """A claim without contractAddress is malformed (the JS schema requires all four strings)."""
    payload = dict(GOOD)
    del payload["contractAddress"]
    with pytest.raises(MalformedMessageError, match="contractAddress must be a string"):
        protocol.decode_claim(_entry(payload))


@pytest.mark.parametrize("entry, words", [
    (SubProtocolEntry("machinomy", 2, b"{not json"), "not JSON"),
    (SubProtocolEntry("machinomy", 2, b"\xff\xfe"), "not JSON"),
    (SubProtocolEntry("machinomy", 2, b"[" * 100000), "nested too deeply"),
    (SubProtocolEntry("machinomy", 2, b"[1, 2]"), "JSON object"),
    (SubProtocolEntry("machinomy", 0, json.dumps(GOOD).encode()), "content type must be 2"),
    (SubProtocolEntry("info", 2, json.dumps(GOOD).encode()), "expected the 'machinomy'"),
])
def test_malformed_claim_envelope(entry, words):
    """decode_claim rejects non-JSON, non-object JSON, a wrong content type and a wrong sub-protocol name."""
    with pytest.raises(MalformedMessageError, match=words):
        protocol.decode_claim(entry)


@pytest.mark.parametrize("payload, words", [
    ({}, "no ethereumAddress"),
    ({"ethereumAddress": 12}, "must be a string"),
    ({"ethereumAddress": "0xabc"}, "not an Ethereum address"),
])
def test_malformed_info(payload, words):
    """decode_info rejects a missing, mistyped or invalid ethereumAddress."""
    with pytest.raises(MalformedMessageError, match=words):
        protocol.decode_info(_entry(payload, name="info"))


@pytest.mark.parametrize("value", [-1, 2 ** 256, 1.5, True])
def test_encode_claim_rejects_bad_value(value):
    """encode_claim refuses a value that is not an int wei in [0, 2**256)."""
    with pytest.raises(MalformedMessageError, match="value must be an int"):
        protocol.encode_claim(Claim(GOOD["channelId"], GOOD["signature"], value, GOOD["contractAddress"]))
