"""The chain client (Web3Ledger) on a real EVM: ganache 7.9.2 running machinomy Unidirectional from the npm package."""

from __future__ import annotations

import os
import threading

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from ilptx_ethereum import checks
from ilptx_ethereum.chain import LedgerError, LedgerUnavailableError, TransactionFailedError, Web3Ledger
from ilptx_ethereum.claims import make_claim, payment_digest
from ilptx_ethereum.model import ChannelSnapshot

ETH = 10 ** 18
GWEI = 10 ** 9
SETTLING_PERIOD = 20


def _new_channel_id() -> str:
    return "0x" + os.urandom(32).hex()


@pytest.fixture
def parties(ganache):
    """(sender, receiver, outsider): started Web3Ledger clients for ganache's accounts 1, 2 and 3."""
    clients = [Web3Ledger(ganache.url, key, ganache.contract_address, reactor=reactor) for key in ganache.keys[1:4]]
    for c in clients:
        c.start()
    yield clients
    for c in clients:
        c.stop()


def _in_thread(f):
    """Run a blocking web3 call (of the test itself) off the reactor thread."""
    return deferToThread(f)


def _balance(ganache, address: str) -> int:
    """The wei balance straight from the node's JSON-RPC (not through Web3Ledger)."""
    return int(ganache.rpc("eth_getBalance", [address, "latest"]), 16)


def _check(claim, channel: ChannelSnapshot, receiver: Web3Ledger, **kw):
    args = dict(our_address=receiver.address, contract_address=receiver.contract_address, account="peer",
                min_dispute_period=SETTLING_PERIOD)
    args.update(kw)
    return checks.check_incoming_claim(claim, channel, **args)


@pytest_twisted.inlineCallbacks
def test_open_deposit_claim_moves_exactly_the_claimed_wei(ganache, parties):
    """Open, deposit, 3 off-chain claims checked against the chain, claim on chain: the receiver gains exactly the claim
    and the sender loses exactly the claim, net of gasUsed × effectiveGasPrice."""
    sender, receiver, _ = parties
    cid = _new_channel_id()
    before = {a: _balance(ganache, a) for a in (sender.address, receiver.address, ganache.contract_address)}

    opened = yield sender.open_channel(cid, receiver.address, SETTLING_PERIOD, 1 * ETH)
    deposited = yield sender.deposit(cid, ETH // 2)
    assert (opened.events, deposited.events) == (("DidOpen",), ("DidDeposit",))
    channel = yield receiver.channel(cid)
    assert channel == ChannelSnapshot(cid, ganache.contract_address, sender.address, receiver.address,
                                      3 * ETH // 2, SETTLING_PERIOD, None)

    best, credited_gwei, leftover = None, 0, 0
    for total in (0, 300_000_000 * GWEI + 123, 700_000_000 * GWEI + 5):
        claim = make_claim(ganache.keys[1], ganache.contract_address, cid, total)
        credit = _check(claim, channel, receiver, previous=best, leftover_wei=leftover)
        best, leftover = (cid, credit.best_value), credit.leftover_wei
        credited_gwei += credit.amount_gwei
    assert credited_gwei * GWEI + leftover == total
    onchain_digest = yield _in_thread(receiver._contract.functions.paymentDigest(bytes.fromhex(cid[2:]), total).call)
    assert onchain_digest == payment_digest(ganache.contract_address, cid, total)

    claimed = yield receiver.claim(cid, total, claim.signature)
    assert claimed.events == ("DidClaim",)
    assert (yield receiver.channel(cid)) is None
    after = {a: _balance(ganache, a) for a in before}
    assert after[receiver.address] - before[receiver.address] == total - claimed.fee_wei
    assert before[sender.address] - after[sender.address] == total + opened.fee_wei + deposited.fee_wei
    assert after[ganache.contract_address] == before[ganache.contract_address]
    assert claimed.fee_wei == claimed.gas_used * claimed.effective_gas_price > 0


@pytest_twisted.inlineCallbacks
def test_forged_claims_fail_checks_and_the_contract(ganache, parties):
    """Wrong signer, value above the deposit, another channel's id and a lower total fail the checks against the
    on-chain channel; the contract refuses the forged signature too and no wei moves."""
    sender, receiver, outsider = parties
    cid, other_cid = _new_channel_id(), _new_channel_id()
    yield sender.open_channel(cid, receiver.address, SETTLING_PERIOD, ETH // 10)
    yield sender.open_channel(other_cid, receiver.address, SETTLING_PERIOD, ETH // 10)
    channel = yield receiver.channel(cid)
    other = yield receiver.channel(other_cid)
    key, contract = ganache.keys[1], ganache.contract_address
    best = (cid, _check(make_claim(key, contract, cid, 1000), channel, receiver).best_value)

    forged_signer = make_claim(ganache.keys[3], contract, cid, 2000)
    with pytest.raises(checks.SignerNotSenderError, match=outsider.address):
        _check(forged_signer, channel, receiver, previous=best)
    with pytest.raises(checks.ValueAboveChannelError):
        _check(make_claim(key, contract, cid, ETH // 10 + 1), channel, receiver, previous=best)
    with pytest.raises(checks.WrongChannelError):
        _check(make_claim(key, contract, other_cid, 2000), other, receiver, previous=best)
    with pytest.raises(checks.ClaimNotIncreasedError):
        _check(make_claim(key, contract, cid, 999), channel, receiver, previous=best)
    missing = _new_channel_id()
    with pytest.raises(checks.ChannelNotFoundError):
        _check(make_claim(key, contract, missing, 1), (yield receiver.channel(missing)), receiver)
    with pytest.raises(checks.NotReceiverError):
        _check(make_claim(key, contract, cid, 2000), channel, outsider)

    before = _balance(ganache, receiver.address)
    with pytest.raises(TransactionFailedError, match="claim would revert"):
        yield receiver.claim(cid, 2000, forged_signer.signature)
    with pytest.raises(TransactionFailedError, match="claim would revert"):
        yield outsider.claim(cid, 2000, make_claim(key, contract, cid, 2000).signature)
    assert _balance(ganache, receiver.address) == before
    assert (yield receiver.channel(cid)) == channel


@pytest_twisted.inlineCallbacks
def test_start_settling_then_settle_after_the_period(ganache, parties):
    """startSettling sets settlingUntil = its block + the period; settle reverts before it and after it returns the
    whole value to the sender (fees exact)."""
    sender, receiver, _ = parties
    cid = _new_channel_id()
    before = _balance(ganache, sender.address)
    opened = yield sender.open_channel(cid, receiver.address, 5, ETH // 4)
    with pytest.raises(TransactionFailedError, match="startSettling would revert"):
        yield receiver.start_settling(cid)  # only the sender may
    started = yield sender.start_settling(cid)
    assert started.events == ("DidStartSettling",)
    channel = yield sender.channel(cid)
    assert channel.is_settling and channel.settling_until == started.block_number + 5
    with pytest.raises(TransactionFailedError, match="settle would revert"):
        yield sender.settle(cid)
    ganache.mine(5)
    assert (yield sender.block_number()) >= channel.settling_until
    settled = yield sender.settle(cid)
    assert settled.events == ("DidSettle",)
    assert (yield sender.channel(cid)) is None
    assert before - _balance(ganache, sender.address) == opened.fee_wei + started.fee_wei + settled.fee_wei


@pytest_twisted.inlineCallbacks
def test_reads_match_the_node(ganache, parties):
    """balance, block_number, gas_price, chain_id report what the node says; contract_deployed sees code or none."""
    sender = parties[0]
    assert (yield sender.balance(sender.address)) == _balance(ganache, sender.address)
    assert (yield sender.block_number()) == int(ganache.rpc("eth_blockNumber", []), 16)
    assert (yield sender.gas_price()) == int(ganache.rpc("eth_gasPrice", []), 16)
    assert (yield sender.chain_id()) == 1337
    assert (yield sender.contract_deployed()) is True
    elsewhere = Web3Ledger(ganache.url, ganache.keys[1], sender.address, reactor=reactor)
    elsewhere.start()
    try:
        assert (yield elsewhere.contract_deployed()) is False
    finally:
        elsewhere.stop()


@pytest_twisted.inlineCallbacks
def test_blocking_calls_run_off_the_reactor_thread(ganache, parties):
    """Every JSON-RPC request of a read and of a transaction is made on the client's pool, not the reactor thread."""
    sender, receiver, _ = parties
    threads = []
    provider = sender._w3.provider
    original = provider.make_request

    def recording(method, params):
        threads.append((method, threading.current_thread()))
        return original(method, params)

    provider.make_request = recording
    yield sender.open_channel(_new_channel_id(), receiver.address, SETTLING_PERIOD, 1000)
    yield sender.block_number()
    methods = {m for m, _ in threads}
    assert {"eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_blockNumber"} <= methods
    assert all(t is not threading.main_thread() and t.name.startswith("PoolThread-ilptx-ethereum-web3")
               for _, t in threads)


@pytest_twisted.inlineCallbacks
def test_unreachable_node_is_ledger_unavailable(ganache):
    """A client whose node refuses connections fails with LedgerUnavailableError, not a requests exception."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Web3Ledger(f"http://127.0.0.1:{port}", ganache.keys[1], ganache.contract_address, reactor=reactor)
    client.start()
    try:
        with pytest.raises(LedgerUnavailableError, match="unavailable"):
            yield client.block_number()
    finally:
        client.stop()


@pytest_twisted.inlineCallbacks
def test_not_started_fails_clearly(ganache):
    """A call before start() fails with LedgerError saying to call start()."""
    client = Web3Ledger(ganache.url, ganache.keys[1], ganache.contract_address, reactor=reactor)
    with pytest.raises(LedgerError, match="call start"):
        yield client.block_number()


@pytest_twisted.inlineCallbacks
def test_bad_arguments_fail_before_sending(ganache, parties):
    """A bad channel id, receiver or signature fails the Deferred with ValueError naming the call; nothing is sent."""
    sender, receiver, _ = parties
    nonce = int(ganache.rpc("eth_getTransactionCount", [sender.address, "latest"]), 16)
    with pytest.raises(ValueError, match="open: channel id"):
        yield sender.open_channel("0x12", receiver.address, SETTLING_PERIOD, 1)
    with pytest.raises(ValueError, match="open: "):
        yield sender.open_channel(_new_channel_id(), "0xnot-an-address", SETTLING_PERIOD, 1)
    with pytest.raises(ValueError, match="claim: "):
        yield receiver.claim(_new_channel_id(), 1, "0xzz")
    assert int(ganache.rpc("eth_getTransactionCount", [sender.address, "latest"]), 16) == nonce


@pytest_twisted.inlineCallbacks
def test_open_above_balance_refused_by_node(ganache, parties):
    """Opening a channel with more ether than the account has fails with TransactionFailedError; the balance stays."""
    sender, receiver, _ = parties
    before = _balance(ganache, sender.address)
    with pytest.raises(TransactionFailedError, match="open refused by the node"):
        yield sender.open_channel(_new_channel_id(), receiver.address, SETTLING_PERIOD, before + 1)
    assert _balance(ganache, sender.address) == before


@pytest_twisted.inlineCallbacks
def test_parallel_transactions_do_not_collide(ganache, parties):
    """Four opens started at once from one client all succeed, each with its own nonce (one transaction at a time)."""
    from twisted.internet.defer import gatherResults
    sender, receiver, _ = parties
    ids = [_new_channel_id() for _ in range(4)]
    results = yield gatherResults([sender.open_channel(i, receiver.address, SETTLING_PERIOD, 1000 + n)
                                   for n, i in enumerate(ids)], consumeErrors=True)
    assert [r.events for r in results] == [("DidOpen",)] * 4
    nonces = {int(ganache.rpc("eth_getTransactionByHash", [r.tx_hash])["nonce"], 16) for r in results}
    assert len(nonces) == 4
    channels = yield gatherResults([receiver.channel(i) for i in ids])
    assert [c.value for c in channels] == [1000, 1001, 1002, 1003]
