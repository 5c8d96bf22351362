"""SettlingModuleContract (ilptx.testing) run against the xrp-paychan plugin on the rippled double's ledger
engine, in process (xrp_fake_ledger), at currencyScale 9 (units ↔ drops rounding on every payment)."""

from __future__ import annotations

from conftest import make_wallet
from twisted.internet.task import Clock
from xrp_fake_ledger import SharedLedger

from ilptx.testing import SettlingModuleContract

from ilptx_xrp_paychan.module import xrp_paychan_plugin

XRP = 1_000_000


def module_options(wallet, **extra) -> dict:
    """One side's options: its secret, a placeholder rippled URL (the fake ledger is injected), scale 9."""
    return {"xrpServer": "ws://127.0.0.1:1", "secret": wallet.seed, "currencyScale": 9, **extra}


def factory_on(shared: SharedLedger):
    """A plugin factory whose module's ledger is ``shared``."""
    def factory(options, *, account_id, services):
        return xrp_paychan_plugin(options, account_id=account_id, services=services, ledger_factory=shared.client)
    return factory


def funded_pair(shared: SharedLedger, drops: int = 1000 * XRP):
    """Two funded wallets on ``shared``."""
    a, b = make_wallet(), make_wallet()
    shared.fund(a.classic_address, drops)
    shared.fund(b.classic_address, drops)
    return a, b


class TestXrpPaychanContract(SettlingModuleContract):
    """The xrp-paychan plugin meets the settling module contract (ILedgerPlugin, money both ways, replays, restarts)."""

    def make_factories(self):
        self.shared = SharedLedger(Clock())
        a, b = funded_pair(self.shared)
        factory = factory_on(self.shared)
        return factory, factory, module_options(a), module_options(b)
