"""The lab CA and an HMC's server certificate, checked by a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from lpmlab.fabric import ca


def handshake(cert: ca.Certificate, cafile: str, server_hostname: str) -> str:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.cert, cert.key)
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
    client = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client.wrap_socket(raw, server_hostname=server_hostname) as tls:
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
