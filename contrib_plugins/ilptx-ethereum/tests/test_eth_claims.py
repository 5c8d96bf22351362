"""Claim digest, signature and signer recovery, pinned against ilp-plugin-ethereum 3.0.0-beta.20."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak

from ilptx_ethereum.claims import (
    InvalidSignatureError, address_of, make_claim, payment_digest, recover_signer, sign_claim,
)
from ilptx_ethereum.model import Claim

HERE = Path(__file__).resolve().parent
VECTORS_PATH = HERE / "fixtures" / "js_vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
CLAIMS = VECTORS["claims"]
KEY = "0x" + "42" * 32
CONTRACT = "0xe78A0F7E598Cc8b0Bb87894B0F60dD2a88d6a8Ab"
CHANNEL = "0x" + "ab" * 32


def _ids(v: dict) -> str:
    return f"{v['address'][:6]}-{v['value'][:8]}-{'token' if v['tokenContract'] else 'eth'}"


def test_vectors_cover_tokens_and_extremes():
    """The committed JS vectors include 0, 2**256−1, several keys, and claims with and without a token."""
    values = {v["value"] for v in CLAIMS}
    assert {"0", str(2 ** 256 - 1)} <= values
    assert len({v["privateKey"] for v in CLAIMS}) == 3
    assert {v["tokenContract"] is None for v in CLAIMS} == {True, False}


@pytest.mark.parametrize("v", CLAIMS, ids=_ids)
def test_digest_matches_js(v):
    """payment_digest is the JS solidityKeccak256 digest, and its EIP-191 hash is the JS createPaymentDigest."""
    digest = payment_digest(v["contractAddress"], v["channelId"], int(v["value"]), v["tokenContract"])
    assert "0x" + digest.hex() == v["digest"]
    assert "0x" + keccak(b"\x19Ethereum Signed Message:\n32" + digest).hex() == v["prefixedDigest"]


@pytest.mark.parametrize("v", CLAIMS, ids=_ids)
def test_signature_matches_js_byte_for_byte(v):
    """sign_claim gives the exact r‖s‖v (v 1b/1c) the JS plugin's signClaim (and ethers v4) give."""
    sig = sign_claim(v["privateKey"], v["contractAddress"], v["channelId"], int(v["value"]), v["tokenContract"])
    assert sig == v["signature"] == v["ethersSignature"]
    assert sig[-2:] in ("1b", "1c")


@pytest.mark.parametrize("v", CLAIMS, ids=_ids)
def test_recover_js_signature(v):
    """recover_signer returns the JS signer's address for the JS plugin's claims."""
    claim = Claim(v["channelId"], v["signature"], int(v["value"]), v["contractAddress"], v["tokenContract"])
    assert recover_signer(claim) == v["address"]
    assert address_of(v["privateKey"]) == v["address"]


def test_vectors_use_both_recovery_ids():
    """The vectors exercise v = 1b and v = 1c (both recovery ids)."""
    assert {v["signature"][-2:] for v in CLAIMS} == {"1b", "1c"}


def test_regenerated_vectors_equal_committed(js_modules):
    """make_vectors.js, run on the pinned npm packages now, prints exactly the committed fixture."""
    out = subprocess.run([js_modules.node, str(HERE / "js" / "make_vectors.js")], cwd=HERE / "js",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == VECTORS


@pytest.mark.parametrize("change", ["value", "channel", "contract", "token"])
def test_recovery_of_altered_claim_is_another_address(change):
    """Changing any signed field (value, channel id, contract, token) makes the signature recover another address."""
    claim = make_claim(KEY, CONTRACT, CHANNEL, 1000)
    altered = {
        "value": Claim(CHANNEL, claim.signature, 1001, CONTRACT),
        "channel": Claim("0x" + "ac" * 32, claim.signature, 1000, CONTRACT),
        "contract": Claim(CHANNEL, claim.signature, 1000, "0x" + "11" * 20),
        "token": Claim(CHANNEL, claim.signature, 1000, CONTRACT, "0x" + "22" * 20),
    }[change]
    assert recover_signer(claim) == address_of(KEY)
    assert recover_signer(altered) != address_of(KEY)


def test_v_00_01_accepted_like_the_contract():
    """A signature written with v 00/01 (as the contract's ECRecovery accepts) recovers the same signer."""
    claim = make_claim(KEY, CONTRACT, CHANNEL, 7)
    low_v = claim.signature[:-2] + {"1b": "00", "1c": "01"}[claim.signature[-2:]]
    assert recover_signer(Claim(CHANNEL, low_v, 7, CONTRACT)) == address_of(KEY)


@pytest.mark.parametrize("sig, words", [
    ("0x" + "00" * 64, "130 hex digits"),
    ("0x" + "zz" * 65, "not hex"),
    ("0x" + "11" * 64 + "1d", "v must be"),
    ("0x" + "00" * 64 + "1b", "recovers no key"),
    (None, "130 hex digits"),
])
def test_malformed_signature_rejected(sig, words):
    """A signature of wrong length, not hex, v outside 1b/1c/00/01, or r = s = 0 raises InvalidSignatureError."""
    with pytest.raises(InvalidSignatureError, match=words):
        recover_signer(Claim(CHANNEL, sig, 1, CONTRACT))


@pytest.mark.parametrize("args, words", [
    ((CONTRACT, "0x1234", 1), "channel id"),
    ((CONTRACT, "0x" + "gg" * 32, 1), "channel id"),
    (("0x1234", CHANNEL, 1), "contract address"),
    ((CONTRACT, CHANNEL, -1), "claim value"),
    ((CONTRACT, CHANNEL, 2 ** 256), "claim value"),
    ((CONTRACT, CHANNEL, True), "claim value"),
    ((CONTRACT, CHANNEL, 1, "0xnope"), "token contract"),
])
def test_digest_rejects_bad_fields(args, words):
    """payment_digest names the bad field: channel id, contract address, value outside uint256, token."""
    with pytest.raises(ValueError, match=words):
        payment_digest(*args)
