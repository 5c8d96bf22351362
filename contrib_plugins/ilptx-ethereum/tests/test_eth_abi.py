"""The hand-written Unidirectional interface and the contract choice per chain, as ilp-plugin-ethereum 3.0.0-beta.20."""

from __future__ import annotations

import json
import re

import pytest

from ilptx_ethereum.abi import KNOWN_CONTRACTS, UNIDIRECTIONAL_ABI, resolve_contract_address

CONTRACT = "0x" + "c0" * 20


def test_abi_matches_js_package(js_modules):
    """Every function and event of our hand-written ABI is in ilp-plugin-ethereum's testnet ABI, with the same types."""
    js_json = js_modules.modules / "ilp-plugin-ethereum/build/abi/Unidirectional-testnet.json"
    js_abi = json.loads(js_json.read_text())["abi"]

    def shape(e):
        inputs = tuple((i["type"], i.get("indexed", False)) for i in e.get("inputs", []))
        outputs = tuple(o["type"] for o in e.get("outputs", []))
        return e["type"], e["name"], inputs, outputs, e.get("stateMutability")

    js_shapes = {shape(e) for e in js_abi}
    ours = [shape(e) for e in UNIDIRECTIONAL_ABI]
    assert [s for s in ours if s not in js_shapes] == []
    assert {s[1] for s in ours} >= {"open", "deposit", "claim", "startSettling", "settle", "channels",
                                    "DidOpen", "DidDeposit", "DidClaim", "DidStartSettling", "DidSettle"}


@pytest.mark.parametrize("chain_id, configured, expected", [
    (1337, CONTRACT, CONTRACT),
    (3, CONTRACT, "0x8ffdea290f4dcdc553841a432e56aa26c91ab777"),
    (42, None, "0x481029bf134710832f5b9debdd10275fb7816f59"),
])
def test_contract_address_as_js_get_contract(chain_id, configured, expected):
    """The contract is the JS plugin's built-in one on chains 3/4/42 (over contractAddress), else contractAddress."""
    assert resolve_contract_address(chain_id, configured) == expected


@pytest.mark.parametrize("chain_id, configured, words", [(1, CONTRACT, "mainnet"), (1337, None, "contractAddress")])
def test_contract_address_unsupported(chain_id, configured, words):
    """Mainnet (another ABI) and a custom chain without contractAddress raise ValueError saying why."""
    with pytest.raises(ValueError, match=words):
        resolve_contract_address(chain_id, configured)


def test_known_contracts_are_the_js_plugins(js_modules):
    """KNOWN_CONTRACTS are the testnet-ABI deployments in the JS plugin's channel.js; chain 1 has the mainnet ABI."""
    source = (js_modules.modules / "ilp-plugin-ethereum/build/utils/channel.js").read_text()
    block = source[source.index("UNIDIRECTIONAL_METADATA = {"):source.index("TOKEN_UNIDIRECTIONAL_METADATA = {")]
    found = {int(chain): (meta, address) for chain, meta, address in
             re.findall(r"(\d+): \{\s*metadata: (\w+)\.default,\s*address: '(0x[0-9a-fA-F]{40})'", block)}
    assert found[1][0] == "Unidirectional_mainnet_json_1"
    assert {c: a for c, (m, a) in found.items() if m == "Unidirectional_testnet_json_1"} == KNOWN_CONTRACTS
