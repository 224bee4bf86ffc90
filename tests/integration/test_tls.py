"""Real TLS handshakes on 127.0.0.1 with the cluster's certificates: the right ones pass,
the wrong ones fail, on both sides of the connection."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from moot.harness.ports import free_port
from moot.infra.certs import (
    ClusterCerts,
    client_ssl_context,
    init_cluster,
    issue_client_cert,
    issue_server_cert,
    peer_name,
    server_ssl_context,
)

HOSTS = ["127.0.0.1", "localhost"]


@pytest.fixture
def ours(tmp_path: Path) -> ClusterCerts:
    return init_cluster(tmp_path / "ours", hosts=HOSTS, servers=["room1"])


@pytest.fixture
def theirs(tmp_path: Path) -> ClusterCerts:
    """Another cluster with the same names and hosts: only its CA differs."""
    return init_cluster(tmp_path / "theirs", hosts=HOSTS, servers=["room1"])


@dataclass
class Outcome:
    """What each side of one connection saw."""

    server_peer: str | None = None
    server_error: BaseException | None = None
    client_received: bytes = b""
    client_error: BaseException | None = None


def connect(
    server: ssl.SSLContext,
    client: ssl.SSLContext,
    *,
    server_hostname: str = "localhost",
    max_version: ssl.TLSVersion | None = None,
) -> Outcome:
    """One connection to a one-shot threaded TLS server that answers with the client's CN."""
    if max_version is not None:
        client.maximum_version = max_version
    outcome = Outcome()
    done: Future[None] = Future()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                raw, _ = listener.accept()
                with raw:
                    raw.settimeout(10)
                    with server.wrap_socket(raw, server_side=True) as tls:
                        outcome.server_peer = peer_name(tls)
                        tls.sendall(f"hello {outcome.server_peer}\n".encode())
            except (OSError, ssl.SSLError) as exc:
                outcome.server_error = exc
            finally:
                done.set_result(None)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                outcome.client_received = tls.recv(100)
        except (OSError, ssl.SSLError) as exc:
            outcome.client_error = exc
        done.result(timeout=10)
        thread.join(timeout=10)
    return outcome


def assert_refused(outcome: Outcome, *, server: str, client: str) -> None:
    """Both sides failed, each for the stated reason (substrings of the OpenSSL messages)."""
    assert outcome.client_received == b""
    assert outcome.server_peer is None
    assert isinstance(outcome.server_error, ssl.SSLError), outcome
    assert server in str(outcome.server_error)
    assert isinstance(outcome.client_error, ssl.SSLError), outcome
    assert client in str(outcome.client_error)


# --- the server's certificate --------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_client_trusting_the_cluster_ca_connects(ours: ClusterCerts, hostname: str) -> None:
    outcome = connect(
        server_ssl_context(ours.ems.cert, ours.ems.key),
        client_ssl_context(ours.ca.cert),
        server_hostname=hostname,
    )
    assert outcome.server_error is None
    assert outcome.client_error is None
    assert outcome.client_received == b"hello None\n"  # no client certificate was asked for


def test_a_tls_1_2_client_connects(ours: ClusterCerts) -> None:
    outcome = connect(
        server_ssl_context(ours.ems.cert, ours.ems.key),
        client_ssl_context(ours.ca.cert),
        max_version=ssl.TLSVersion.TLSv1_2,
    )
    assert outcome.client_received == b"hello None\n"


def test_client_trusting_another_ca_is_refused(ours: ClusterCerts, theirs: ClusterCerts) -> None:
    outcome = connect(
        server_ssl_context(ours.ems.cert, ours.ems.key), client_ssl_context(theirs.ca.cert)
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert_refused(outcome, server="unknown ca", client="certificate verify failed")


def test_server_cert_for_another_host_fails_hostname_check(ours: ClusterCerts) -> None:
    other = issue_server_cert(ours.directory, "elsewhere", ["meet.example.com", "10.9.8.7"])
    server = server_ssl_context(other.cert, other.key)
    for hostname in ("localhost", "127.0.0.1"):
        outcome = connect(server, client_ssl_context(ours.ca.cert), server_hostname=hostname)
        assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
        assert_refused(
            outcome, server="bad certificate", client="mismatch, certificate is not valid for"
        )


def test_client_only_certificate_cannot_serve(ours: ClusterCerts) -> None:
    client_only = issue_client_cert(ours.directory, "agent")
    outcome = connect(
        server_ssl_context(client_only.cert, client_only.key), client_ssl_context(ours.ca.cert)
    )
    assert_refused(
        outcome, server="unsupported certificate", client="unsuitable certificate purpose"
    )


# --- client certificates -------------------------------------------------------------------


def ems_requiring_client_certs(ours: ClusterCerts, *, require: bool = True) -> ssl.SSLContext:
    return server_ssl_context(
        ours.ems.cert, ours.ems.key, client_ca=ours.ca.cert, require_client_cert=require
    )


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_room_server_proves_its_name(ours: ClusterCerts, version: ssl.TLSVersion) -> None:
    room = ours.servers["room1"]
    outcome = connect(
        ems_requiring_client_certs(ours),
        client_ssl_context(ours.ca.cert, cert=room.cert, key=room.key),
        max_version=version,
    )
    assert outcome.server_error is None
    assert outcome.server_peer == "room1"
    assert outcome.client_received == b"hello room1\n"


def test_client_only_certificate_proves_its_name(ours: ClusterCerts) -> None:
    agent = issue_client_cert(ours.directory, "room-9")
    outcome = connect(
        ems_requiring_client_certs(ours),
        client_ssl_context(ours.ca.cert, cert=agent.cert, key=agent.key),
    )
    assert outcome.server_peer == "room-9"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("require", [True, False])
def test_client_cert_from_another_ca_is_refused(
    ours: ClusterCerts, theirs: ClusterCerts, version: ssl.TLSVersion, require: bool
) -> None:
    """Same CN, same hosts, another cluster's CA: refused even where a certificate is optional."""
    impostor = theirs.servers["room1"]
    outcome = connect(
        ems_requiring_client_certs(ours, require=require),
        client_ssl_context(ours.ca.cert, cert=impostor.cert, key=impostor.key),
        max_version=version,
    )
    assert isinstance(outcome.server_error, ssl.SSLCertVerificationError)
    assert_refused(outcome, server="certificate verify failed", client="unknown ca")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_without_cert_is_refused(ours: ClusterCerts, version: ssl.TLSVersion) -> None:
    outcome = connect(
        ems_requiring_client_certs(ours), client_ssl_context(ours.ca.cert), max_version=version
    )
    expected = "certificate required" if version == ssl.TLSVersion.TLSv1_3 else "handshake failure"
    assert_refused(outcome, server="peer did not return a certificate", client=expected)


def test_client_without_cert_is_let_in_where_optional(ours: ClusterCerts) -> None:
    """The EMS accepts the cluster secret too: no certificate, no name, but a connection."""
    outcome = connect(
        ems_requiring_client_certs(ours, require=False), client_ssl_context(ours.ca.cert)
    )
    assert outcome.server_error is None
    assert outcome.server_peer is None
    assert outcome.client_received == b"hello None\n"


async def test_asyncio_streams_mutual_tls(ours: ClusterCerts) -> None:
    """The EMS and room server are asyncio programs: the same over asyncio streams."""
    names: list[str | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        names.append(peer_name(writer.get_extra_info("ssl_object")))
        writer.write(f"hello {names[-1]}\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=ems_requiring_client_certs(ours)
    )
    port = server.sockets[0].getsockname()[1]
    room = ours.servers["room1"]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=client_ssl_context(ours.ca.cert, cert=room.cert, key=room.key),
            server_hostname="localhost",
        )
        try:
            assert await asyncio.wait_for(reader.readline(), 10) == b"hello room1\n"
            assert peer_name(writer.get_extra_info("ssl_object")) == "ems"
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert names == ["room1"]


# --- uvicorn serving HTTPS -----------------------------------------------------------------


async def hello_app(scope: dict[str, object], receive: object, send: object) -> None:
    """The smallest ASGI app: 200 "ok" to every request."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@contextmanager
def https_server(certs: ClusterCerts, *, require_client_cert: bool = False) -> Iterator[str]:
    """uvicorn serving HTTPS on a free port in a thread, with the EMS's files; stopped after."""
    port = free_port()
    config = uvicorn.Config(
        hello_app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(certs.ems.cert),
        ssl_keyfile=str(certs.ems.key),
        ssl_ca_certs=str(certs.ca.cert) if require_client_cert else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE,
        lifespan="off",
        loop="asyncio",
        http="h11",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.02)
        yield f"https://localhost:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop"


def get(url: str, context: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=context, trust_env=False, timeout=10) as client:
        return client.get(url)


def test_uvicorn_serves_https_with_the_cluster_certificates(
    ours: ClusterCerts, theirs: ClusterCerts
) -> None:
    with https_server(ours) as url:
        response = get(url, client_ssl_context(ours.ca.cert))
        assert response.status_code == 200
        assert response.text == "ok"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            get(url, client_ssl_context(theirs.ca.cert))


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_uvicorn_requiring_client_certificates(
    ours: ClusterCerts, theirs: ClusterCerts, version: ssl.TLSVersion
) -> None:
    """Over TLS 1.2 the handshake fails (a ConnectError; uvicorn's asyncio transport closes
    without an alert, so there is no reason to match). Over TLS 1.3 the server refuses the
    client certificate after the client's side of the handshake is done, so the client sees
    the alert or a closed connection, whichever comes first: no response either way."""
    room = ours.servers["room1"]
    impostor = theirs.servers["room1"]

    def context(*, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        made = client_ssl_context(ours.ca.cert, cert=cert, key=key)
        made.maximum_version = version
        return made

    tls12 = version == ssl.TLSVersion.TLSv1_2
    with https_server(ours, require_client_cert=True) as url:
        response = get(url, context(cert=room.cert, key=room.key))
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError if tls12 else httpx.TransportError):
            get(url, context(cert=impostor.cert, key=impostor.key))
        with pytest.raises(httpx.ConnectError if tls12 else httpx.TransportError):
            get(url, context())
