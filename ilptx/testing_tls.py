"""Throw-away TLS certificates for tests, made with ``cryptography`` at test time.

::

    pki = make_test_pki(tmp_path)            # CA, server cert for localhost/127.0.0.1, client cert
    listener = {"port": 0, "host": "127.0.0.1", "secret": "s",
                "cert": pki.server_cert, "key": pki.server_key, "ca": pki.ca_cert}
    client = {"server": f"btp+wss://:s@localhost:{port}", "ca": pki.ca_cert,
              "cert": pki.client_cert, "key": pki.client_key}

    other = pki.issue("other", dns_names=["wrong.example"])   # more leaf certs from the same CA

Keys are EC P-256 (fast to make); certificates are valid from one hour ago for one day.
Never use these outside tests: the private keys sit unencrypted in the directory given.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCertificateAuthority", "TestPki", "IssuedCertificate", "make_test_pki"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@dataclass(frozen=True)
class IssuedCertificate:
    """PEM files of one certificate and its key (paths as ``str``, ready for plugin options)."""

    cert: str
    key: str


class TestCertificateAuthority:
    """A self-signed CA that issues leaf certificates into ``directory``.

    :param directory: where the PEM files go.
    :param name: the CA's common name, also the stem of ``<name>.pem``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "ilptx-test-ca") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.directory / f"{name}.pem"
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, dns_names: Iterable[str] = (), ip_addresses: Iterable[str] = (),
              client: bool = False) -> IssuedCertificate:
        """Issue a leaf certificate, written to ``<common_name>.pem`` / ``<common_name>-key.pem``.

        :param dns_names: subjectAltName DNS entries.
        :param ip_addresses: subjectAltName IP entries (text form).
        :param client: extended key usage clientAuth instead of serverAuth.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        san = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path = self.directory / f"{common_name}.pem"
        key_path = self.directory / f"{common_name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return IssuedCertificate(str(cert_path), str(key_path))


@dataclass(frozen=True)
class TestPki:
    """What :func:`make_test_pki` made: file paths as ``str``, and the CA for more."""

    __test__ = False

    authority: TestCertificateAuthority
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str

    def issue(self, common_name: str, dns_names: Iterable[str] = (), ip_addresses: Iterable[str] = (),
              client: bool = False) -> IssuedCertificate:
        """Issue another certificate from the same CA (see :meth:`TestCertificateAuthority.issue`)."""
        return self.authority.issue(common_name, dns_names, ip_addresses, client)


def make_test_pki(directory) -> TestPki:
    """Make a CA, a server certificate for ``DNS:localhost`` and ``IP:127.0.0.1``, and a client
    certificate, as PEM files in ``directory``."""
    ca = TestCertificateAuthority(Path(directory))
    server = ca.issue("server", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    client = ca.issue("client", dns_names=["client.test"], client=True)
    return TestPki(ca, str(ca.cert_path), server.cert, server.key, client.cert, client.key)
