"""The xrp-paychan plugin on the rippled double's ledger engine in process and a fake network (task clock, no
sockets): options, the channel it creates, the claim on the wire, units ↔ drops with nothing lost, funding, forged
claims, on-ledger claims (claimInterval, disconnect, watcher), a currency scale mismatch, a ledger down at start."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
from conftest import make_wallet
from test_xrp_plugin_contract import XRP, factory_on, funded_pair, module_options
from xrp_fake_ledger import SharedLedger

from ilptx.errors import ConfigError
from xrpl.models.transactions import PaymentChannelClaim, PaymentChannelClaimFlag

from ilptx.stores.memory import MemoryStore
from ilptx.testing import (
    SETTLING_LISTENER, FakeNetwork, failure_of, linked_settling_plugins, plugin_services, result_of,
)

from ilptx_xrp_paychan import hooks, protocol
from ilptx_xrp_paychan.claims import channel_key, sign_claim, units_to_drops, verify_claim
from ilptx_xrp_paychan.module import XrpPaychanModule

UNITS = 10 ** 9  # one XRP at currencyScale 9


def make_pair(payer_extra=None, payee_extra=None, shared=None, store=None):
    """(payer = plugin, payee = peer) on one fake network and ledger (``pair.shared``), not connected."""
    net = FakeNetwork()
    shared = shared or SharedLedger(net.reactor)
    a, b = funded_pair(shared)
    factory = factory_on(shared)
    pair = linked_settling_plugins(factory, factory, options=module_options(a, **(payer_extra or {})),
                                   peer_options=module_options(b, **(payee_extra or {})), network=net,
                                   store=store)
    pair.shared, pair.wallets = shared, (a, b)
    return pair


def connect(pair):
    ds = [pair.plugin.connect(), pair.peer.connect()]
    pair.settle()
    for d in ds:
        result_of(d)


def paid(pair, amount, key=None):
    d = pair.plugin.send_money(amount, key)
    pair.settle()
    return result_of(d)


def credits_of(plugin) -> list:
    credited: list = []
    plugin.register_money_handler(credited.append)
    return credited


def payee_closes(pair, channel: str, drops: int) -> None:
    """The payee submits its best claim on ``channel`` for ``drops`` with tfClose (the destination: it goes at once)."""
    record = json.loads(result_of(pair.peer.settlement.best_incoming_claim()).data)
    b = pair.wallets[1]
    close = PaymentChannelClaim(account=b.classic_address, channel=channel, balance=str(drops), amount=str(drops),
                                signature=record["signature"].upper(), public_key=pair.plugin.module.key.public_key,
                                flags=PaymentChannelClaimFlag.TF_CLOSE)
    result_of(pair.shared.client().submit_transaction(b, close))
    assert pair.shared.ledger.channel(channel, True) is None


def restarted_payer(pair, store):
    """A new payer plugin on ``store`` (the old one disconnected: a restart), connected."""
    again = factory_on(pair.shared)({**SETTLING_LISTENER, **module_options(pair.wallets[0])},
                                    account_id=pair.plugin.account_id,
                                    services=plugin_services(pair.network.reactor, account_id=pair.plugin.account_id,
                                                             store=store))
    started = again.connect()
    pair.settle(5)
    result_of(started)
    return again


def channel_of(plugin, pair):
    """The ledger's (validated) PayChannel of ``plugin``'s outgoing channel."""
    return pair.shared.ledger.channel(plugin.module.outgoing["channelId"], True)


@pytest.mark.parametrize("key, value, says", [
    ("secret", None, "required"),
    ("secret", "not-a-seed", "required"),
    ("xrpServer", "http://r:5005", "ws://"),
    ("currencyScale", -1, ">= 0"),
    ("channelAmount", 0, ">= 1"),
    ("fundThreshold", "lots", "number"),
    ("maxFeePercent", 0, "> 0"),
    ("peerAddress", "rNotAnAddress", "classic XRP address"),
    ("claimInterval", "soon", ">= 1"),
])
def test_bad_option_is_one_config_error_naming_the_key(key, value, says):
    """Each invalid option is a ConfigError naming accounts.<id>.options.<key>; the secret is never echoed."""
    wallet = make_wallet()
    options = {**module_options(wallet), key: value}
    if value is None:
        del options[key]
    with pytest.raises(ConfigError) as error:
        XrpPaychanModule(options, account_id="peer", services=plugin_services())
    assert error.value.key == f"accounts.peer.options.{key}" and says in error.value.problem
    assert wallet.seed not in str(error.value)


def test_options_follow_the_js_plugin():
    """JS names and defaults: currencyScale 6 (assetScale an alias, not both), channelAmount 1 XRP in plugin units,
    fundThreshold 0.5, claimInterval 5 min, settleDelay 3600 s, maxFeePercent 0.01, rippledServer an alias."""
    wallet = make_wallet()
    o = XrpPaychanModule({"rippledServer": "ws://r:6006", "secret": wallet.seed}, account_id="p",
                         services=plugin_services()).options
    assert (o.xrp_server, o.currency_scale, o.channel_amount, o.claim_interval_ms, o.settle_delay) == \
        ("ws://r:6006", 6, 10 ** 6, 300_000, 3600)
    assert (str(o.fund_threshold), str(o.max_fee_percent), o.address) == ("0.5", "0.01", wallet.classic_address)
    o = XrpPaychanModule({**module_options(wallet), "currencyScale": 9}, account_id="p", services=plugin_services()).options
    assert o.channel_amount == 10 ** 9
    with pytest.raises(ConfigError) as error:
        XrpPaychanModule({**module_options(wallet), "assetScale": 9}, account_id="p", services=plugin_services())
    assert error.value.key == "accounts.p.options.assetScale" and "alias" in error.value.problem


def test_entry_point_names_both_plugins():
    """The distribution's ilptx entry point loads hooks, which registers the symmetric and asym names."""
    names = {ep.name: ep.value for ep in entry_points(group="ilptx")}
    assert names.get("xrp-paychan") == "ilptx_xrp_paychan.hooks"
    assert set(hooks.ilptx_ledger_plugins()) == {"xrp-paychan", "ilp-plugin-xrp-paychan", "xrp-asym-client",
                                                 "ilp-plugin-xrp-asym-client", "xrp-asym-server",
                                                 "ilp-plugin-xrp-asym-server"}
    assert hooks.ilptx_ledger_plugins()["xrp-paychan"] is hooks.xrp_paychan_plugin


def test_connect_creates_a_channel_with_the_js_key_and_options():
    """Each side creates one channel to the other: channelAmount drops, settleDelay, the HMAC-derived Ed25519 key;
    ripple_channel_id links them both ways."""
    pair = make_pair(payer_extra={"channelAmount": 3 * UNITS, "settleDelay": 7200})
    connect(pair)
    a, b = pair.wallets
    chan = channel_of(pair.plugin, pair)
    assert (chan.account, chan.destination, chan.amount, chan.settle_delay) == \
        (a.classic_address, b.classic_address, 3 * XRP, 7200)
    assert chan.public_key == channel_key(a.seed, b.classic_address).public_key
    assert pair.peer.module.incoming["channelId"] == chan.index
    assert pair.plugin.module.incoming["channelId"] == pair.peer.module.outgoing["channelId"]
    assert len(pair.shared.ledger.channels_of(a.classic_address, None, True)) == 1


def test_claim_on_the_wire_is_the_js_transfer():
    """The claim is a BTP TRANSFER: amount = the increase, JSON {amount: cumulative units, signature} over
    CLM\\0 ‖ channel ‖ u64BE(drops rounded up)."""
    pair = make_pair()
    connect(pair)
    sent: list = []
    original = pair.plugin.send_transfer
    pair.plugin.send_transfer = lambda amount, entries: (sent.append((amount, entries)), original(amount, entries))[1]
    credits_of(pair.peer)
    paid(pair, 1500)
    paid(pair, 2500)
    (first, entries1), (second, entries2) = sent
    assert (first, second) == (1500, 2500)
    claim = json.loads(bytes(entries2[0].data))
    assert entries2[0].protocol_name == "claim" and entries2[0].content_type == 2
    assert set(claim) == {"amount", "signature"} and claim["amount"] == "4000"
    chan = channel_of(pair.plugin, pair)
    assert verify_claim(chan.public_key, chan.index, 4, claim["signature"])  # 4000 units at scale 9 = 4 drops
    assert not verify_claim(chan.public_key, chan.index, 3, claim["signature"])


def test_rounding_never_loses_or_creates_a_unit():
    """At scale 9, payments of 1, 999, 1001 and 7 units are credited exactly; each claim signs the drops of its
    total rounded up, so the best claim is worth ceil(total / 1000) drops, never more."""
    pair = make_pair()
    connect(pair)
    credited = credits_of(pair.peer)
    for amount in (1, 999, 1001, 7):
        paid(pair, amount)
    assert credited == [1, 999, 1001, 7]
    best = result_of(pair.peer.settlement.best_incoming_claim())
    assert best.value == 2008
    record = json.loads(best.data)
    chan = channel_of(pair.plugin, pair)
    assert verify_claim(chan.public_key, chan.index, 3, record["signature"])


def test_funds_the_channel_past_the_threshold_and_before_a_claim_above_it():
    """A claim past fundThreshold funds the channel in the background (doubling it); one above the channel funds it
    first; every claim is credited; the payee re-reads the amount."""
    pair = make_pair(payer_extra={"channelAmount": UNITS})
    connect(pair)
    credited = credits_of(pair.peer)
    paid(pair, 600_000_000)  # 0.6 XRP > 0.5 of 1 XRP
    pair.settle(1)
    assert channel_of(pair.plugin, pair).amount == 2 * XRP
    paid(pair, 3_000_000_000)  # total 3.6 XRP > 2 XRP: funded before signing
    assert channel_of(pair.plugin, pair).amount >= 3_600_000
    assert credited == [600_000_000, 3_000_000_000]


def _forge(pair, claim: dict, amount: int = 1):
    d = pair.plugin.send_transfer(amount, (protocol.claim_entry(json.dumps(claim)),))
    pair.settle()
    return failure_of(d)


def test_forged_claims_are_refused_credit_nothing_and_the_link_stays_up(warnings):
    """Wrong key, another channel's id, above the channel amount, lower than the last, malformed: each is refused
    (F00) with a warning naming why; nothing credited; honest claims before and after are credited."""
    pair = make_pair()
    connect(pair)
    credited = credits_of(pair.peer)
    paid(pair, 2 * 10 ** 6)
    a, b = pair.wallets
    chan = pair.plugin.module.outgoing["channelId"]
    key = pair.plugin.module.key
    wrong_key = channel_key(make_wallet().seed, b.classic_address)
    forgeries = {
        "does not verify": {"amount": "5000000", "signature": sign_claim(wrong_key, chan, 5)},
        "does not verify against": {"amount": "5000000", "signature": sign_claim(key, "AB" * 32, 5)},
        "above the channel's amount": {"amount": str(2 * UNITS), "signature": sign_claim(key, chan, 2 * XRP)},
        "lower than the last": {"amount": "1000000", "signature": sign_claim(key, chan, 1000)},
        "128 hex digits": {"amount": "5000000", "signature": "zz"},
    }
    for why, claim in forgeries.items():
        refused = _forge(pair, claim)
        assert "F00" in repr(refused.value) or "NotAccepted" in repr(refused.value), repr(refused.value)
        assert [line for line in warnings if why in line and "not accepted" in line], (why, warnings)
    assert credited == [2 * 10 ** 6]
    assert pair.plugin.is_connected() and pair.peer.is_connected()
    paid(pair, 5)
    assert credited == [2 * 10 ** 6, 5]


def test_a_resent_claim_is_acknowledged_and_credits_nothing():
    """The same claim again (a resend after a crash) gets an empty Response and credits nothing more."""
    pair = make_pair()
    connect(pair)
    credited = credits_of(pair.peer)
    paid(pair, 4000)
    best = result_of(pair.plugin.settlement.best_outgoing_claim())
    d = pair.plugin.send_transfer(4000, (protocol.claim_entry(best.data),))
    pair.settle()
    assert result_of(d) is None and credited == [4000]


def test_on_ledger_claim_moves_exactly_the_claimed_drops_when_fees_allow():
    """claimInterval: a claim whose fee is above maxFeePercent of the income waits; once worth it, the payee submits
    it and its balance rises by exactly the claimed drops less the fee; disconnect claims the rest."""
    pair = make_pair(payee_extra={"claimInterval": 1000})
    connect(pair)
    credits_of(pair.peer)
    b = pair.wallets[1].classic_address
    paid(pair, 500_000)  # 500 drops of income, the 10-drop fee is 2 %
    before = pair.shared.balance(b)
    pair.settle(1)
    assert pair.shared.balance(b) == before
    paid(pair, 999_500_001)  # total 1 XRP + 1 unit: claim of 1_000_001 drops
    pair.settle(1)
    chan = channel_of(pair.plugin, pair)
    assert chan.balance == 1_000_001
    assert pair.shared.balance(b) == before + 1_000_001 - 10
    paid(pair, 2999)  # total 1_000_003_000 units: 1_000_003 drops
    d = pair.peer.disconnect()
    pair.settle()
    result_of(d)
    assert channel_of(pair.plugin, pair).balance == 1_000_003
    assert pair.shared.balance(b) == before + 1_000_003 - 20


def test_watcher_claims_when_the_peer_starts_closing_its_channel():
    """The payer asks to close its channel (PaymentChannelClaim tfClose: an Expiration after SettleDelay); the
    payee's watcher sees it and claims the best claim at once."""
    pair = make_pair(payee_extra={"channelWatcherInterval": 1000, "claimInterval": 10 ** 9})
    connect(pair)
    credits_of(pair.peer)
    paid(pair, 7_000_000)
    close = PaymentChannelClaim(account=pair.wallets[0].classic_address, channel=pair.plugin.module.outgoing["channelId"],
                                flags=PaymentChannelClaimFlag.TF_CLOSE)
    result_of(pair.shared.client().submit_transaction(pair.wallets[0], close))
    assert channel_of(pair.plugin, pair).expiration is not None and channel_of(pair.plugin, pair).balance == 0
    pair.settle(1)
    assert channel_of(pair.plugin, pair).balance == 7000


def test_a_channel_the_peer_closed_is_replaced_and_nothing_is_lost(warnings):
    """The payee closes the payer's channel on the ledger (tfClose by the destination: it goes at once, paying the
    best claim); the payer's next payout creates a new channel and the payee links it: every unit credited once."""
    pair = make_pair()
    connect(pair)
    credited = credits_of(pair.peer)
    paid(pair, 2_500_000)
    old = pair.plugin.module.outgoing["channelId"]
    payee_closes(pair, old, 2500)
    paid(pair, 1_000_001)
    new = pair.plugin.module.outgoing["channelId"]
    assert new != old and pair.peer.module.incoming["channelId"] == new
    assert [line for line in warnings if "is closed; creating a new one" in line]
    assert credited == [2_500_000, 1_000_001]
    assert result_of(pair.peer.settlement.best_incoming_claim()).value == 3_500_001
    assert json.loads(result_of(pair.peer.settlement.best_incoming_claim()).data)["amount"] == "1000001"


def test_a_stored_channel_gone_at_start_up_is_replaced(warnings):
    """The payer's channel is closed while it is down (the payee claims it with tfClose); at its restart the stored
    channel no longer exists: a warning, a new channel, the next payout credited once (no start-up failure)."""
    store = MemoryStore()
    pair = make_pair(store=store)
    connect(pair)
    credited = credits_of(pair.peer)
    paid(pair, 3000)
    old = pair.plugin.module.outgoing["channelId"]
    d = pair.plugin.disconnect()
    pair.settle()
    result_of(d)
    payee_closes(pair, old, 3)
    again = restarted_payer(pair, store)
    d = again.send_money(4000)
    pair.settle(5)
    result_of(d)
    assert again.module.outgoing["channelId"] != old and pair.peer.module.incoming["channelId"] != old
    assert credited == [3000, 4000]
    assert [line for line in warnings if f"our channel {old} to the peer is closed" in line]


def test_currency_scale_mismatch_blocks_the_account(warnings):
    """A peer at another currencyScale: info says so, both accounts are blocked with an error naming both scales:
    nothing is paid, claims are refused."""
    pair = make_pair(payer_extra={"currencyScale": 6})
    connect(pair)
    pair.settle(10)
    assert pair.peer.module.blocked and "scale mismatch" in pair.peer.module.blocked
    assert pair.plugin.module.blocked and "ours is 6, the peer's is 9" in pair.plugin.module.blocked
    assert [line for line in warnings if "ours is 9, the peer's is 6" in line]
    credited = credits_of(pair.peer)
    d = pair.plugin.send_money(10)
    pair.settle()
    failure_of(d)
    assert credited == []


def test_ledger_down_at_start_is_logged_retried_and_pays_once_up(warnings):
    """The ledger is down when both start: connect works, the set-up fails with a warning and is retried; a payout
    waits queued; once the ledger is back the channels are made and it is paid once."""
    net = FakeNetwork()
    shared = SharedLedger(net.reactor)
    pair = make_pair(shared=shared)
    shared.down = True
    connect(pair)
    assert [line for line in warnings if "setting up the payment channels failed" in line and "down" in line]
    credited = credits_of(pair.peer)
    d = pair.plugin.send_money(1234, "k")
    pair.settle()
    failure_of(d)
    pair.settle(5)
    assert credited == [] and pair.plugin.module.outgoing is None
    shared.down = False
    for _ in range(4):
        pair.settle(30)
    assert credited == [1234]
    assert result_of(pair.plugin.send_money(1234, "k")) is None and credited == [1234]


def test_restart_after_create_before_store_adopts_the_channel():
    """A channel created on the ledger but not stored (kill -9 in between) is found with account_channels on the
    next start: no second channel."""
    store = MemoryStore()
    pair = make_pair(store=store)
    connect(pair)
    a = pair.wallets[0].classic_address
    d = pair.plugin.disconnect()
    pair.settle()
    result_of(d)
    result_of(store.delete(pair.plugin.settlement.key("outgoing-channel")))  # as if killed before the save
    credited = credits_of(pair.peer)
    again = restarted_payer(pair, store)
    d = again.send_money(77)
    pair.settle(5)
    result_of(d)
    assert credited == [77]
    assert len(pair.shared.ledger.channels_of(a, None, True)) == 1


def test_units_to_drops_rounds_up_and_scales_below_six_are_exact():
    """units_to_drops: ceil at scale > 6 (JS toFixed(6, ROUND_UP)), exact multiplication below."""
    assert [units_to_drops(u, 9) for u in (0, 1, 1000, 1001)] == [0, 1, 1, 2]
    assert units_to_drops(3, 2) == 30_000 and units_to_drops(5, 6) == 5
