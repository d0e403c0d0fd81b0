"""The lab CA, an HMC's server certificate and the frames' libvirt TLS identities, checked
by real TLS handshakes and by libvirt's own tools."""

from __future__ import annotations

import fnmatch
import socket
import ssl
import subprocess
import threading

import pytest

from lpmlab.fabric import ca


def handshake(cert: ca.Certificate, cafile: str, server_hostname: str,
              client: ca.Certificate | None = None) -> str:
    """``client``: the server then asks for a client certificate signed by ``cafile``, as
    libvirtd does."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.cert, cert.key)
    if client is not None:
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(cafile)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cafile=cafile)
    if client is not None:
        client_ctx.load_cert_chain(client.cert, client.key)
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.recv(2).decode()
    finally:
        listener.close()
        t.join(5)


def test_a_client_trusting_the_lab_ca_accepts_the_hmc_by_address_and_name(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    cert = ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1", ["127.0.0.1"])
    assert handshake(cert, str(authority.cert), "127.0.0.1") == "ok"
    assert handshake(cert, str(authority.cert), "hmc1") == "ok"
    assert oct(cert.key.stat().st_mode & 0o777) == "0o600"


def test_a_client_refuses_another_name_or_another_ca(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    cert = ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1", ["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(cert, str(authority.cert), "hmc2")
    other = ca.ensure_ca(tmp_path / "other", "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(cert, str(other.cert), "127.0.0.1")


def test_made_once_and_made_again_when_the_address_changes(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    first = ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1", ["127.0.0.1"])
    pem = first.cert.read_bytes()
    assert ca.ensure_ca(tmp_path / "ca", "default").cert.read_bytes() == \
        authority.cert.read_bytes()
    assert ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1",
                                 ["127.0.0.1"]).cert.read_bytes() == pem
    moved = ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1", ["127.0.0.2"])
    assert moved.cert.read_bytes() != pem


def frame_identity(tree) -> tuple[ca.Certificate, ca.Certificate]:
    return (ca.Certificate(tree / ca.LIBVIRT_SERVERCERT, tree / ca.LIBVIRT_SERVERKEY),
            ca.Certificate(tree / ca.LIBVIRT_CLIENTCERT, tree / ca.LIBVIRT_CLIENTKEY))


def test_a_frame_gets_libvirts_pki_layout_with_private_keys_kept_private(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    tree = ca.ensure_frame_pki(authority, tmp_path / "sys1" / "pki", "sys1", ["198.18.0.11"])
    assert (tree / ca.LIBVIRT_CACERT).read_bytes() == authority.cert.read_bytes()
    for key in (ca.LIBVIRT_SERVERKEY, ca.LIBVIRT_CLIENTKEY):
        assert oct((tree / key).stat().st_mode & 0o777) == "0o600"
    assert oct((tree / "libvirt" / "private").stat().st_mode & 0o777) == "0o700"


def test_frames_accept_each_other_and_the_controller_as_libvirt_peers(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    sys1 = ca.ensure_frame_pki(authority, tmp_path / "sys1", "sys1", ["127.0.0.1"])
    sys2 = ca.ensure_frame_pki(authority, tmp_path / "sys2", "sys2", ["127.0.0.2"])
    server2, _ = frame_identity(sys2)
    _, client1 = frame_identity(sys1)
    # sys1's libvirtd migrating to qemu+tls://sys2: each side checks the other
    assert handshake(server2, str(sys1 / ca.LIBVIRT_CACERT), "sys2", client1) == "ok"
    ctl = ca.ensure_controller_pki(authority, tmp_path / "controller")
    controller = ca.Certificate(ctl / "clientcert.pem", ctl / "clientkey.pem")
    assert handshake(server2, str(ctl / "cacert.pem"), "sys2", controller) == "ok"
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(server2, str(ctl / "cacert.pem"), "127.0.0.1", controller)


def test_libvirt_reads_dns_that_the_allowed_list_admits_and_not_the_hmcs(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    sys1 = ca.ensure_frame_pki(authority, tmp_path / "sys1", "sys1", ["127.0.0.1"])
    ctl = ca.ensure_controller_pki(authority, tmp_path / "controller")
    hmc = ca.ensure_server_cert(authority, tmp_path / "hmc1", "hmc1", ["127.0.0.1"])

    def dn(path) -> str:
        return subprocess.run(["virt-pki-query-dn", str(path)], capture_output=True,
                              text=True, check=True).stdout.strip()

    def admitted(path) -> bool:
        return any(fnmatch.fnmatchcase(dn(path), g) for g in ca.LIBVIRT_ALLOWED_DNS)

    assert dn(sys1 / ca.LIBVIRT_CLIENTCERT) == "O=lpmlab,OU=frame,CN=sys1"
    assert admitted(sys1 / ca.LIBVIRT_CLIENTCERT)
    assert admitted(ctl / "clientcert.pem")
    assert not admitted(hmc.cert)


def test_a_frame_certificate_is_made_again_when_its_address_changes(tmp_path):
    authority = ca.ensure_ca(tmp_path / "ca", "default")
    tree = ca.ensure_frame_pki(authority, tmp_path / "sys1", "sys1", ["198.18.0.11"])
    pem = (tree / ca.LIBVIRT_SERVERCERT).read_bytes()
    ca.ensure_frame_pki(authority, tree, "sys1", ["198.18.0.11"])
    assert (tree / ca.LIBVIRT_SERVERCERT).read_bytes() == pem
    ca.ensure_frame_pki(authority, tree, "sys1", ["198.18.0.21"])
    assert (tree / ca.LIBVIRT_SERVERCERT).read_bytes() != pem
    assert (tree / ca.LIBVIRT_CLIENTCERT).read_bytes() == \
        (tree / ca.LIBVIRT_SERVERCERT).read_bytes()
