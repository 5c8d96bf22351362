"""BtpPlugin end to end on in-memory transports: MemoryReactorClock + twisted.test.iosim."""

from __future__ import annotations

import json

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface.verify import verifyObject

from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.btp import (
    REPLACED_REASON,
    BtpAuthError,
    BtpPlugin,
    BtpRemoteError,
    BtpTimeoutError,
    ReconnectPolicy,
    btp_factory,
    parse_options,
)
from ilptx.plugins.manager import ledger_plugin_factories, make_plugin_manager

SERVER_OPTIONS = {"listener": {"port": 7768, "host": "127.0.0.1", "secret": "tok"}}
CLIENT_OPTIONS = {"server": "btp+ws://alice:tok@localhost:7768/"}


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


class Net:
    """One MemoryReactorClock shared by plugins, with a helper to complete a client's dial."""

    def __init__(self):
        self.reactor = MemoryReactorClock()
        self.pumps = []
        self.events = []

    def plugin(self, options, account_id):
        log = Logger(namespace="test", observer=self.events.append)
        return BtpPlugin(options, account_id=account_id, reactor=self.reactor, log=log)

    def accept(self, attempt=-1):
        """Complete the client's connection attempt ``attempt`` to the (only) server and flush."""
        host, port, client_factory, _timeout, _bind = self.reactor.tcpClients[attempt]
        server_factory = self.reactor.tcpServers[0][1]
        n = len(self.pumps)
        client_addr = IPv4Address("TCP", "127.0.0.1", 50000 + n)
        server_addr = IPv4Address("TCP", host, port)
        cp = client_factory.buildProtocol(server_addr)
        sp = server_factory.buildProtocol(client_addr)
        ct = iosim.FakeTransport(cp, isServer=False, hostAddress=client_addr, peerAddress=server_addr)
        st = iosim.FakeTransport(sp, isServer=True, hostAddress=server_addr, peerAddress=client_addr)
        pump = iosim.connect(sp, st, cp, ct, greet=False)
        self.pumps.append(pump)
        self.flush()
        return pump

    def refuse(self, attempt=-1):
        """Fail the client's connection attempt ``attempt`` with ConnectionRefusedError.

        HostnameEndpoint reports the failure once its 0.3 s attempt delay shows that no other
        address is left, so 0.3 s of fake time pass here.
        """
        factory = self.reactor.tcpClients[attempt][2]
        factory.clientConnectionFailed(self.reactor.connectors[attempt], Failure(ConnectionRefusedError()))
        self.reactor.advance(0.3)

    def flush(self):
        for _ in range(3):
            for pump in self.pumps:
                pump.flush()


def connected_pair(server_options=SERVER_OPTIONS, client_options=CLIENT_OPTIONS):
    net = Net()
    server = net.plugin(server_options, "bob")
    client = net.plugin(client_options, "alice")
    server_states, client_states = [], []
    server.add_connection_listener(server_states.append)
    client.add_connection_listener(client_states.append)
    result_of(server.connect())
    ready = client.connect()
    pump = net.accept()
    assert result_of(ready) is None
    return net, server, client, pump, server_states, client_states


# -- registration and options -------------------------------------------------------------

def test_registered_as_btp_and_ilp_plugin_btp():
    """The built-in hook offers btp_factory under 'btp' and the reference's 'ilp-plugin-btp'."""
    factories = ledger_plugin_factories(make_plugin_manager(load_entry_points=False))
    assert factories["btp"] is btp_factory and factories["ilp-plugin-btp"] is btp_factory


def test_provides_ledger_plugin_interface():
    """A BtpPlugin instance fully provides ILedgerPlugin."""
    assert verifyObject(ILedgerPlugin, BtpPlugin(SERVER_OPTIONS, account_id="a", reactor=Clock()))


@pytest.mark.parametrize("options, key", [
    ({}, "accounts.a.options"),
    ({**SERVER_OPTIONS, **CLIENT_OPTIONS}, "accounts.a.options"),
    ({"listener": {"port": 1}}, "accounts.a.options.listener.secret"),
    ({"listener": {"port": 70000, "secret": "s"}}, "accounts.a.options.listener.port"),
    ({"listener": {"port": 1, "secret": "s", "cert": "c.pem"}}, "accounts.a.options.listener.key"),
    ({"listener": {"port": 1, "secret": "s", "ca": "ca.pem"}}, "accounts.a.options.listener.ca"),
    ({"server": "ws://host:1"}, "accounts.a.options.server"),
    ({"server": "btp+http://host:1"}, "accounts.a.options.server"),
    ({"server": "btp+ws://a:t@host:1", "btpToken": "t"}, "accounts.a.options.server"),
    ({"server": "btp+ws://host:1", "responseTimeout": -1}, "accounts.a.options.responseTimeout"),
    ({"server": "btp+ws://host:1", "reconnectIntervals": []}, "accounts.a.options.reconnectIntervals"),
    ({"server": "btp+ws://host:1", "maxUnsentBytes": -1}, "accounts.a.options.maxUnsentBytes"),
    ({"server": "btp+ws://host:1", "maxUnsentBytes": "4MB"}, "accounts.a.options.maxUnsentBytes"),
])
def test_bad_options_raise_config_error_naming_the_key(options, key):
    """Invalid options stop construction with a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        BtpPlugin(options, account_id="a", reactor=Clock())
    assert info.value.key == key


def test_option_defaults_follow_the_reference():
    """Defaults: bind all interfaces, 35 s responses, reconnect 0/100/500/1000/2000/5000 ms, 10 s reset."""
    o = parse_options({"listener": {"port": 0, "secret": "s"}})
    assert o.listener.host == "0.0.0.0" and o.listener.secret == b"s"
    assert o.response_timeout == 35.0
    assert o.reconnect_intervals == (0, 0.1, 0.5, 1.0, 2.0, 5.0) and o.reconnect_clear_try_timeout == 10.0
    assert (o.ping_interval, o.ping_timeout) == (10.0, 10.0)


def test_max_unsent_bytes_defaults_to_4_mib_and_reaches_the_listener():
    """maxUnsentBytes (default 4 MiB) is the WebSocket factory's cap for stuck peers, logged under the account."""
    assert parse_options({"listener": {"port": 0, "secret": "s"}}).max_unsent_bytes == 4 << 20
    reactor = MemoryReactorClock()
    plugin = BtpPlugin({**SERVER_OPTIONS, "maxUnsentBytes": 12345}, account_id="a", reactor=reactor)
    plugin.connect()
    factory = reactor.tcpServers[0][1]
    assert (factory.max_unsent_bytes, factory.account_id) == (12345, "a")


def test_server_url_is_taken_apart():
    """btp+ws(s) URLs give the ws(s) URL without credentials, host, default port, account and token."""
    t = parse_options({"server": "btp+wss://alice:t%40k@example.com/path"}).server
    assert (t.ws_url, t.host, t.port, t.secure, t.account, t.token) == (
        "wss://example.com/path", "example.com", 443, True, "alice", "t%40k")
    t = parse_options({"server": "btp+ws://h:8080", "btpAccount": "x", "btpToken": "y"}).server
    assert (t.ws_url, t.port, t.secure, t.account, t.token) == ("ws://h:8080", 8080, False, "x", "y")


def test_auth_flags_become_extra_auth_entries():
    """btpAuthFlags: strings are text entries, other values JSON."""
    o = parse_options({"server": "btp+ws://h:1", "btpAuthFlags": {"a": "b", "n": {"k": 1}}})
    assert [(e.protocol_name, e.content_type, e.data) for e in o.auth_flags] == [
        ("a", 1, b"b"), ("n", 2, b'{"k":1}')]


# -- connecting ---------------------------------------------------------------------------

def test_server_listens_on_host_and_port():
    """connect() in server mode binds the configured interface/port and exposes listening_port."""
    net = Net()
    server = net.plugin(SERVER_OPTIONS, "bob")
    assert server.listening_port is None
    result_of(server.connect())
    port, _factory, _backlog, interface = net.reactor.tcpServers[0]
    assert (port, interface) == (7768, "127.0.0.1")
    assert server.listening_port is not None and server.port == server.listening_port.getHost().port
    assert not server.is_connected()


def test_missing_tls_file_fails_connect():
    """A listener whose cert file does not exist errbacks connect() and does not listen."""
    net = Net()
    server = net.plugin({"listener": {"port": 0, "secret": "s", "cert": "/nonexistent/c.pem",
                                      "key": "/nonexistent/k.pem"}}, "bob")
    assert failure_of(server.connect()).check(OSError)
    assert net.reactor.sslServers == [] and net.reactor.tcpServers == []


def test_connect_called_twice_fires_both():
    """Two connect() calls before the first authentication both fire once it succeeds; later calls succeed at once."""
    net = Net()
    server = net.plugin(SERVER_OPTIONS, "bob")
    result_of(server.connect())
    client = net.plugin(CLIENT_OPTIONS, "alice")
    first, second = client.connect(), client.connect()
    assert not first.called and not second.called
    net.accept()
    assert result_of(first) is None and result_of(second) is None
    assert result_of(client.connect()) is None
    assert len(net.reactor.tcpClients) == 1


def test_client_connects_and_authenticates():
    """A client's connect() fires after the server accepted its auth; both sides report True."""
    net, server, client, pump, server_states, client_states = connected_pair()
    assert server.is_connected() and client.is_connected()
    assert server_states == [True] and client_states == [True]
    assert net.reactor.tcpClients[0][:2] == ("127.0.0.1", 7768)


def test_send_data_round_trip_both_ways():
    """send_data returns the peer data handler's reply, in both directions."""
    net, server, client, pump, *_ = connected_pair()
    server.register_data_handler(lambda data: b"fulfill:" + data)
    client.register_data_handler(lambda data: succeed(b"reject:" + data))
    d1 = client.send_data(b"prepare-1")
    d2 = server.send_data(b"prepare-2")
    net.flush()
    assert result_of(d1) == b"fulfill:prepare-1" and result_of(d2) == b"reject:prepare-2"


def test_plain_btp_refuses_a_transfer_with_f00_and_moves_no_money():
    """A Transfer to a plain BtpPlugin gets the reference's F00; its money handler is never called."""
    net, server, client, pump, *_ = connected_pair()
    amounts = []
    server.register_money_handler(amounts.append)
    d = client.send_money(2**64 - 1)
    net.flush()
    error = failure_of(d).value
    assert isinstance(error, BtpRemoteError) and amounts == []
    assert (error.btp_error.code, error.btp_error.name) == ("F00", "NotAcceptedError")
    assert json.loads(error.btp_error.data) == {"message": "No sendMoney functionality is included in this module"}


def test_settling_subclass_credits_only_what_it_verified():
    """A subclass overriding verify_transfer sees the Transfer; its verified amount reaches the money handler."""
    class Settling(BtpPlugin):
        def verify_transfer(self, transfer):
            self.seen = transfer
            return succeed(transfer.amount - 45)

    net = Net()
    server = Settling(SERVER_OPTIONS, account_id="bob", reactor=net.reactor)
    client = net.plugin(CLIENT_OPTIONS, "alice")
    result_of(server.connect())
    ready = client.connect()
    net.accept()
    result_of(ready)
    amounts = []
    server.register_money_handler(amounts.append)
    d = client.send_money(12345)
    net.flush()
    assert result_of(d) is None and amounts == [12300] and server.seen.amount == 12345


def test_send_money_rejects_bad_amounts():
    """send_money refuses zero, negative and non-integer amounts."""
    net, server, client, pump, *_ = connected_pair()
    for amount in (0, -1, 1.5, True, 2**64):
        assert failure_of(client.send_money(amount)).check(ValueError)


def test_send_data_when_not_connected_fails_t01_at_once():
    """Before any connection send_data errbacks with PeerUnreachableError (T01) immediately."""
    net = Net()
    server = net.plugin(SERVER_OPTIONS, "bob")
    result_of(server.connect())
    f = failure_of(server.send_data(b"prepare"))
    assert f.check(PeerUnreachableError) and f.value.code == "T01"


def test_peer_error_surfaces_as_btp_remote_error():
    """A peer with no data handler answers with a BTP Error; send_data errbacks BtpRemoteError (F02)."""
    net, server, client, pump, *_ = connected_pair()
    d = client.send_data(b"prepare")
    net.flush()
    f = failure_of(d)
    assert f.check(BtpRemoteError) and f.value.code == "F02"
    assert f.value.btp_error.code == "F00" and "no request handler registered" in f.value.message


def test_response_timeout_option_is_milliseconds():
    """responseTimeout (ms) bounds the wait: 1000 ms → errback after exactly 1 s of fake time."""
    net, server, client, pump, *_ = connected_pair(client_options={**CLIENT_OPTIONS, "responseTimeout": 1000})
    server.register_data_handler(lambda data: Deferred())  # never answers
    d = client.send_data(b"prepare")
    net.flush()
    net.reactor.advance(0.999)
    assert not d.called
    net.reactor.advance(0.001)
    assert failure_of(d).check(BtpTimeoutError)


def test_cancelling_send_data_forgets_the_request():
    """Cancelling the send_data Deferred errbacks CancelledError and leaves nothing pending."""
    net, server, client, pump, *_ = connected_pair()
    server.register_data_handler(lambda data: Deferred())
    d = client.send_data(b"prepare")
    d.cancel()
    assert failure_of(d).check(CancelledError)
    assert client._session.pending_count == 0


def test_newer_connection_replaces_older():
    """A second authenticated client replaces the first: the first is closed, the server stays connected."""
    net, server, client1, pump1, server_states, client1_states = connected_pair()
    client2 = net.plugin(CLIENT_OPTIONS, "alice-2")
    ready = client2.connect()
    net.accept()
    assert result_of(ready) is None
    net.flush()
    assert client2.is_connected() and server.is_connected()
    assert not client1.is_connected() and client1_states == [True, False]
    assert server_states == [True]  # no False/True blip while replacing
    server.register_data_handler(lambda data: b"via-2")
    d = client2.send_data(b"x")
    net.flush()
    assert result_of(d) == b"via-2"


def test_replaced_connection_gets_close_reason():
    """The older connection is closed with the reference's 'new connection' text as reason."""
    net, server, client1, pump1, *_ = connected_pair()
    old_protocol = pump1.server
    client2 = net.plugin(CLIENT_OPTIONS, "alice-2")
    client2.connect()
    net.accept()
    assert old_protocol.localCloseReason == REPLACED_REASON.encode()


def test_wrong_token_fails_connect_and_stops():
    """A refused first authentication errbacks connect() with BtpAuthError and stops dialling."""
    net = Net()
    server = net.plugin(SERVER_OPTIONS, "bob")
    result_of(server.connect())
    client = net.plugin({"server": "btp+ws://alice:wrong@localhost:7768"}, "alice")
    ready = client.connect()
    net.accept()
    f = failure_of(ready)
    assert f.check(BtpAuthError) and "invalid auth_token" in str(f.value)
    net.reactor.advance(60)
    assert len(net.reactor.tcpClients) == 1 and not client.is_connected() and not server.is_connected()


def test_lost_connection_reports_false_and_reconnects():
    """A dropped connection reports False, the client redials at once and re-authenticates."""
    net, server, client, pump, server_states, client_states = connected_pair()
    pump.clientIO.abortConnection()
    net.flush()
    assert client_states == [True, False] and server_states == [True, False]
    assert not client.is_connected() and not server.is_connected()
    net.reactor.advance(0)  # first reconnect interval: 0 ms
    assert len(net.reactor.tcpClients) == 2
    net.accept()
    assert client_states == [True, False, True] and server_states == [True, False, True]


def test_reconnect_backoff_schedule():
    """Failed attempts are retried after 0, 100, 500, 1000, 2000, 5000, 5000 ms."""
    net = Net()
    client = net.plugin(CLIENT_OPTIONS, "alice")
    client.connect()
    for expected_delay in (0, 0.1, 0.5, 1.0, 2.0, 5.0, 5.0):
        attempts = len(net.reactor.tcpClients)
        net.refuse()
        if expected_delay:
            net.reactor.advance(expected_delay - 0.001)
            assert len(net.reactor.tcpClients) == attempts
            net.reactor.advance(0.001)
        else:
            net.reactor.advance(0)
        assert len(net.reactor.tcpClients) == attempts + 1


def test_failed_attempts_are_logged_with_the_account():
    """A refused attempt is logged (warn) with the account and the failure; the token is never logged."""
    net = Net()
    client = net.plugin({"server": "btp+ws://alice:supersecret@localhost:7768"}, "alice")
    client.connect()
    net.refuse()
    failed = [e for e in net.events if "cannot connect" in e["log_format"]]
    assert failed and failed[0]["account"] == "alice" and failed[0]["reason"].check(ConnectionRefusedError)
    assert all("supersecret" not in repr(e) for e in net.events)


def test_reconnect_policy_resets_after_clear_try_timeout():
    """The schedule restarts from 0 ms once 10 s pass without a failure."""
    clock = Clock()
    policy = ReconnectPolicy((0, 0.1, 0.5), 10.0, clock)
    assert [policy(n) for n in (1, 2, 3, 4)] == [0, 0.1, 0.5, 0.5]
    clock.advance(9.9)
    assert policy(5) == 0.5
    clock.advance(10)
    assert policy(6) == 0


def test_disconnect_fails_pending_and_closes():
    """disconnect() fails requests in flight with T01, reports False, closes and stops listening."""
    net, server, client, pump, server_states, client_states = connected_pair()
    server.register_data_handler(lambda data: Deferred())
    d = client.send_data(b"prepare")
    net.flush()
    done = client.disconnect()
    assert failure_of(d).check(PeerUnreachableError)
    assert client_states == [True, False]
    net.flush()
    assert result_of(done) is None
    assert server_states == [True, False]
    stopped = server.disconnect()
    assert result_of(stopped) is None and server.listening_port is None
    net.reactor.advance(60)
    assert len(net.reactor.tcpClients) == 1  # no redial after disconnect


def test_disconnect_before_connected_fails_connect():
    """disconnect() while a client is still dialling errbacks the pending connect()."""
    net = Net()
    client = net.plugin(CLIENT_OPTIONS, "alice")
    ready = client.connect()
    result_of(client.disconnect())
    assert failure_of(ready).check(PeerUnreachableError)


def test_registering_twice_raises():
    """A second data or money handler is refused with RuntimeError."""
    plugin = BtpPlugin(SERVER_OPTIONS, account_id="a", reactor=Clock())
    plugin.register_data_handler(lambda d: b"")
    plugin.register_money_handler(lambda a: None)
    with pytest.raises(RuntimeError):
        plugin.register_data_handler(lambda d: b"")
    with pytest.raises(RuntimeError):
        plugin.register_money_handler(lambda a: None)
    plugin.deregister_data_handler()
    plugin.register_data_handler(lambda d: b"")


def test_failing_connection_listener_does_not_stop_the_others():
    """A listener that raises is logged; the listeners after it are still told."""
    net = Net()
    server = net.plugin(SERVER_OPTIONS, "bob")
    told = []
    server.add_connection_listener(lambda state: 1 / 0)
    server.add_connection_listener(told.append)
    result_of(server.connect())
    client = net.plugin(CLIENT_OPTIONS, "alice")
    client.connect()
    net.accept()
    assert told == [True]
    assert any(e.get("log_failure") and e["log_failure"].check(ZeroDivisionError) for e in net.events)


def test_every_log_event_names_the_account():
    """Every event the plugin logs during a session carries its account id."""
    net, server, client, pump, *_ = connected_pair()
    pump.clientIO.abortConnection()
    net.flush()
    mine = [e for e in net.events if e.get("log_namespace") == "test"]
    assert mine and all(e.get("account") in ("alice", "bob") for e in mine)
