"""Listening and connecting endpoints for BTP over WebSocket, plain or TLS.

Everything takes the reactor as an argument (never the global one). TLS material is read
from PEM files when the endpoint is built:

* server (``wss``): :func:`server_tls_options` — our certificate (a file may hold the leaf
  followed by its intermediates) and key; with ``ca`` every client must present a
  certificate issued by one of the CA certificates in that file (mutual TLS).
* client (``btp+wss``): :func:`client_tls_options` — verifies the server's certificate and
  that it names the host we dial (DNS name or IP address, via ``service_identity``), against
  the platform's trust store or, with ``ca``, against that file only; presents a client
  certificate when ``cert`` and ``key`` are given.

TLS 1.2 is the lowest version offered.
"""

from __future__ import annotations

import re
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet import ssl
from twisted.internet.abstract import isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint

__all__ = [
    "load_certificates",
    "server_tls_options",
    "client_tls_options",
    "listen_endpoint",
    "connect_endpoint",
]

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def load_certificates(path: str) -> list[ssl.Certificate]:
    """:returns: every certificate in the PEM file ``path``, in file order.
    :raises ValueError: the file holds none."""
    blocks = _PEM_CERT.findall(_read(path))
    if not blocks:
        raise ValueError(f"{path}: no PEM certificate found")
    return [ssl.Certificate.loadPEM(block) for block in blocks]


def _load_chain(path: str) -> list[x509.Certificate]:
    # ``cryptography`` objects: pyOpenSSL deprecates its own X509/PKey for contexts
    chain = x509.load_pem_x509_certificates(_read(path))
    if not chain:  # pragma: no cover - cryptography raises first
        raise ValueError(f"{path}: no PEM certificate found")
    return chain


def _load_key(path: str):
    return load_pem_private_key(_read(path), password=None)


def server_tls_options(cert: str, key: str, ca: Optional[str] = None) -> ssl.CertificateOptions:
    """TLS settings of a ``wss`` listener.

    :param cert: PEM file: our certificate, then any intermediates.
    :param key: PEM file: its private key.
    :param ca: PEM file of CA certificates; when given, clients must present a certificate
        they issued (the handshake fails otherwise).
    """
    chain = _load_chain(cert)
    kwargs = {}
    if ca is not None:
        kwargs["trustRoot"] = ssl.trustRootFromCertificates(load_certificates(ca))
    else:
        kwargs["requireCertificate"] = False
    return ssl.CertificateOptions(
        privateKey=_load_key(key),
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        **kwargs,
    )


def client_tls_options(hostname: str, ca: Optional[str] = None, cert: Optional[str] = None,
                       key: Optional[str] = None):
    """TLS settings for dialling ``wss://hostname``.

    :param hostname: the name (or IP address) the server's certificate must carry.
    :param ca: PEM file of the CA certificates to trust instead of the platform's.
    :param cert: PEM file of our client certificate (needs ``key``).
    :param key: PEM file of its private key.
    :returns: an ``IOpenSSLClientConnectionCreator``.
    """
    trust = ssl.trustRootFromCertificates(load_certificates(ca)) if ca is not None else None
    extra = {"raiseMinimumTo": ssl.TLSVersion.TLSv1_2}
    if cert is not None:
        if key is None:
            raise ValueError("a client certificate needs its key")
        # what optionsForClientTLS(clientCertificate=...) would set, as cryptography objects
        chain = _load_chain(cert)
        extra.update(privateKey=_load_key(key), certificate=chain[0], extraCertChain=chain[1:])
    return ssl.optionsForClientTLS(hostname, trustRoot=trust, extraCertificateOptions=extra)


def listen_endpoint(reactor, port: int, host: str = "0.0.0.0", tls=None) -> IStreamServerEndpoint:
    """A TCP (or, with ``tls`` from :func:`server_tls_options`, TLS) server endpoint.

    :param port: TCP port; 0 picks a free one (read it from the listening port's
        ``getHost().port``).
    :param host: interface address; ``"0.0.0.0"`` all IPv4, ``"::"`` all IPv6 (and IPv4
        where the OS maps it).
    """
    if tls is not None:
        return SSL4ServerEndpoint(reactor, port, tls, interface=host)
    if isIPv6Address(host):
        return TCP6ServerEndpoint(reactor, port, interface=host)
    return TCP4ServerEndpoint(reactor, port, interface=host)


def connect_endpoint(reactor, host: str, port: int, tls=None, timeout: float = 30) -> IStreamClientEndpoint:
    """A client endpoint to ``host:port`` (name resolved by the reactor), wrapped in TLS
    when ``tls`` (from :func:`client_tls_options`) is given.

    :param timeout: seconds for the TCP connection attempt.
    """
    endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if tls is not None:
        return wrapClientTLS(tls, endpoint)
    return endpoint
