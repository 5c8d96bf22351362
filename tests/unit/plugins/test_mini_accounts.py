"""MiniAccountsPlugin on fake WebSocket protocols (sans-IO) and on iosim memory transports."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface.verify import verifyObject

from ilptx.codec.btp import (
    CONTENT_OCTET_STREAM,
    Error,
    Message,
    ProtocolDataEntry,
    Response,
    Transfer,
    auth_message,
    decode_frame,
    encode_frame,
    find_entry,
)
from ilptx.codec.ildcp import PEER_PROTOCOL_CONDITION, IldcpResponse, request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.errors import (
    ConfigError,
    InsufficientLiquidityError,
    InvalidPacketError,
    PeerUnreachableError,
    UnreachableError,
)
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.btp import BtpPlugin
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager
from ilptx.plugins.mini_accounts import (
    MiniAccountsPlugin,
    mini_accounts_factory,
    parse_options,
    token_key,
    token_to_account,
)
from ilptx.transport.btp_ws import BtpClientFactory

ACCT = "test.conn.mini"
FULFILLMENT = b"\x07" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()
#: printed by ilp-plugin-mini-accounts 4.2.0's own code path in node:
#: BtpPacket.base64url(crypto.createHash('sha256').update('sometoken').digest())
JS_SOMETOKEN_ACCOUNT = "nJKFR6Xc4vzCeI3jT-FjlC9k5Q_qVw0zd0gi1erL8ew"


def result_of(d):
    results = []
    d.addBoth(results.append)
    assert results, "expected the Deferred to have fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def failure_of(d):
    failures = []
    d.addErrback(failures.append)
    assert failures, "expected the Deferred to have failed"
    return failures[0]


class DictStore:
    """The IStore key/value methods over a dict; ``hold`` makes ``get`` wait for ``release``."""

    def __init__(self):
        self.data = {}
        self.hold = False
        self.held = []

    def get(self, key):
        if self.hold:
            d = Deferred()
            self.held.append((d, key))
            return d
        return succeed(self.data.get(key))

    def put(self, key, value):
        self.data[key] = value
        return succeed(None)

    def delete(self, key):
        self.data.pop(key, None)
        return succeed(None)

    def release(self):
        held, self.held = self.held, []
        for d, key in held:
            d.callback(self.data.get(key))


class FakeWs:
    """A fake BtpServerProtocol: records frames sent, closes synchronously."""

    count = 0

    def __init__(self, plugin):
        FakeWs.count += 1
        self.peer = f"tcp4:127.0.0.1:{40000 + FakeWs.count}"
        self.frames = []
        self.closed = None
        self.conn = plugin._ws_open(self)

    def send_frame(self, data):
        self.frames.append(decode_frame(data))

    def close_connection(self, code=1000, reason=None):
        if self.closed is None:
            self.closed = (code, reason)
            self.conn.connection_lost(None)

    def receive(self, frame):
        self.conn.data_received(encode_frame(frame))

    def login(self, username, token, rid=1):
        self.receive(auth_message(rid, token, username))
        return self.frames[-1] if self.frames else None

    def send_ilp(self, data, rid):
        """Send an ILP packet as a BTP Message; :returns: the ilp entry of our Response."""
        self.receive(Message(rid, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, data),)))
        answer = self.frames[-1]
        assert answer.request_id == rid
        if isinstance(answer, Error):
            return answer
        return find_entry(answer.protocol_data, "ilp").data

    def answer_last(self, data):
        """Answer the last Message we were sent with an ilp Response."""
        rid = self.frames[-1].request_id
        self.receive(Response(rid, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, data),)))


def expiry(reactor, seconds=30):
    return datetime.fromtimestamp(int(reactor.seconds() + seconds), timezone.utc)


def prepare(reactor, destination, amount=10, seconds=30):
    return encode_packet(Prepare(amount, expiry(reactor, seconds), CONDITION, destination, b"hi"))


def make_plugin(options=None, store=None, address=ACCT, connect=True, plugin_class=None, **extra):
    reactor = MemoryReactorClock()
    reactor.advance(1_700_000_000)
    events = []
    opts = {"listener": {"port": 7000, "host": "127.0.0.1"}, **(options or {})}
    plugin = (plugin_class or MiniAccountsPlugin)(opts, account_id="mini", reactor=reactor,
                                log=Logger(namespace="t", observer=events.append), store=store, **extra)
    if address is not None:
        plugin.set_account_address(address, "XRP", 6)
    if connect:
        result_of(plugin.connect())
    plugin.events = events
    return plugin, reactor


# -- registration and options -------------------------------------------------------------

def test_registered_under_both_names():
    """The built-in hook offers mini_accounts_factory as 'mini-accounts' and 'ilp-plugin-mini-accounts'."""
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    assert factories["mini-accounts"] is mini_accounts_factory
    assert factories["ilp-plugin-mini-accounts"] is mini_accounts_factory


def test_provides_ledger_plugin_interface():
    """A MiniAccountsPlugin instance fully provides ILedgerPlugin."""
    plugin, _ = make_plugin(connect=False)
    assert verifyObject(ILedgerPlugin, plugin)


def test_option_defaults_follow_the_reference():
    """No options: port 3000 on every interface, no origins, no client limits, 35 s responses."""
    o = parse_options({})
    assert (o.listener.port, o.listener.host) == (3000, "0.0.0.0")
    assert o.allowed_origins == () and o.generate_account is None
    assert (o.client_minimum, o.client_maximum) == (None, None)
    assert o.response_timeout == 35.0
    assert parse_options({"port": 1234}).listener.port == 1234
    o = parse_options({"clientBalance": {"minimum": "-100", "maximum": "Infinity"}})
    assert (o.client_minimum, o.client_maximum) == (-100, None)


@pytest.mark.parametrize("options, key", [
    ({"listener": {"port": 70000}}, "accounts.a.options.listener.port"),
    ({"listener": {"port": 1}, "port": 2}, "accounts.a.options.port"),
    ({"listener": {"port": 1, "cert": "c.pem"}}, "accounts.a.options.listener.key"),
    ({"allowedOrigins": "x"}, "accounts.a.options.allowedOrigins"),
    ({"allowedOrigins": ["("]}, "accounts.a.options.allowedOrigins"),
    ({"clientBalance": {"maximum": 5}}, "accounts.a.options.clientBalance.maximum"),
    ({"clientBalance": {"maximum": "x"}}, "accounts.a.options.clientBalance.maximum"),
    ({"clientBalance": {"minimum": "10", "maximum": "5"}}, "accounts.a.options.clientBalance.minimum"),
    ({"generateAccount": "yes"}, "accounts.a.options.generateAccount"),
    ({"debugHostIldcpInfo": {"clientAddress": "nope", "assetScale": 2, "assetCode": "X"}},
     "accounts.a.options.debugHostIldcpInfo.clientAddress"),
    ({"maxUnsentBytes": -5}, "accounts.a.options.maxUnsentBytes"),
])
def test_bad_options_raise_config_error_naming_the_key(options, key):
    """Invalid options stop construction with a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        MiniAccountsPlugin(options, account_id="a", reactor=MemoryReactorClock())
    assert info.value.key == key


def test_max_unsent_bytes_reaches_the_listener():
    """maxUnsentBytes (default 4 MiB) is the WebSocket factory's cap, logged under the account."""
    assert parse_options({}).max_unsent_bytes == 4 << 20
    plugin, reactor = make_plugin({"maxUnsentBytes": 777})
    factory = reactor.tcpServers[0][1]
    assert (factory.max_unsent_bytes, factory.account_id) == (777, "mini")


def test_token_hash_matches_the_javascript_plugin():
    """base64url(sha256(token)) without padding, pinned to the value node printed for 'sometoken'."""
    assert token_to_account(b"sometoken") == JS_SOMETOKEN_ACCOUNT


# -- logins -------------------------------------------------------------------------------

def test_first_login_registers_the_hashed_token():
    """The first login of a username is accepted and stores sha256(token), never the token."""
    store = DictStore()
    plugin, _ = make_plugin(store=store)
    ws = FakeWs(plugin)
    answer = ws.login("alice", "secret-a")
    assert answer == Response(1)
    assert store.data == {token_key("mini", "alice"): token_to_account(b"secret-a")}
    assert "secret-a" not in repr(store.data)
    assert plugin.clients() == ["alice"]


def test_second_login_with_another_token_is_refused():
    """A later login of a registered username with another token gets BTP Error F00 and is closed."""
    plugin, _ = make_plugin(store=DictStore())
    FakeWs(plugin).login("alice", "secret-a")
    intruder = FakeWs(plugin)
    answer = intruder.login("alice", "guess", rid=7)
    assert isinstance(answer, Error) and answer.request_id == 7
    assert (answer.code, answer.name) == ("F00", "NotAcceptedError")
    assert b"incorrect token for account" in answer.data and b"guess" not in answer.data
    assert intruder.closed is not None
    assert plugin.clients() == ["alice"] and len(plugin._clients["alice"]) == 1


def test_a_wrong_token_slows_that_name_on_that_host_only():
    """After a wrong token for alice, alice's next login waits 0.1 s; bob from the same host gets in at once."""
    plugin, reactor = make_plugin(store=DictStore())
    FakeWs(plugin).login("alice", "secret-a")
    FakeWs(plugin).login("alice", "guess")
    alice = FakeWs(plugin)
    assert alice.login("alice", "secret-a") is None
    assert FakeWs(plugin).login("bob", "secret-b") == Response(1)
    reactor.advance(0.1)
    assert alice.frames == [Response(1)] and len(plugin._clients["alice"]) == 2


def test_same_token_may_open_several_connections():
    """The right token logs in again; the client then has two connections."""
    plugin, _ = make_plugin()
    FakeWs(plugin).login("alice", "secret-a")
    assert FakeWs(plugin).login("alice", "secret-a") == Response(1)
    assert len(plugin._clients["alice"]) == 2


def test_concurrent_first_logins_register_once():
    """Two first logins of one name racing on a slow store: the first registers, the second is refused."""
    store = DictStore()
    store.hold = True
    plugin, _ = make_plugin(store=store)
    a, b = FakeWs(plugin), FakeWs(plugin)
    a.login("alice", "one")
    b.login("alice", "two")
    store.release()  # a's check runs; b's waits on the lock, then reads the registered hash
    store.release()
    assert a.frames == [Response(1)]
    assert isinstance(b.frames[-1], Error) and b.closed is not None


def test_empty_username_is_the_token_hash():
    """No auth_username: the client is base64url(sha256(token)), and IL-DCP says so."""
    plugin, reactor = make_plugin()
    ws = FakeWs(plugin)
    assert ws.login("", "sometoken") == Response(1)
    assert plugin.clients() == [JS_SOMETOKEN_ACCOUNT]
    reply = ws.send_ilp(encode_packet(request_prepare(expiry(reactor))), 2)
    info = IldcpResponse.decode(decode_response(reply).data)
    assert info.client_address == f"{ACCT}.{JS_SOMETOKEN_ACCOUNT}"


def test_malformed_auth_gets_the_reference_wording():
    """A first frame that is not the auth Message is refused with the reference's text."""
    plugin, _ = make_plugin()
    ws = FakeWs(plugin)
    ws.receive(Message(3, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, b""),
                           ProtocolDataEntry("auth_token", CONTENT_OCTET_STREAM, b"t"))))
    assert isinstance(ws.frames[-1], Error) and ws.frames[-1].data == b"First subprotocol must be auth"
    assert ws.closed is not None and plugin.clients() == []


def test_username_must_be_an_address_segment():
    """A username that cannot be an ILP address segment is refused."""
    plugin, _ = make_plugin()
    ws = FakeWs(plugin)
    assert isinstance(ws.login("al.ice", "t"), Error) and ws.closed is not None


@pytest.mark.parametrize("mode, username, accepted", [
    (True, "", True), (True, "alice", False), (True, JS_SOMETOKEN_ACCOUNT, True),
    (False, "", False), (False, "alice", True),
])
def test_generate_account_modes(mode, username, accepted):
    """generateAccount true: the hash only; false: auth_username required (as the reference)."""
    plugin, _ = make_plugin({"generateAccount": mode})
    answer = FakeWs(plugin).login(username, "sometoken")
    assert (answer == Response(1)) is accepted


def test_unauthenticated_connection_is_closed_after_auth_timeout():
    """A connection that sends nothing is closed after authTimeout."""
    plugin, reactor = make_plugin({"authTimeout": 1000})
    ws = FakeWs(plugin)
    reactor.advance(0.9)
    assert ws.closed is None
    reactor.advance(0.2)
    assert ws.closed is not None


# -- IL-DCP and incoming packets ----------------------------------------------------------

def test_ildcp_answers_each_client_with_its_own_address():
    """peer.config from a client is answered by the plugin: its address, the account's asset."""
    plugin, reactor = make_plugin()
    seen = []
    plugin.register_data_handler(seen.append)
    for name in ("alice", "bob"):
        ws = FakeWs(plugin)
        ws.login(name, "t-" + name)
        reply = decode_response(ws.send_ilp(encode_packet(request_prepare(expiry(reactor))), 5))
        assert isinstance(reply, Fulfill) and reply.fulfillment == bytes(32)
        assert IldcpResponse.decode(reply.data) == IldcpResponse(f"{ACCT}.{name}", 6, "XRP")
    assert seen == []  # never reached the connector


def test_ildcp_with_a_wrong_condition_is_rejected():
    """An IL-DCP request without the peer-protocol condition gets F00, as ILDCP.serve answers."""
    plugin, reactor = make_plugin()
    ws = FakeWs(plugin)
    ws.login("alice", "t")
    reply = decode_response(ws.send_ilp(prepare(reactor, "peer.config", amount=0), 2))
    assert isinstance(reply, Reject) and reply.code == "F00" and reply.triggered_by == ACCT


def test_incoming_prepare_goes_to_the_single_data_handler():
    """Prepares from any client reach the one data handler; its answer goes back to the client."""
    plugin, reactor = make_plugin()
    got = []
    fulfill = encode_packet(Fulfill(FULFILLMENT, b""))
    plugin.register_data_handler(lambda data: got.append(data) or fulfill)
    for name in ("alice", "bob"):
        ws = FakeWs(plugin)
        ws.login(name, "t")
        assert ws.send_ilp(prepare(reactor, "test.elsewhere.x"), 9) == fulfill
    assert len(got) == 2
    assert plugin.client_balance("alice").balance == 10 and plugin.client_balance("bob").balance == 10


def test_no_data_handler_gives_btp_error():
    """Without a data handler a client's Prepare gets BTP Error F00."""
    plugin, reactor = make_plugin()
    ws = FakeWs(plugin)
    ws.login("alice", "t")
    answer = ws.send_ilp(prepare(reactor, "test.elsewhere.x"), 9)
    assert isinstance(answer, Error) and answer.code == "F00"


def test_client_maximum_gives_t04_and_spares_other_clients():
    """A client over clientBalance.maximum gets T04; another client still has its own room."""
    plugin, reactor = make_plugin({"clientBalance": {"maximum": "15"}})
    fulfill = encode_packet(Fulfill(FULFILLMENT, b""))
    plugin.register_data_handler(lambda data: fulfill)
    alice, bob = FakeWs(plugin), FakeWs(plugin)
    alice.login("alice", "a")
    bob.login("bob", "b")
    assert alice.send_ilp(prepare(reactor, "test.x", amount=10), 2) == fulfill
    reject = decode_response(alice.send_ilp(prepare(reactor, "test.x", amount=10), 3))
    assert isinstance(reject, Reject) and reject.code == "T04"
    assert reject.message == "exceeded maximum balance." and reject.triggered_by == ACCT
    assert bob.send_ilp(prepare(reactor, "test.x", amount=10), 4) == fulfill
    assert plugin.client_balance("alice").balance == 10


def test_incoming_reject_releases_the_reservation():
    """A Reject from the connector releases the client's reservation; pending amounts count."""
    plugin, reactor = make_plugin({"clientBalance": {"maximum": "15"}})
    pending = Deferred()
    plugin.register_data_handler(lambda data: pending)
    ws = FakeWs(plugin)
    ws.login("alice", "a")
    ws.receive(Message(2, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, prepare(reactor, "test.x")),)))
    assert plugin.client_balance("alice").incoming_reserved == 10
    reject = decode_response(ws.send_ilp(prepare(reactor, "test.x", amount=10), 3))
    assert reject.code == "T04"  # 0 + 10 reserved + 10 > 15
    pending.callback(encode_packet(Reject("F99", "test.x", "no", b"")))
    assert plugin.client_balance("alice") == plugin.client_balance("nobody")


def test_unverified_transfer_from_client_is_f00_and_moves_no_money():
    """A BTP Transfer from a client gets F00 (the reference's message); no handler call, no balance change."""
    plugin, _ = make_plugin()
    paid = []
    plugin.register_money_handler(paid.append)
    ws = FakeWs(plugin)
    ws.login("alice", "a")
    ws.receive(Transfer(4, 2**64 - 1))
    error = ws.frames[-1]
    assert (error.request_id, error.code, error.name) == (4, "F00", "NotAcceptedError")
    assert b"No sendMoney functionality is included in this module" in error.data
    assert paid == [] and plugin.client_balance("alice").balance == 0


def test_verified_transfer_from_client_lowers_its_balance():
    """The verified amount reaches the handler and lowers the client's balance; past its minimum, loudly."""
    class Settling(MiniAccountsPlugin):
        def verify_transfer(self, client, transfer):
            return 25 if client == "alice" else 0

    plugin, _ = make_plugin({"clientBalance": {"minimum": "-30", "maximum": "100"}}, plugin_class=Settling)
    paid = []
    plugin.register_money_handler(paid.append)
    ws = FakeWs(plugin)
    ws.login("alice", "a")
    ws.receive(Transfer(4, 1000))
    assert ws.frames[-1] == Response(4) and paid == [25]
    assert plugin.client_balance("alice").balance == -25
    assert [e for e in plugin.events if e["log_level"] is LogLevel.error] == []
    ws.receive(Transfer(5, 1000))
    assert plugin.client_balance("alice").balance == -50  # below clientBalance.minimum -30: kept, loudly
    (error,) = [e for e in plugin.events if e["log_level"] is LogLevel.error]
    assert (error["client"], error["amount"], error["balance"], error["minimum"]) == ("alice", 25, -50, -30)


def test_send_money_does_nothing():
    """send_money is a no-op that succeeds, as the reference's empty sendMoney."""
    plugin, _ = make_plugin()
    assert result_of(plugin.send_money(10)) is None


# -- outgoing packets ---------------------------------------------------------------------

def logged_in(plugin, *names):
    out = {}
    for name in names:
        ws = FakeWs(plugin)
        assert ws.login(name, "t-" + name) == Response(1)
        out[name] = ws
    return out


def test_outgoing_prepare_goes_to_the_client_on_a_segment_boundary():
    """acct.alicebob.x goes to alicebob, acct.alice and acct.alice.y to alice."""
    plugin, reactor = make_plugin()
    ws = logged_in(plugin, "alice", "alicebob")
    fulfill = encode_packet(Fulfill(FULFILLMENT, b""))
    for destination, name in ((f"{ACCT}.alicebob.x", "alicebob"), (f"{ACCT}.alice.y", "alice"),
                              (f"{ACCT}.alice", "alice")):
        before = {n: len(w.frames) for n, w in ws.items()}
        d = plugin.send_data(prepare(reactor, destination))
        for n, w in ws.items():
            assert len(w.frames) == before[n] + (n == name), destination
        ws[name].answer_last(fulfill)
        assert result_of(d) == fulfill
    assert plugin.client_balance("alice").balance == -20
    assert plugin.client_balance("alicebob").balance == -10


def test_unknown_client_is_t01_and_foreign_destination_f02():
    """No such client: PeerUnreachableError (T01); not under the account: UnreachableError (F02)."""
    plugin, reactor = make_plugin()
    logged_in(plugin, "alice")
    assert failure_of(plugin.send_data(prepare(reactor, f"{ACCT}.carol"))).check(PeerUnreachableError)
    assert failure_of(plugin.send_data(prepare(reactor, f"{ACCT}x.alice"))).check(UnreachableError)
    assert failure_of(plugin.send_data(b"\x0e\x00")).check(InvalidPacketError)


def test_client_gone_is_t01():
    """After the client's only connection closed, packets to it fail with T01; in flight too."""
    plugin, reactor = make_plugin()
    ws = logged_in(plugin, "alice")["alice"]
    d = plugin.send_data(prepare(reactor, f"{ACCT}.alice"))
    ws.close_connection()
    assert failure_of(d).check(PeerUnreachableError)
    assert plugin.clients() == []
    assert failure_of(plugin.send_data(prepare(reactor, f"{ACCT}.alice"))).check(PeerUnreachableError)
    assert plugin.client_balance("alice").outgoing_reserved == 0


def test_client_minimum_gives_t04():
    """A Prepare that would take a client under clientBalance.minimum errbacks with T04."""
    plugin, reactor = make_plugin({"clientBalance": {"minimum": "-15"}})
    ws = logged_in(plugin, "alice")["alice"]
    d = plugin.send_data(prepare(reactor, f"{ACCT}.alice"))
    second = plugin.send_data(prepare(reactor, f"{ACCT}.alice"))
    assert failure_of(second).check(InsufficientLiquidityError)
    ws.answer_last(encode_packet(Fulfill(FULFILLMENT)))
    result_of(d)
    assert plugin.client_balance("alice").balance == -10


def test_wrong_or_cancelled_fulfill_is_not_committed():
    """A wrong Fulfill is relayed as is (validateFulfillment makes it F05); neither it nor a cancel moves a balance."""
    plugin, reactor = make_plugin()
    ws = logged_in(plugin, "alice")["alice"]
    d = plugin.send_data(prepare(reactor, f"{ACCT}.alice"))
    ws.answer_last(encode_packet(Fulfill(b"\x00" * 32)))
    assert decode_response(result_of(d)) == Fulfill(b"\x00" * 32)
    d = plugin.send_data(prepare(reactor, f"{ACCT}.alice", seconds=5))
    d.cancel()  # what the expire middleware does at the expiry
    ws.answer_last(encode_packet(Fulfill(FULFILLMENT)))
    assert failure_of(d).check(CancelledError)
    assert plugin.client_balance("alice") == plugin.client_balance("nobody")


def test_outgoing_ildcp_is_answered_with_the_account_info():
    """A peer.config Prepare sent to the plugin gets the account's own IL-DCP answer."""
    plugin, reactor = make_plugin()
    reply = decode_response(result_of(plugin.send_data(encode_packet(request_prepare(expiry(reactor))))))
    assert IldcpResponse.decode(reply.data) == IldcpResponse(ACCT, 6, "XRP")


# -- life cycle ---------------------------------------------------------------------------

def test_connected_while_listening():
    """is_connected and the connection listeners follow listening, not clients."""
    plugin, _ = make_plugin(connect=False)
    states = []
    plugin.add_connection_listener(states.append)
    assert not plugin.is_connected()
    result_of(plugin.connect())
    assert plugin.is_connected() and states == [True]
    ws = logged_in(plugin, "alice")["alice"]
    result_of(plugin.disconnect())
    assert not plugin.is_connected() and states == [True, False]
    assert ws.closed is not None and plugin.clients() == []


def test_connect_fetches_ildcp_through_the_data_handler():
    """Without set_account_address, connect() asks the connector by IL-DCP, as the reference."""
    plugin, reactor = make_plugin(address=None, connect=False)
    asked = []

    def handler(data):
        asked.append(data)
        return encode_packet(Fulfill(bytes(32), IldcpResponse("test.parent.kid", 3, "EUR").encode()))

    plugin.register_data_handler(handler)
    result_of(plugin.connect())
    assert plugin.account_address == "test.parent.kid"
    assert (plugin.asset_code, plugin.asset_scale) == ("EUR", 3)
    assert len(asked) == 1 and PEER_PROTOCOL_CONDITION in asked[0]


def test_connect_without_address_or_handler_fails():
    """No address and no data handler: connect() errbacks ('no request handler registered')."""
    plugin, _ = make_plugin(address=None, connect=False)
    assert "no request handler" in str(failure_of(plugin.connect()).value)
    assert not plugin.is_connected()


def test_debug_host_ildcp_info_sets_the_address():
    """debugHostIldcpInfo gives the account's address and asset without asking anyone."""
    plugin, _ = make_plugin({"debugHostIldcpInfo": {"clientAddress": "test.dbg", "assetScale": 2,
                                                    "assetCode": "USD"}}, address=None)
    assert plugin.account_address == "test.dbg" and plugin.is_connected()


# -- origins, over iosim ------------------------------------------------------------------

def test_origin_allow_list_matches_like_regexp_test():
    """allowedOrigins are regular expressions searched in the Origin, like RegExp.test."""
    plugin, _ = make_plugin({"allowedOrigins": [r"^https://wallet\.example$", "localhost"]}, connect=False)
    assert plugin.origin_allowed("https://wallet.example")
    assert plugin.origin_allowed("http://localhost:8080")
    assert not plugin.origin_allowed("https://evil.example")


def _handshake(plugin, reactor, origin):
    """Open a WebSocket to the plugin's listener over iosim; :returns: (opened, failed) lists."""
    opened, failed = [], []

    class Session:
        def data_received(self, data):
            pass

        def connection_lost(self, reason):
            pass

    factory = BtpClientFactory("ws://127.0.0.1:7000/", reactor=reactor,
                               on_open=lambda p: opened.append(p) or Session(),
                               on_failed=lambda p, r: failed.append(r))
    if origin is not None:
        factory.origin = origin
    server_factory = reactor.tcpServers[-1][1]
    caddr, saddr = IPv4Address("TCP", "127.0.0.1", 50001), IPv4Address("TCP", "127.0.0.1", 7000)
    cp, sp = factory.buildProtocol(saddr), server_factory.buildProtocol(caddr)
    pump = iosim.connect(sp, iosim.FakeTransport(sp, True, saddr, caddr),
                         cp, iosim.FakeTransport(cp, False, caddr, saddr), greet=False)
    for _ in range(5):
        pump.flush()
    return opened, failed


@pytest.mark.parametrize("origin, ok", [
    (None, True), ("https://wallet.example", True), ("https://evil.example", False)])
def test_websocket_handshake_from_other_origins_is_refused(origin, ok):
    """A browser handshake from an origin not allowed fails (HTTP 403); no Origin is fine."""
    plugin, reactor = make_plugin({"allowedOrigins": [r"^https://wallet\.example$"]})
    opened, failed = _handshake(plugin, reactor, origin)
    assert bool(opened) is ok and bool(failed) is (not ok)


def test_btp_plugin_clients_over_memory_transport():
    """Two of our BtpPlugin clients log in over iosim; a packet goes alice → handler → bob."""
    plugin, reactor = make_plugin()

    def handler(data):
        return plugin.send_data(prepare(reactor, f"{ACCT}.bob"))

    plugin.register_data_handler(handler)
    clients, pumps = {}, []
    for i, name in enumerate(("alice", "bob")):
        c = BtpPlugin({"server": f"btp+ws://{name}:tok-{name}@127.0.0.1:7000/"},
                      account_id=name, reactor=reactor)
        clients[name] = c
        ready = c.connect()
        host, port, cf, _t, _b = reactor.tcpClients[-1]
        caddr, saddr = IPv4Address("TCP", "127.0.0.1", 50010 + i), IPv4Address("TCP", host, port)
        cp, sp = cf.buildProtocol(saddr), reactor.tcpServers[-1][1].buildProtocol(caddr)
        pumps.append(iosim.connect(sp, iosim.FakeTransport(sp, True, saddr, caddr),
                                   cp, iosim.FakeTransport(cp, False, caddr, saddr), greet=False))
        for _ in range(5):
            for p in pumps:
                p.flush()
        result_of(ready)
    clients["bob"].register_data_handler(lambda data: encode_packet(Fulfill(FULFILLMENT, b"to-bob")))
    d = clients["alice"].send_data(prepare(reactor, "test.elsewhere.y"))
    for _ in range(6):
        for p in pumps:
            p.flush()
    assert decode_response(result_of(d)) == Fulfill(FULFILLMENT, b"to-bob")
    assert plugin.client_balance("alice").balance == 10 and plugin.client_balance("bob").balance == -10
