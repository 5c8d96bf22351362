"""The SettlingModuleContract suite of ilptx.testing, run against the reference Ed25519 channel module on a
FakeLedger, in both BTP roles (so the suite third-party modules run is itself proven)."""

from __future__ import annotations

from ed25519_channel import module_factory

from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import FakeLedger, SettlingModuleContract

SEED_A, SEED_B = "11" * 32, "22" * 32


def funded_ledger() -> FakeLedger:
    ledger = FakeLedger()
    for seed in (SEED_A, SEED_B):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        ledger.fund(FakeLedger.address_of(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))), 10 ** 18)
    return ledger


class TestEd25519ChannelModuleContract(SettlingModuleContract):
    """The reference module, as the listening side, meets the settling module contract."""

    def make_factories(self):
        factory = settling_plugin_factory(module_factory(funded_ledger()))
        return factory, factory, {"seed": SEED_A}, {"seed": SEED_B}
