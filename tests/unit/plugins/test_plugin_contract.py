"""The ILedgerPlugin contract suite of ilptx.testing, run against the memory plugin and the built-in btp plugin
(both roles), so that the suite plugin authors run is itself proven."""

from __future__ import annotations

from ilptx.plugins.btp import btp_factory
from ilptx.testing import (
    FakeNetwork,
    LedgerPluginContract,
    LinkedPair,
    SettlingPluginContract,
    linked_plugins,
    plugin_services,
)

SERVER = {"listener": {"port": 7768, "host": "127.0.0.1", "secret": "tok"}}
CLIENT = {"server": "btp+ws://alice:tok@localhost:7768/"}


def btp_pair(plugin_options, peer_options):
    net = FakeNetwork()
    plugin = btp_factory(plugin_options, account_id="under-test", services=plugin_services(net.reactor))
    peer = btp_factory(peer_options, account_id="counterparty", services=plugin_services(net.reactor))
    return LinkedPair(plugin, peer, net.settle)


class TestMemoryPluginContract(SettlingPluginContract):
    """MemoryPlugin meets the whole contract, settlement included."""

    def make_pair(self):
        plugin, peer = linked_plugins("under-test", "counterparty")
        return LinkedPair(plugin, peer)


class TestBtpServerContract(LedgerPluginContract):
    """A listening BtpPlugin, dialled by a BtpPlugin client, meets the ledger plugin contract."""

    def make_pair(self):
        return btp_pair(SERVER, CLIENT)


class TestBtpClientContract(LedgerPluginContract):
    """A dialling BtpPlugin, talking to a listening BtpPlugin, meets the ledger plugin contract."""

    def make_pair(self):
        return btp_pair(CLIENT, SERVER)
