"""Endpoint and TLS-settings construction (no sockets: MemoryReactorClock)."""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock

from ilptx.testing_tls import make_test_pki
from ilptx.transport.endpoints import (
    client_tls_options,
    connect_endpoint,
    listen_endpoint,
    load_certificates,
    server_tls_options,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_plain_listen_binds_interface_and_port():
    """Without TLS the listener is TCP on the given interface and port."""
    reactor = MemoryReactorClock()
    endpoint = listen_endpoint(reactor, 7768, "127.0.0.1")
    assert isinstance(endpoint, TCP4ServerEndpoint)
    endpoint.listen(Factory.forProtocol(Protocol))
    assert reactor.tcpServers[0][0] == 7768 and reactor.tcpServers[0][3] == "127.0.0.1"


def test_ipv6_interface_uses_tcp6():
    """An IPv6 interface address gets a TCP6 endpoint."""
    assert isinstance(listen_endpoint(MemoryReactorClock(), 0, "::1"), TCP6ServerEndpoint)


def test_tls_listen_uses_ssl_endpoint(pki):
    """With TLS options the listener is SSL on the given interface."""
    reactor = MemoryReactorClock()
    endpoint = listen_endpoint(reactor, 0, "127.0.0.1", server_tls_options(pki.server_cert, pki.server_key))
    assert isinstance(endpoint, SSL4ServerEndpoint)
    endpoint.listen(Factory.forProtocol(Protocol))
    assert reactor.sslServers[0][4] == "127.0.0.1"


def test_server_tls_without_ca_does_not_ask_for_client_certs(pki):
    """Without ca the server neither verifies nor requires client certificates."""
    options = server_tls_options(pki.server_cert, pki.server_key)
    assert not options.verify and not options.requireCertificate


def test_server_tls_with_ca_requires_client_certs(pki):
    """With ca the server verifies and requires client certificates."""
    options = server_tls_options(pki.server_cert, pki.server_key, pki.ca_cert)
    assert options.verify and options.requireCertificate


def test_certificate_file_may_hold_a_chain(pki, tmp_path):
    """A cert file with leaf + intermediate sends the intermediate as extra chain."""
    chain = tmp_path / "chain.pem"
    chain.write_bytes(open(pki.server_cert, "rb").read() + open(pki.ca_cert, "rb").read())
    assert len(load_certificates(str(chain))) == 2
    options = server_tls_options(str(chain), pki.server_key)
    assert len(options.extraCertChain) == 1


def test_file_without_certificates_is_refused(tmp_path):
    """A PEM file with no certificate raises ValueError naming the file."""
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError, match="empty.pem"):
        load_certificates(str(empty))


def test_client_cert_needs_key(pki):
    """A client certificate without its key is refused."""
    with pytest.raises(ValueError):
        client_tls_options("localhost", pki.ca_cert, pki.client_cert, None)


def test_tls_connect_wraps_hostname_endpoint(pki):
    """A TLS client endpoint dials TCP to the host and port (TLS runs over that connection)."""
    reactor = MemoryReactorClock()
    endpoint = connect_endpoint(reactor, "127.0.0.1", 7443, client_tls_options("127.0.0.1", pki.ca_cert))
    endpoint.connect(Factory.forProtocol(Protocol))
    assert reactor.tcpClients[0][:2] == ("127.0.0.1", 7443)
