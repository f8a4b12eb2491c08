"""Throw-away certificate authorities for TLS tests, made with `cryptography`.

A test makes a CA, issues a server certificate for 127.0.0.1/localhost, gives the server the certificate and key and
gives the client the CA certificate to trust. A second CA, never used to issue the server's certificate, is what a
client trusts in the "certificate not trusted → refused" tests. ECDSA P-256 keys: made in microseconds, unlike RSA.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertAuthority", "IssuedCert", "make_ca"]

_VALIDITY = datetime.timedelta(days=2)
_BACKDATE = datetime.timedelta(hours=1)  # tolerates a client clock slightly behind


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)


@dataclass(frozen=True)
class CertAuthority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_cert(self, path: Path) -> Path:
        path.write_bytes(self.cert_pem)
        return path

    def issue_server(self, dns_names: tuple[str, ...] = ("localhost",),
                     addresses: tuple[str, ...] = ("127.0.0.1", "::1")) -> IssuedCert:
        """A server certificate whose subjectAltName names the loopback host, signed by this CA."""
        return self._issue(dns_names[0], dns_names, addresses, ExtendedKeyUsageOID.SERVER_AUTH)

    def issue_client(self, common_name: str, dns_names: tuple[str, ...] = (),
                     addresses: tuple[str, ...] = ()) -> IssuedCert:
        """A client certificate (RadSec clients, RFC 6614: TLS client authentication), signed by this CA."""
        return self._issue(common_name, dns_names, addresses, ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, common_name: str, dns_names: tuple[str, ...], addresses: tuple[str, ...],
               usage: x509.ObjectIdentifier) -> IssuedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # present, as clients that insist on one check it (OpenVPN's `remote-cert-tls server`)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def make_ca(name: str) -> CertAuthority:
    """A self-signed CA certificate valid for two days, with the extensions strict verifiers (Python 3.13) ask for."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otp-server tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertAuthority(name, key, cert)
