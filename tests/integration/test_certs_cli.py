"""`moot certs init|issue|list`, run as an administrator runs them: a process of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from moot.infra.certs import describe, init_cluster


def moot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moot", *args],
        env={**os.environ, "MOOT_DATA_DIR": str(tmp_path / "data")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_makes_the_ca_and_prints_the_settings(tmp_path: Path) -> None:
    result = moot(tmp_path, "certs", "init", "--server", "room1")
    assert result.returncode == 0, result.stderr
    where = (tmp_path / "data" / "certs").resolve()  # default: <data_dir>/certs
    for name in ("ca.pem", "ca.key", "ems.pem", "ems.key", "room1.pem", "room1.key"):
        assert (where / name).is_file(), name
    assert (where / "ca.key").stat().st_mode & 0o777 == 0o600
    assert f"MOOT_TLS_CERT={where / 'ems.pem'}" in result.stdout
    assert f"MOOT_TLS_CLIENT_CA={where / 'ca.pem'}" in result.stdout
    assert f"MOOT_ROOM_CLIENT_CERT={where / 'room1.pem'}" in result.stdout
    assert f"MOOT_TLS_CA={where / 'ca.pem'}" in result.stdout
    ems = describe(where / "ems.pem")
    assert {"127.0.0.1", "localhost"} <= set(ems.sans)
    hostname = socket.gethostname().lower()
    if hostname.replace("-", "").replace(".", "").isalnum():
        assert hostname in ems.sans
    assert describe(where / "room1.pem").common_name == "room1"


def test_a_second_init_refuses_without_force(tmp_path: Path) -> None:
    assert moot(tmp_path, "certs", "init", "--dir", "c").returncode == 0
    before = (tmp_path / "c" / "ca.pem").read_bytes()
    again = moot(tmp_path, "certs", "init", "--dir", "c")
    assert again.returncode == 1
    assert "error: a cluster CA already exists in c (ca.pem, ca.key): nothing written" in (
        again.stderr
    )
    assert "--force" in again.stderr
    assert "Traceback" not in again.stderr + again.stdout
    assert (tmp_path / "c" / "ca.pem").read_bytes() == before

    forced = moot(tmp_path, "certs", "init", "--dir", "c", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "c" / "ca.pem").read_bytes() != before


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    for args, expected in [
        (["init", "--dir", "c", "--host", "not a host"], "bad host 'not a host'"),
        (["init", "--dir", "c", "--server", "ems"], "'ems' is the EMS's certificate"),
        (["issue", "room9", "--dir", "c", "--host", "127.0.0.1"], "no cluster CA in c"),
        (["issue", "room9", "--dir", "c"], "give the host name or address room server room9"),
        (["list", "--dir", "c"], "no certificates in c"),
    ]:
        result = moot(tmp_path, "certs", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout


def test_issue_and_list(tmp_path: Path) -> None:
    assert moot(tmp_path, "certs", "init", "--dir", "c", "--host", "127.0.0.1").returncode == 0
    issued = moot(tmp_path, "certs", "issue", "room7", "--dir", "c", "--host", "room7.example.com")
    assert issued.returncode == 0, issued.stderr
    assert "MOOT_ROOM_TLS_CERT=" in issued.stdout
    agent = moot(tmp_path, "certs", "issue", "agent1", "--dir", "c", "--client-only")
    assert agent.returncode == 0, agent.stderr
    # A certificate of another cluster in the same directory is shown as not ours.
    other = init_cluster(tmp_path / "other", hosts=["127.0.0.1"], servers=["stray"])
    shutil.copy(other.servers["stray"].cert, tmp_path / "c" / "stray.pem")

    listed = moot(tmp_path, "certs", "list", "--dir", "c")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {"agent1.pem", "ca.pem", "ems.pem", "room7.pem", "stray.pem"}
    assert "room7.example.com" in rows["room7.pem"] and "server+client" in rows["room7.pem"]
    assert " client " in rows["agent1.pem"]
    assert rows["room7.pem"].rstrip().endswith("yes")
    assert rows["stray.pem"].rstrip().endswith("NO (another CA)")
