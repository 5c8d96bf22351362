"""BTP over real TLS sockets on 127.0.0.1 (real reactor, pytest-twisted), certificates made at test time."""

from __future__ import annotations

import pytest
import pytest_twisted
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger

from ilptx.plugins.btp import BtpAuthError, BtpPlugin
from ilptx.testing_tls import make_test_pki

pytestmark = pytest.mark.integration

SECRET = "correct horse"
TIMEOUT = 15  # seconds; only ever reached when something is broken


class Events:
    """A log observer that can wait for an event matching a predicate."""

    def __init__(self):
        self.events, self._waiters = [], []

    def __call__(self, event):
        self.events.append(event)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(event):
                self._waiters.remove(waiter)
                d.callback(event)

    def wait_for(self, predicate) -> Deferred:
        for event in self.events:
            if predicate(event):
                return succeed(event)
        d = Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(TIMEOUT, reactor)


def failed_before_open(event):
    return "ended before the WebSocket opened" in event.get("log_format", "")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def plugins():
    """Makes plugins on the real reactor; disconnects them all at teardown."""
    made = []

    def make(options, account_id, events=None):
        log = Logger(namespace=f"test.{account_id}", observer=events) if events is not None else None
        plugin = BtpPlugin(options, account_id=account_id, reactor=reactor, log=log)
        made.append(plugin)
        return plugin

    yield make
    pytest_twisted.blockon(gatherResults([p.disconnect() for p in made]))


@pytest_twisted.inlineCallbacks
def start_server(plugins, pki, **listener):
    server = plugins({"listener": {"port": 0, "host": "127.0.0.1", "secret": SECRET,
                                   "cert": pki.server_cert, "key": pki.server_key, **listener}}, "server")
    yield server.connect()
    return server


def client_options(port, pki, token=SECRET, host="localhost", **extra):
    return {"server": f"btp+wss://alice:{token}@{host}:{port}", "ca": pki.ca_cert, **extra}


@pytest_twisted.inlineCallbacks
def test_wss_round_trip(plugins, pki):
    """A client dialling btp+wss://localhost authenticates and ILP data flows both ways."""
    server = yield start_server(plugins, pki)
    client = plugins(client_options(server.port, pki), "alice")
    server.register_data_handler(lambda data: b"fulfill:" + data)
    client.register_data_handler(lambda data: b"reject:" + data)
    yield client.connect().addTimeout(TIMEOUT, reactor)
    assert client.is_connected()
    assert (yield client.send_data(b"prepare-1")) == b"fulfill:prepare-1"
    assert (yield server.send_data(b"prepare-2")) == b"reject:prepare-2"


@pytest_twisted.inlineCallbacks
def test_wrong_token_is_refused(plugins, pki):
    """A client with the wrong token gets connect() failed with BtpAuthError."""
    server = yield start_server(plugins, pki)
    client = plugins(client_options(server.port, pki, token="wrong"), "mallory")
    with pytest.raises(BtpAuthError, match="invalid auth_token"):
        yield client.connect().addTimeout(TIMEOUT, reactor)
    assert not server.is_connected()


@pytest_twisted.inlineCallbacks
def test_client_certificate_required_when_ca_set(plugins, pki):
    """With listener.ca a client without a certificate fails in TLS; one with a certificate connects."""
    server = yield start_server(plugins, pki, ca=pki.ca_cert)
    events = Events()
    anonymous = plugins(client_options(server.port, pki), "anonymous", events)
    ready = anonymous.connect()
    ready.addErrback(lambda f: None)  # fails when the fixture disconnects it
    event = yield events.wait_for(failed_before_open)
    assert event["reason"].check(SSL.Error)
    assert not anonymous.is_connected() and not server.is_connected()

    client = plugins(client_options(server.port, pki, cert=pki.client_cert, key=pki.client_key), "alice")
    server.register_data_handler(lambda data: b"ok")
    yield client.connect().addTimeout(TIMEOUT, reactor)
    assert (yield client.send_data(b"prepare")) == b"ok"


@pytest_twisted.inlineCallbacks
def test_certificate_for_another_host_fails_verification(plugins, pki):
    """A server whose certificate does not name 'localhost' fails the client's hostname check."""
    other = pki.issue("wrong-host", dns_names=["wrong.example"])
    server = plugins({"listener": {"port": 0, "host": "127.0.0.1", "secret": SECRET,
                                   "cert": other.cert, "key": other.key}}, "server")
    yield server.connect()
    events = Events()
    client = plugins(client_options(server.port, pki), "alice", events)
    client.connect().addErrback(lambda f: None)
    event = yield events.wait_for(failed_before_open)
    assert event["reason"].check(VerificationError)
    assert not client.is_connected() and not server.is_connected()


@pytest_twisted.inlineCallbacks
def test_untrusted_server_fails_verification(plugins, pki, tmp_path):
    """A client trusting another CA refuses the server's certificate."""
    server = yield start_server(plugins, pki)
    stranger = make_test_pki(tmp_path / "stranger")
    events = Events()
    client = plugins({"server": f"btp+wss://alice:{SECRET}@localhost:{server.port}", "ca": stranger.ca_cert},
                     "alice", events)
    client.connect().addErrback(lambda f: None)
    event = yield events.wait_for(failed_before_open)
    assert event["reason"].check(SSL.Error)
    assert not server.is_connected()
