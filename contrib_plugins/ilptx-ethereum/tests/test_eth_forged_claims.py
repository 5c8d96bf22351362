"""Forged machinomy claims over real BTP WebSockets to an ethereum plugin on ganache: each is refused with a warning
naming the failed check, credits nothing, and the link goes on crediting honest claims."""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import Logger

from ilptx.plugins.base import PluginServices
from ilptx.testing_procs import LogLines
from ilptx.stores.memory import MemoryStore

from ilptx_ethereum import module as eth_module
from ilptx_ethereum import protocol
from ilptx_ethereum.chain import Web3Ledger
from ilptx_ethereum.claims import make_claim
from ilptx_ethereum.hooks import ethereum_plugin

GWEI = 10 ** 9
DEPOSIT_GWEI = 5_000_000


def _plugin(ganache, key: str, btp: dict, account_id: str):
    options = {**btp, "ethereumPrivateKey": key, "ethereumProvider": ganache.url,
               "contractAddress": ganache.contract_address, "outgoingChannelAmount": DEPOSIT_GWEI}
    services = PluginServices(reactor=reactor, log=Logger(namespace=f"ilptx.account.{account_id}"),
                              store=MemoryStore())
    return ethereum_plugin(options, account_id=account_id, services=services)


@pytest.fixture
def warnings():
    """Formatted log lines of level warn or above, while the test runs."""
    with LogLines() as lines:
        yield lines


@pytest_twisted.inlineCallbacks
def test_forged_claims_are_refused_and_credit_nothing(ganache, warnings, monkeypatch):
    """Wrong signer, value above the deposit, another channel's id, a lower total: each refused (F00) with a warning
    naming the check; nothing credited; honest claims before and after are credited exactly."""
    monkeypatch.setattr(eth_module, "CHANNEL_RETRY_DELAY", 0.01)  # the 20 re-reads of a retryable failure, faster
    payer_key, payee_key, forger_key = ganache.keys[1], ganache.keys[2], ganache.keys[3]
    payee = _plugin(ganache, payee_key, {"listener": {"host": "127.0.0.1", "port": 0, "secret": "s"}}, "payer")
    credited: list = []
    payee.register_money_handler(credited.append)
    yield payee.connect()
    payer = _plugin(ganache, payer_key, {"server": f"btp+ws://p:s@127.0.0.1:{payee.port}"}, "payee")
    outsider = Web3Ledger(ganache.url, payer_key, ganache.contract_address, reactor=reactor)
    outsider.start()
    try:
        yield payer.connect()
        yield payer.send_money(1_000_000)
        assert credited == [1_000_000]
        channel_id = (yield payer.get_admin_info())["ethereum"]["outgoingChannel"]["channelId"]
        contract = ganache.contract_address

        other_channel = "0x" + os.urandom(32).hex()  # the payer's second channel to the payee, not the linked one
        yield outsider.open_channel(other_channel, payee.module.address, 34560, GWEI)
        forgeries = {
            "SignerNotSenderError": make_claim(forger_key, contract, channel_id, 2_000_000 * GWEI),
            "ValueAboveChannelError": make_claim(payer_key, contract, channel_id, DEPOSIT_GWEI * GWEI + 1),
            "WrongChannelError": make_claim(payer_key, contract, other_channel, 2_000_000 * GWEI),
            "ClaimNotIncreasedError": make_claim(payer_key, contract, channel_id, 500_000 * GWEI),
        }
        for check, claim in forgeries.items():
            sub = protocol.encode_claim(claim)
            with pytest.raises(Exception) as refused:
                yield payer.settlement.call_peer(sub.protocol_name, sub.data, sub.content_type)
            assert "F00" in repr(refused.value) or "NotAccepted" in repr(refused.value), repr(refused.value)
            assert [line for line in warnings if check in line and "rejected" in line], (check, warnings)
        assert credited == [1_000_000]
        assert (yield payee.get_admin_info())["settlement"]["credited"] == str(1_000_000 * GWEI)

        yield payer.send_money(250_000)
        assert credited == [1_000_000, 250_000]
    finally:
        outsider.stop()
        yield payer.disconnect()
        yield payee.disconnect()
