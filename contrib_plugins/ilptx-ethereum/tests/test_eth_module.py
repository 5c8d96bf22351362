"""EthereumModule inside the settling plugin, on an in-memory Unidirectional chain and a fake network (no EVM):
options, the wire (info, zero claim after open, machinomy answered []), the watcher, claims on disconnect and on
requestClose, retries of the channel read, lifetime totals across channels, entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_fake_chain import CONTRACT, FakeChain
from test_eth_module_contract import KEY_A, KEY_B, factory_on, module_options

from ilptx.errors import ConfigError
from ilptx.testing import failure_of, linked_settling_plugins, plugin_services, result_of

from ilptx_ethereum import hooks, protocol
from ilptx_ethereum.claims import address_of, make_claim
from ilptx_ethereum.module import CHANNEL_RETRIES, CLAIM_GAS, EthereumModule

ETH = 10 ** 18
GWEI = 10 ** 9


def make_pair(chain=None, peer_extra=None):
    """A (payer, payee) pair of ethereum plugins on ``chain`` (a funded FakeChain by default), not yet connected;
    ``peer_extra``: more options of the payee."""
    if chain is None:
        chain = FakeChain()
        chain.fund(KEY_A, 10 * ETH)
        chain.fund(KEY_B, 10 * ETH)
    pair = linked_settling_plugins(factory_on(chain, KEY_A), factory_on(chain, KEY_B), options=module_options(KEY_A),
                                   peer_options={**module_options(KEY_B), **(peer_extra or {})})
    pair.chain = chain
    return pair


def connect(pair):
    ds = [pair.plugin.connect(), pair.peer.connect()]
    pair.settle()
    for d in ds:
        result_of(d)


def paid(pair, amount):
    d = pair.plugin.send_money(amount)
    pair.settle()
    return result_of(d)


@pytest.mark.parametrize("key, value, says", [
    ("ethereumPrivateKey", None, "required"),
    ("ethereumPrivateKey", "0x12", "64 hex digits"),
    ("ethereumProvider", "ws://node:8546", "http://"),
    ("contractAddress", "0x1234", "address"),
    ("outgoingChannelAmount", "0", ">= 1"),
    ("outgoingDisputePeriod", -1, ">= 1"),
    ("minIncomingDisputePeriod", "soon", ">= 0"),
    ("role", "peer", "'server'"),
    ("tokenAddress", "0x" + "11" * 20, "ERC-20"),
])
def test_bad_option_is_one_config_error_naming_the_key(key, value, says):
    """Each invalid option is a ConfigError naming accounts.<id>.options.<key>, and the private key is never echoed."""
    options = {**module_options(KEY_A), key: value}
    if value is None:
        del options[key]
    with pytest.raises(ConfigError) as error:
        EthereumModule(options, account_id="peer", services=plugin_services())
    assert error.value.key == f"accounts.peer.options.{key}" and says in error.value.problem
    assert KEY_A[2:] not in str(error.value)


def test_option_units_follow_the_js_plugin():
    """outgoingChannelAmount and minIncomingChannelAmount are gwei (kept as wei), dispute periods blocks; defaults."""
    module = EthereumModule({"ethereumPrivateKey": KEY_A, "ethereumProvider": "http://x:8545"}, account_id="p",
                            services=plugin_services())
    o = module.options
    assert (o.outgoing_channel_amount, o.min_incoming_channel_amount) == (50_000_000 * GWEI, None)
    assert (o.outgoing_dispute_period, o.min_incoming_dispute_period) == (34560, 17280)
    module = EthereumModule({**module_options(KEY_A), "outgoingChannelAmount": "7", "minIncomingChannelAmount": 3},
                            account_id="p", services=plugin_services())
    assert (module.options.outgoing_channel_amount, module.options.min_incoming_channel_amount) == (7 * GWEI, 3 * GWEI)


def test_entry_point_names_both_plugins():
    """The hook offers the settling plugin as 'ethereum' and 'ilp-plugin-ethereum'; pyproject declares the hook."""
    factory = hooks.ethereum_plugin
    assert hooks.ilptx_ledger_plugins() == {"ethereum": factory, "ilp-plugin-ethereum": factory}

    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '[project.entry-points.ilptx]\nethereum = "ilptx_ethereum.hooks"' in text


def test_send_money_as_soon_as_connected_waits_for_the_info_exchange():
    """A payout started the moment BTP connects (before info answered) is paid, not failed for an unknown address."""
    pair = make_pair()
    results = []
    pair.plugin.add_connection_listener(lambda up: up and results.append(pair.plugin.send_money(100)))
    credited = []
    pair.peer.register_money_handler(credited.append)
    connect(pair)
    pair.settle()
    assert result_of(results[0]) is None and credited == [100]


def test_open_sends_a_zero_claim_then_the_claim_and_links_the_channel():
    """The first payout opens a channel of outgoingChannelAmount, sends a zero machinomy claim, then the claim; []."""
    pair = make_pair()
    connect(pair)
    sent = []
    call = pair.plugin.settlement._call_peer
    pair.plugin.settlement._call_peer = lambda entries: sent.append(entries) or call(entries).addCallback(
        lambda answer: sent.append(answer) or answer)
    paid(pair, 1500)
    claims = [json.loads(e[0].data) for e in sent if isinstance(e, tuple) and e and e[0].protocol_name == "machinomy"]
    assert [c["value"] for c in claims] == ["0", str(1500 * GWEI)]
    assert list(claims[0]) == ["channelId", "signature", "value", "contractAddress"]
    assert () in sent  # the peer's answer to a machinomy claim: no protocol data
    channel = pair.chain.channels[claims[0]["channelId"]]
    assert channel.value == 1_000_000 * GWEI and channel.settling_period == 34560
    assert channel.receiver == address_of(KEY_B)


def test_deposit_when_a_claim_exceeds_the_channel():
    """A total above the channel's value deposits (at least outgoingChannelAmount) before signing."""
    pair = make_pair()
    connect(pair)
    paid(pair, 600_000)
    paid(pair, 900_000)
    (channel,) = pair.chain.channels.values()
    assert channel.value == 2_000_000 * GWEI
    assert result_of(pair.peer.settlement.best_incoming_claim()).value == 1_500_000 * GWEI


def test_watcher_claims_a_channel_whose_sender_starts_settling():
    """The payer starts settling its channel: the payee's next watcher tick claims the best claim on chain."""
    pair = make_pair()
    connect(pair)
    paid(pair, 2000)
    (channel_id,) = pair.chain.channels
    before = pair.chain.balances[address_of(KEY_B)]
    result_of(pair.plugin.module.ledger.start_settling(channel_id))
    pair.settle(60)
    assert channel_id not in pair.chain.channels
    assert pair.chain.balances[address_of(KEY_B)] - before == 2000 * GWEI


def test_disconnect_claims_only_when_worthwhile():
    """On disconnect the payee claims when the claim exceeds gas price × CLAIM_GAS; a smaller claim stays unclaimed."""
    fee_gwei = 10 * CLAIM_GAS  # at 10 gwei per gas
    for amount, claimed in ((fee_gwei, False), (fee_gwei + 1, True)):
        chain = FakeChain(gas_price=10 * GWEI)
        chain.fund(KEY_A, 10 * ETH)
        chain.fund(KEY_B, 10 * ETH)
        pair = make_pair(chain)
        connect(pair)
        paid(pair, amount)
        (channel_id,) = pair.chain.channels
        d = pair.peer.disconnect()
        pair.settle()
        result_of(d)
        assert (channel_id not in pair.chain.channels) is claimed, amount


def test_request_close_makes_the_peer_claim_and_the_next_channel_continues_the_totals():
    """requestClose: the payee claims; the next payout opens a new channel signed for total − base, credited exactly."""
    pair = make_pair()
    connect(pair)
    credited = []
    pair.peer.register_money_handler(credited.append)
    paid(pair, 3000)
    (first,) = pair.chain.channels
    d = pair.plugin.module.request_close()
    pair.settle()
    result_of(d)
    assert first not in pair.chain.channels
    paid(pair, 500)
    (second,) = pair.chain.channels
    best = result_of(pair.peer.settlement.best_incoming_claim())
    assert best.value == 3500 * GWEI and json.loads(best.data)["value"] == str(500 * GWEI)
    assert json.loads(best.data)["channelId"] == second and credited == [3000, 500]


def test_claim_on_a_channel_not_yet_mined_is_read_again_20_times_250_ms_apart():
    """A first claim whose channel is not on chain yet: re-read every 250 ms (fake clock), credited once it appears."""
    pair = make_pair()
    connect(pair)
    credited = []
    pair.peer.register_money_handler(credited.append)
    cid = "0x" + "ab" * 32
    claim = make_claim(KEY_A, CONTRACT, cid, 700 * GWEI)
    sub = protocol.encode_claim(claim)
    d = pair.plugin.settlement.call_peer(sub.protocol_name, sub.data, sub.content_type)
    for _ in range(5):
        pair.settle(0.25)
    assert not d.called
    result_of(pair.plugin.module.ledger.open_channel(cid, address_of(KEY_B), 34560, ETH))
    pair.settle(0.25)
    assert result_of(d) == () and credited == [700]


def test_claim_on_a_channel_that_never_appears_is_refused_after_20_reads():
    """A first claim on a channel never on chain: refused (ChannelNotFoundError) after 20 reads, none credited."""
    pair = make_pair()
    connect(pair)
    credited = []
    pair.peer.register_money_handler(credited.append)
    sub = protocol.encode_claim(make_claim(KEY_A, CONTRACT, "0x" + "cd" * 32, 700 * GWEI))
    d = pair.plugin.settlement.call_peer(sub.protocol_name, sub.data, sub.content_type)
    for _ in range(CHANNEL_RETRIES - 2):
        pair.settle(0.25)
    assert not d.called
    pair.settle(0.25)
    assert "ChannelNotFoundError" in d.result.getErrorMessage() and credited == []
    d.addErrback(lambda f: None)


def test_info_links_the_peer_address_for_life():
    """Both sides learn each other's address from info; a later info naming another address is refused (F00)."""
    pair = make_pair()
    connect(pair)
    assert (pair.plugin.module.peer_address, pair.peer.module.peer_address) == (address_of(KEY_B), address_of(KEY_A))
    other = protocol.encode_info(address_of("0x" + "c3" * 32))
    d = pair.plugin.settlement.call_peer(other.protocol_name, other.data, other.content_type)
    pair.settle()
    assert "is not the one linked" in d.result.getErrorMessage()
    d.addErrback(lambda f: None)
    assert pair.peer.module.peer_address == address_of(KEY_A) and pair.peer.is_connected()


def test_info_refused_at_first_is_asked_again():
    """A peer that answers the first info with an error (the JS 'Account peer is not yet loaded') is asked again."""
    pair = make_pair()
    real, refusals = pair.peer.module._on_info, []

    def not_loaded_yet(entry):
        if not refusals:
            refusals.append(entry)
            raise RuntimeError("Account peer is not yet loaded")
        return real(entry)

    pair.peer.module._on_info = not_loaded_yet
    pair.peer.module.peer_connected = lambda: None  # as the JS client, which sends no info of its own on connect
    ds = [pair.plugin.connect(), pair.peer.connect()]
    pair.settle()
    for d in ds:
        result_of(d)
    assert refusals and pair.plugin.module.peer_address is None
    pair.settle(0.1)
    pair.settle(0.25)
    assert pair.plugin.module.peer_address == address_of(KEY_B)


def test_min_incoming_channel_amount_opens_a_channel_back():
    """With minIncomingChannelAmount reached by the peer's channel, the payee opens a channel back (zero claim only)."""
    pair = make_pair(peer_extra={"minIncomingChannelAmount": 1_000_000})
    connect(pair)
    paid(pair, 10)
    back = [c for c in pair.chain.channels.values() if c.sender == address_of(KEY_B)]
    assert [(c.receiver, c.value) for c in back] == [(address_of(KEY_A), 1_000_000 * GWEI)]
    assert result_of(pair.plugin.get_admin_info())["ethereum"]["incomingChannel"]["channelId"] == back[0].channel_id
    assert result_of(pair.plugin.settlement.best_incoming_claim()).value == 0


def test_min_incoming_channel_amount_not_reached_opens_nothing():
    """A peer channel below minIncomingChannelAmount: no channel back."""
    pair = make_pair(peer_extra={"minIncomingChannelAmount": 1_000_001})
    connect(pair)
    paid(pair, 10)
    assert [c.sender for c in pair.chain.channels.values()] == [address_of(KEY_A)]


def test_no_contract_at_the_address_fails_connect_and_stops_the_chain_client():
    """contractAddress with no code on the chain: connect fails naming the option; no chain client left running."""
    chain = FakeChain()
    other = "0x" + "d4" * 20
    plugin = factory_on(chain, KEY_A)({**module_options(KEY_A), "contractAddress": other,
                                       "listener": {"port": 7799, "host": "127.0.0.1", "secret": "s"}},
                                      account_id="peer", services=plugin_services())
    failure = failure_of(plugin.connect())
    assert f"accounts.peer.options.contractAddress: no contract code at {other}" in failure.getErrorMessage()
    assert chain.clients and not any(c.running for c in chain.clients)
