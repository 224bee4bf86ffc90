"""`moot demo --tls`: the whole demo over TLS, trusted through the CA it names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from moot.harness.ports import free_block
from moot.infra.certs import client_ssl_context, describe
from tests.integration.test_demo import stop, wait_for_address

pytestmark = pytest.mark.processes


def start_tls_demo(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moot",
            "demo",
            "--tls",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "moot-data"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )


def next_line(demo: subprocess.Popen[str]) -> str:
    assert demo.stdout is not None
    return demo.stdout.readline()


def test_tls_demo_serves_everything_over_https_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_block(3)
    demo = start_tls_demo(tmp_path, port)
    try:
        address, _ = wait_for_address(demo)
        assert address == f"https://127.0.0.1:{port}/"
        ca = (tmp_path / "moot-data" / "certs" / "ca.pem").resolve()
        trust = next_line(demo)
        assert str(ca) in trust and "trust" in trust, trust
        assert describe(ca).is_ca

        with httpx.Client(verify=client_ssl_context(ca), trust_env=False, timeout=10) as client:
            assert client.get(address + "readyz").text.startswith("ready\n")
            secret = (tmp_path / "moot-data" / "cluster-secret").read_text().strip()
            admin = {"Authorization": f"Bearer {secret}"}
            servers = client.get(address + "api/v1/servers", headers=admin).json()
            assert sorted((s["name"], s["status"]) for s in servers) == [
                ("room1", "online"),
                ("room2", "online"),
            ]
            for server in servers:
                assert server["url"].startswith("https://127.0.0.1:")
                assert client.get(server["url"] + "/readyz").text == "ready"
        # Nothing is served without TLS.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)

        children = psutil.Process(demo.pid).children(recursive=True)
        # The EMS, two room servers, nats-server (each room server's Janus counted with it).
        assert len([c for c in children if c.name() != "janus"]) == 4
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        stop(demo)


def test_tls_demo_reuses_its_certificates(tmp_path: Path) -> None:
    """A browser told to trust the demo's ca.pem once keeps trusting it on the next run."""
    fingerprints: list[str] = []
    for _ in range(2):
        port = free_block(3)
        demo = start_tls_demo(tmp_path, port)
        try:
            wait_for_address(demo)
            ca = tmp_path / "moot-data" / "certs" / "ca.pem"
            fingerprints.append(describe(ca).fingerprint_sha256)
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=20) == 0
        finally:
            stop(demo)
    assert fingerprints[0] == fingerprints[1]
