"""The lab's certificate authority and the TLS certificates of its HMC endpoints.

A REST client checks the HMC's certificate against a CA it trusts: lpmlab makes one CA per lab
(``<lab>/ca/lpmlab-ca.pem``, the file clients are pointed at) and, for each HMC, a server
certificate naming its host name and address. Both are made once and kept; a certificate is
made again when what it must name changed or it is near its end.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "lpmlab-ca.pem"
CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers and most TLS stacks still accept for a server certificate
RENEW_DAYS = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load(cert: Path, key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        k = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return (c, k) if isinstance(k, ec.EllipticCurvePrivateKey) else None


def _fresh(cert: x509.Certificate) -> bool:
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > dt.timedelta(days=RENEW_DAYS)


def ensure_ca(folder: Path, lab: str) -> Certificate:
    """The lab's CA (``lpmlab-ca.pem``, ``lpmlab-ca.key``), made once."""
    ca = Certificate(folder / CA_FILE, folder / "lpmlab-ca.key")
    kept = _load(ca.cert, ca.key)
    if kept is not None and _fresh(kept[0]):
        return ca
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lpmlab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"lpmlab lab CA ({lab})")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(ca.key, _pem_key(key))
    ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.cert.chmod(0o644)
    return ca


def _names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return (set(san.get_values_for_type(x509.DNSName)),
            {str(a) for a in san.get_values_for_type(x509.IPAddress)})


def server_files(folder: Path) -> Certificate:
    """Where an HMC endpoint's certificate and key are kept in its folder."""
    return Certificate(folder / "cert.pem", folder / "key.pem")


def ensure_server_cert(ca: Certificate, folder: Path, hostname: str,
                       addresses: list[str]) -> Certificate:
    """The certificate of an HMC endpoint (``cert.pem``, ``key.pem``), signed by the lab's
    CA, naming ``hostname`` and ``addresses``; kept while it still names them, is signed by
    this CA and is not near its end."""
    out = server_files(folder)
    ca_kept = _load(ca.cert, ca.key)
    if ca_kept is None:
        raise ValueError(f"the lab CA at {ca.cert} cannot be read")
    ca_cert, ca_key = ca_kept
    kept = _load(out.cert, out.key)
    if (kept is not None and _fresh(kept[0]) and kept[0].issuer == ca_cert.subject
            and _names(kept[0]) == ({hostname}, set(addresses))):
        return out
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = [x509.DNSName(hostname), *(x509.IPAddress(ipaddress.ip_address(a))
                                     for a in addresses)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lpmlab"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(out.key, _pem_key(key))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out
