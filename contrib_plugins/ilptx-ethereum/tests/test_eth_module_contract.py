"""SettlingModuleContract (ilptx.testing) run against EthereumModule on an in-memory Unidirectional chain."""

from __future__ import annotations

from eth_fake_chain import CONTRACT, FakeChain

from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import SettlingModuleContract

from ilptx_ethereum.module import EthereumModule

KEY_A, KEY_B = "0x" + "a1" * 32, "0x" + "b2" * 32
ETH = 10 ** 18


def module_options(key: str) -> dict:
    """The options of one side: its key, a placeholder provider (the fake chain is injected), the contract."""
    return {"ethereumPrivateKey": key, "ethereumProvider": "http://127.0.0.1:1", "contractAddress": CONTRACT,
            "outgoingChannelAmount": 1_000_000}


def factory_on(chain: FakeChain, key: str):
    """A settling plugin factory whose module's ledger is ``chain`` as ``key``."""
    return settling_plugin_factory(lambda options, *, account_id, services: EthereumModule(
        options, account_id=account_id, services=services, ledger_factory=chain.client(key)))


class TestEthereumModuleContract(SettlingModuleContract):
    """EthereumModule meets the settling module contract (ILedgerPlugin, money both ways, replays, restarts)."""

    def make_factories(self):
        chain = FakeChain()
        chain.fund(KEY_A, 10 * ETH)
        chain.fund(KEY_B, 10 * ETH)
        self.chain = chain
        return factory_on(chain, KEY_A), factory_on(chain, KEY_B), module_options(KEY_A), module_options(KEY_B)
