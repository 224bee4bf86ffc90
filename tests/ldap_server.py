"""A throwaway OpenLDAP slapd with two partitions, for the LDAP sign-in tests.

A real slapd on loopback ports (never a fake LDAP server): `running_slapd(workdir)` writes an
old-style slapd.conf, starts slapd in the foreground, loads the directory with ldapadd and
stops slapd at the end. The directory:

    dc=acme,dc=test    partition "acme":   alice, bob, carol; groups stadmins (alice), staff
    dc=globex,dc=test  partition "globex": dave, erin; group staff
    dc=moot,dc=test    cn=reader: the service account, read-only, may read both partitions
                       (but no userPassword), nothing else may read them except each user itself

With `tls=True` slapd also listens on ldaps:// and offers StartTLS, with a server certificate
for IP 127.0.0.1 only (so "localhost" does not match it) signed by a CA made here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moot.ems.auth.ldap_settings import LdapPartition, LdapSettings
from moot.harness.ports import free_port
from tests.services import missing

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
LDAPMODIFY = "/usr/bin/ldapmodify"
START_TIMEOUT = 15.0
HOST = "127.0.0.1"

SERVICE_DN = "cn=reader,dc=moot,dc=test"

# username -> (partition, display name, password, groups)
PEOPLE: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "alice": ("acme", "Alice Archer", "alice-secret-pw", ("stadmins", "staff")),
    "bob": ("acme", "Bob Baker", "bob-secret-pw", ("staff",)),
    "carol": ("acme", "Carol Çelik", "carol-secret-pw", ("staff",)),
    "dave": ("globex", "Dave Dietrich", "dave-secret-pw", ("staff",)),
    "erin": ("globex", "Erin Éclair", "érin-geheim-ß", ("staff",)),
}
SUFFIXES = {"acme": "dc=acme,dc=test", "globex": "dc=globex,dc=test"}


@dataclass(frozen=True)
class Slapd:
    """A running slapd: where it listens, how to bind, who is in it."""

    url: str
    ldaps_url: str | None
    ca_file: str | None
    bind_dn: str
    bind_password: str
    partitions: tuple[LdapPartition, ...]
    users: Mapping[str, str]
    log_file: Path
    started_in: float
    pid: int = field(compare=False)
    root_password: str = field(default="", compare=False, repr=False)

    def settings(self, **changes: Any) -> LdapSettings:
        """LdapSettings for this directory over plain ldap://, with any field changed."""
        base = LdapSettings(
            url=self.url,
            bind_dn=self.bind_dn,
            bind_password=self.bind_password,
            partitions=self.partitions,
            timeout=2.0,
        )
        return replace(base, **changes)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def modify(self, partition: str, ldif: str) -> None:
        """Change the directory as its administrator would (ldapmodify, an LDIF of changes)."""
        suffix = SUFFIXES[partition]
        result = subprocess.run(
            [
                LDAPMODIFY,
                "-x",
                "-H",
                self.url,
                "-D",
                f"cn=admin,{suffix}",
                "-w",
                self.root_password,
            ],
            input=ldif,
            capture_output=True,
            text=True,
            env={**os.environ, "LDAPNOINIT": "1"},
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ldapmodify in {suffix} failed: {result.stdout}{result.stderr}")


def require_slapd() -> None:
    """Fail under CI, skip with the reason on a developer's machine."""
    absent = [tool for tool in (SLAPD, LDAPADD) if not os.access(tool, os.X_OK)]
    if absent:
        missing(f"{', '.join(absent)} not installed (Debian: apt-get install slapd ldap-utils)")


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCa:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, path: Path) -> str:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


def make_ca(name: str = "Moot test CA") -> TestCa:
    """A self-signed CA, valid from an hour ago for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TestCa(cert=cert, key=key)


def issue_server_cert(ca: TestCa, cert_path: Path, key_path: Path) -> None:
    """A server certificate for IP 127.0.0.1 only, and its PKCS#8 key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(HOST))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


# --- configuration and data -----------------------------------------------------------------


def ssha(password: str) -> str:
    """An {SSHA} userPassword value, so the directory holds no plain passwords."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _ldif_line(attribute: str, value: str) -> str:
    """One LDIF line; values that are not plain ASCII are base64 encoded (RFC 2849)."""
    if value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<")):
        return f"{attribute}: {value}"
    return f"{attribute}:: {base64.b64encode(value.encode()).decode()}"


def _ldif(entries: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(_ldif_line(a, v) for a, v in entry) for entry in entries) + "\n"


def _partition_ldif(partition: str, suffix: str) -> str:
    dc = suffix.split(",")[0].split("=")[1]
    entries: list[list[tuple[str, str]]] = [
        [
            ("dn", suffix),
            ("objectClass", "dcObject"),
            ("objectClass", "organization"),
            ("dc", dc),
            ("o", dc.capitalize()),
        ],
        [("dn", f"ou=people,{suffix}"), ("objectClass", "organizationalUnit"), ("ou", "people")],
        [("dn", f"ou=groups,{suffix}"), ("objectClass", "organizationalUnit"), ("ou", "groups")],
    ]
    groups: dict[str, list[str]] = {}
    for uid, (where, display, password, member_of) in PEOPLE.items():
        if where != partition:
            continue
        dn = f"uid={uid},ou=people,{suffix}"
        entries.append(
            [
                ("dn", dn),
                ("objectClass", "inetOrgPerson"),
                ("uid", uid),
                ("cn", display),
                ("sn", display.split()[-1]),
                ("displayName", display),
                ("mail", f"{uid}@{dc}.test"),
                ("userPassword", ssha(password)),
            ]
        )
        for group in member_of:
            groups.setdefault(group, []).append(dn)
    for group, members in groups.items():
        entries.append(
            [
                ("dn", f"cn={group},ou=groups,{suffix}"),
                ("objectClass", "groupOfNames"),
                ("cn", group),
                *(("member", member) for member in members),
            ]
        )
    return _ldif(entries)


def _service_ldif(password: str) -> str:
    return _ldif(
        [
            [
                ("dn", "dc=moot,dc=test"),
                ("objectClass", "dcObject"),
                ("objectClass", "organization"),
                ("dc", "moot"),
                ("o", "Moot"),
            ],
            [
                ("dn", SERVICE_DN),
                ("objectClass", "organizationalRole"),
                ("objectClass", "simpleSecurityObject"),
                ("cn", "reader"),
                ("userPassword", ssha(password)),
            ],
        ]
    )


def _database(suffix: str, directory: Path, root_password: str, *, readers: str) -> str:
    # slapd.conf takes no inline comments; continuation lines start with whitespace.
    return f"""
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {root_password}
directory {directory}
maxsize 33554432
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
{readers}    by self read
    by * none
"""


def _slapd_conf(
    workdir: Path, root_password: str, tls_files: tuple[Path, Path, Path] | None
) -> str:
    lines = [
        *(
            f"include /etc/ldap/schema/{name}.schema"
            for name in ("core", "cosine", "inetorgperson")
        ),
        "include /etc/ldap/schema/nis.schema",
        f"pidfile {workdir / 'slapd.pid'}",
        f"argsfile {workdir / 'slapd.args'}",
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
        "moduleload memberof",
    ]
    if tls_files is not None:
        ca, cert, key = tls_files
        lines += [
            f"TLSCACertificateFile {ca}",
            f"TLSCertificateFile {cert}",
            f"TLSCertificateKeyFile {key}",
        ]
    conf = "\n".join(lines) + "\n"
    reader = f'    by dn.exact="{SERVICE_DN}" read\n'
    for name, suffix in SUFFIXES.items():
        directory = workdir / f"db-{name}"
        directory.mkdir()
        conf += _database(suffix, directory, root_password, readers=reader)
        conf += "overlay memberof\n"
    directory = workdir / "db-moot"
    directory.mkdir()
    conf += _database("dc=moot,dc=test", directory, root_password, readers="")
    return conf


# --- the process ----------------------------------------------------------------------------


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_file: Path) -> None:
    """Poll the TCP port: an ldap3 Server that saw a refusal would wait 5 s before retrying."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"slapd exited with {process.returncode}:\n{log_file.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"slapd did not listen on {HOST}:{port} within {START_TIMEOUT} s")


def _ldapadd(url: str, suffix: str, root_password: str, ldif: Path) -> None:
    result = subprocess.run(
        [LDAPADD, "-x", "-H", url, "-D", f"cn=admin,{suffix}", "-w", root_password, "-f", ldif],
        capture_output=True,
        text=True,
        env={**os.environ, "LDAPNOINIT": "1"},
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ldapadd into {suffix} failed: {result.stdout}{result.stderr}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_slapd(
    workdir: Path,
    *,
    tls: bool = False,
    port: int | None = None,
    service_password: str | None = None,
) -> Iterator[Slapd]:
    """A loaded slapd on free loopback ports for the duration of the block.

    `port` and `service_password` fix what is otherwise chosen at random, for a test that
    builds its client before the directory starts.
    """
    require_slapd()
    workdir.mkdir(parents=True, exist_ok=True)
    root_password = secrets.token_urlsafe(16)
    service_password = service_password or secrets.token_urlsafe(16)

    tls_files: tuple[Path, Path, Path] | None = None
    ca_file: str | None = None
    if tls:
        ca = make_ca()
        ca_path, cert_path, key_path = (workdir / n for n in ("ca.pem", "server.pem", "server.key"))
        ca_file = ca.write(ca_path)
        issue_server_cert(ca, cert_path, key_path)
        tls_files = (ca_path, cert_path, key_path)

    conf = workdir / "slapd.conf"
    conf.write_text(_slapd_conf(workdir, root_password, tls_files))
    port = port or free_port(HOST)
    url = f"ldap://{HOST}:{port}"
    listen = [f"{url}/"]
    ldaps_port: int | None = None
    if tls:
        ldaps_port = free_port(HOST)
        while ldaps_port == port:
            ldaps_port = free_port(HOST)
        listen.append(f"ldaps://{HOST}:{ldaps_port}/")

    log_file = workdir / "slapd.log"
    started = time.monotonic()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", " ".join(listen), "-d", "stats"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log_file)
        if ldaps_port is not None:
            _wait_for_port(ldaps_port, process, log_file)
        for name, suffix in SUFFIXES.items():
            ldif = workdir / f"{name}.ldif"
            ldif.write_text(_partition_ldif(name, suffix))
            _ldapadd(url, suffix, root_password, ldif)
        ldif = workdir / "moot.ldif"
        ldif.write_text(_service_ldif(service_password))
        _ldapadd(url, "dc=moot,dc=test", root_password, ldif)
        started_in = time.monotonic() - started

        yield Slapd(
            url=url,
            ldaps_url=f"ldaps://{HOST}:{ldaps_port}" if ldaps_port is not None else None,
            ca_file=ca_file,
            bind_dn=SERVICE_DN,
            bind_password=service_password,
            partitions=tuple(LdapPartition(name, suffix) for name, suffix in SUFFIXES.items()),
            users={uid: person[2] for uid, person in PEOPLE.items()},
            log_file=log_file,
            started_in=started_in,
            pid=process.pid,
            root_password=root_password,
        )
    finally:
        _stop(process)


def _self_check() -> None:
    """`python -m tests.ldap_server`: start and stop a TLS slapd, print how long it took."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, running_slapd(Path(tmp), tls=True) as slapd:
        print(f"slapd {slapd.url} {slapd.ldaps_url} ready and loaded in {slapd.started_in:.3f} s")


if __name__ == "__main__":
    _self_check()
