"""The Python claims (ilptx_xrp_paychan.claims) against the JS side, run live with Node (tests/js/make_vectors.js):
the JS plugin's own channel-key derivation, util.encodeClaim, tweetnacl signatures, xrpl.js 4.6.0's
signPaymentChannelClaim / verifyPaymentChannelClaim and hashPaymentChannel."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import JS_DIR, make_wallet
from xrpl import CryptoAlgorithm

from ilptx_xrp_paychan.claims import channel_key, claim_bytes, compute_channel_id, sign_claim, verify_claim

DROPS = [1, 999, 1_000_000, 123_456_789_012, 10 ** 17]  # 10**17 drops: all XRP there is, the JS maximum


@pytest.fixture(scope="module")
def vectors(js_modules):
    """Inputs and what Node computes for them."""
    wallets = [make_wallet(), make_wallet(CryptoAlgorithm.SECP256K1), make_wallet()]
    pairs = [(wallets[0], wallets[1]), (wallets[1], wallets[2]), (wallets[2], wallets[0])]
    keys = [channel_key(a.seed, b.classic_address) for a, b in pairs]
    channels = [compute_channel_id(a.classic_address, b.classic_address, seq)
                for (a, b), seq in zip(pairs, (1, 77, 4_294_967_295), strict=True)]
    claims = [(key, channel, drops) for key, channel in zip(keys, channels, strict=True) for drops in DROPS]
    given = {
        "keys": [{"secret": a.seed, "peer": b.classic_address} for a, b in pairs],
        "claims": [{"privateKey": key.private_key, "publicKey": key.public_key, "channel": channel,
                    "drops": str(drops)} for key, channel, drops in claims],
        "channels": [{"source": a.classic_address, "destination": b.classic_address, "sequence": seq}
                     for (a, b), seq in zip(pairs, (1, 77, 4_294_967_295), strict=True)],
    }
    done = subprocess.run([js_modules.node, str(JS_DIR / "make_vectors.js"), json.dumps(given)], cwd=JS_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {"keys": keys, "claims": claims, "channels": channels, "js": json.loads(done.stdout)}


def test_channel_keys_match_the_js_plugin(vectors):
    """HMAC-SHA256(secret, tag + peer) as an Ed25519 seed gives the public key the JS plugin puts on its channel."""
    assert [k.public_key for k in vectors["keys"]] == [k["publicKey"] for k in vectors["js"]["keys"]]


def test_claim_bytes_and_signatures_match_the_js_plugin_and_xrpl_js(vectors):
    """CLM\\0 ‖ channel ‖ u64BE(drops) as util.encodeClaim; our signature = tweetnacl's = xrpl.js's, which verifies."""
    for (key, channel, drops), js in zip(vectors["claims"], vectors["js"]["claims"], strict=True):
        assert claim_bytes(channel, drops).hex() == js["bytes"]
        ours = sign_claim(key, channel, drops)
        assert ours == js["naclSignature"] == js["xrplSignature"].lower(), (channel, drops)
        assert js["xrplVerifies"] is True and verify_claim(key.public_key, channel, drops, js["xrplSignature"])


def test_channel_ids_match_the_js_plugin_and_xrpl_js(vectors):
    """compute_channel_id = util.computeChannelId = xrpl.js hashPaymentChannel (uppercase hex)."""
    for ours, js in zip(vectors["channels"], vectors["js"]["channels"], strict=True):
        assert ours == js["plugin"] == js["xrpl"].upper()
