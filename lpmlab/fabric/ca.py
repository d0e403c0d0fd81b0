"""The lab's certificate authority and the TLS certificates signed by it.

A REST client checks the HMC's certificate against a CA it trusts: lpmlab makes one CA per lab
(``<lab>/ca/lpmlab-ca.pem``, the file clients are pointed at) and, for each HMC, a server
certificate naming its host name and address. Each frame's libvirtd gets libvirt's PKI tree
(CA, server and client certificate: frames connect to each other over ``qemu+tls://`` for
peer-to-peer migration). Everything is made once and kept; a certificate is made again when
what it must name changed or it is near its end.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lpmlab.atomic import replace_file

CA_FILE = "lpmlab-ca.pem"
CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers and most TLS stacks still accept for a server certificate
RENEW_DAYS = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the start (a key is never readable by others, not
    even for a moment); unchanged content is left alone."""
    if path.exists() and path.read_bytes() == data and path.stat().st_mode & 0o777 == mode:
        return
    replace_file(path, data, mode)


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
    _write(ca.key, _pem_key(key), 0o600)
    _write(ca.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
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


def _issue(ca: Certificate, out: Certificate, subject: x509.Name, hostname: str,
           addresses: list[str], usages: list[x509.ObjectIdentifier]) -> Certificate:
    """A leaf certificate signed by ``ca``, kept while it still says the same things, is
    signed by this CA and is not near its end. No keyUsage extension: libvirt 11.3 refuses
    an EC leaf whose critical keyUsage lacks keyEncipherment, and an absent one allows all."""
    ca_kept = _load(ca.cert, ca.key)
    if ca_kept is None:
        raise ValueError(f"the lab CA at {ca.cert} cannot be read")
    ca_cert, ca_key = ca_kept
    kept = _load(out.cert, out.key)
    if (kept is not None and _fresh(kept[0]) and kept[0].issuer == ca_cert.subject
            and kept[0].subject == subject and _names(kept[0]) == ({hostname}, set(addresses))
            and _usages(kept[0]) == set(usages)):
        return out
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = [x509.DNSName(hostname), *(x509.IPAddress(ipaddress.ip_address(a))
                                     for a in addresses)]
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(out.key, _pem_key(key), 0o600)
    _write(out.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return out


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def _subject(unit: str | None, name: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lpmlab")]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, name)])


def ensure_server_cert(ca: Certificate, folder: Path, hostname: str,
                       addresses: list[str]) -> Certificate:
    """The certificate of an HMC endpoint (``cert.pem``, ``key.pem``), signed by the lab's
    CA, naming ``hostname`` and ``addresses``."""
    return _issue(ca, server_files(folder), _subject(None, hostname), hostname, addresses,
                  [ExtendedKeyUsageOID.SERVER_AUTH])


# libvirt's own PKI layout (docs/kbase/tlscerts.rst), relative to /etc/pki on a frame host.
LIBVIRT_CACERT = "CA/cacert.pem"
LIBVIRT_SERVERCERT = "libvirt/servercert.pem"
LIBVIRT_SERVERKEY = "libvirt/private/serverkey.pem"
LIBVIRT_CLIENTCERT = "libvirt/clientcert.pem"
LIBVIRT_CLIENTKEY = "libvirt/private/clientkey.pem"
# Who may talk to a frame's libvirtd (tls_allowed_dn_list, matched against the DN as
# virt-pki-query-dn prints it): other frames and the controller, not the HMC endpoints the
# same CA signs.
FRAME_UNIT = "frame"
CONTROLLER_UNIT = "controller"
LIBVIRT_ALLOWED_DNS = (f"O=lpmlab,OU={FRAME_UNIT},CN=*", f"O=lpmlab,OU={CONTROLLER_UNIT},CN=*")


def ensure_frame_pki(ca: Certificate, folder: Path, frame: str,
                     addresses: list[str]) -> Path:
    """A frame's libvirt PKI tree (what goes to /etc/pki): the lab CA, and one certificate
    naming the frame and its addresses that serves both as its libvirtd's server
    certificate and as its client certificate when it connects to a peer for a
    peer-to-peer migration. Returns ``folder``."""
    cert = _issue(ca, Certificate(folder / LIBVIRT_SERVERCERT, folder / LIBVIRT_SERVERKEY),
                  _subject(FRAME_UNIT, frame), frame, addresses,
                  [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    _write(folder / LIBVIRT_CACERT, ca.cert.read_bytes(), 0o644)
    _write(folder / LIBVIRT_CLIENTCERT, cert.cert.read_bytes(), 0o644)
    _write(folder / LIBVIRT_CLIENTKEY, cert.key.read_bytes(), 0o600)
    (folder / "libvirt" / "private").chmod(0o700)
    return folder


def ensure_controller_pki(ca: Certificate, folder: Path) -> Path:
    """The controller's client identity for ``qemu+tls://...?pkipath=folder``: libvirt reads
    ``cacert.pem``, ``clientcert.pem`` and ``clientkey.pem`` from that one folder."""
    _issue(ca, Certificate(folder / "clientcert.pem", folder / "clientkey.pem"),
           _subject(CONTROLLER_UNIT, "lpmlab-controller"), "lpmlab-controller", [],
           [ExtendedKeyUsageOID.CLIENT_AUTH])
    _write(folder / "cacert.pem", ca.cert.read_bytes(), 0o644)
    folder.chmod(0o700)
    return folder

