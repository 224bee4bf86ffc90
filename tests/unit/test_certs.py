"""The cluster CA and its certificates: files, modes, extensions, refusals."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moot.infra.certs import (
    CA_CERT,
    CA_KEY,
    CertError,
    CertPaths,
    client_ssl_context,
    describe,
    init_cluster,
    init_cluster_ca,
    issue_client_cert,
    issue_server_cert,
    peer_name,
    server_ssl_context,
)

E = TypeVar("E", bound=x509.ExtensionType)
HOSTS = ["127.0.0.1", "::1", "localhost", "meet.example.com"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def extension(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    init_cluster_ca(directory)
    return directory


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: the key must be 0600 anyway."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- the CA --------------------------------------------------------------------------------


def test_ca_files_and_modes(tmp_path: Path, umask_zero: None) -> None:
    directory = tmp_path / "new" / "certs"
    paths = init_cluster_ca(directory)
    assert paths == CertPaths(cert=directory / CA_CERT, key=directory / CA_KEY)
    assert mode(paths.key) == 0o600
    assert mode(paths.cert) == 0o644
    assert mode(directory) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == [CA_KEY, CA_CERT]


def test_ca_is_a_p256_ca_for_leaves_only(ca_dir: Path) -> None:
    cert = load(ca_dir / CA_CERT)
    assert cert.subject == cert.issuer
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    basic = extension(cert, x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = extension(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Moot cluster CA"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3650) <= lifetime <= dt.timedelta(days=3650, minutes=10)


def test_second_ca_refused_without_force_and_nothing_changes(ca_dir: Path) -> None:
    before = (ca_dir / CA_KEY).read_bytes(), (ca_dir / CA_CERT).read_bytes()
    with pytest.raises(CertError, match=r"already exists.*ca\.key, ca\.pem.*force=True"):
        init_cluster_ca(ca_dir)
    assert ((ca_dir / CA_KEY).read_bytes(), (ca_dir / CA_CERT).read_bytes()) == before


def test_half_a_ca_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / CA_CERT).write_text("left over")
    with pytest.raises(CertError, match=r"already exists.*\(ca\.pem\)"):
        init_cluster_ca(tmp_path)


def test_force_replaces_the_ca(ca_dir: Path) -> None:
    old = load(ca_dir / CA_CERT)
    init_cluster_ca(ca_dir, name="Acme meetings CA", force=True)
    new = load(ca_dir / CA_CERT)
    assert new.public_key() != old.public_key()
    assert new.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Acme meetings CA"


def test_two_cas_with_the_same_name_have_different_subjects(tmp_path: Path) -> None:
    first = init_cluster_ca(tmp_path / "a")
    second = init_cluster_ca(tmp_path / "b")
    assert load(first.cert).subject != load(second.cert).subject


@pytest.mark.parametrize("days", [0, -1])
def test_bad_days_refused(tmp_path: Path, days: int) -> None:
    with pytest.raises(CertError, match="at least 1"):
        init_cluster_ca(tmp_path, days=days)


# --- leaves --------------------------------------------------------------------------------


def test_server_cert_files_sans_usages_and_authority(ca_dir: Path, umask_zero: None) -> None:
    paths = issue_server_cert(ca_dir, "room1", HOSTS)
    assert paths == CertPaths(cert=ca_dir / "room1.pem", key=ca_dir / "room1.key")
    assert mode(paths.key) == 0o600
    assert mode(paths.cert) == 0o644
    cert = load(paths.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "room1"
    ca = load(ca_dir / CA_CERT)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    sans = extension(cert, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "meet.example.com"]
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    basic = extension(cert, x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    assert extension(cert, x509.KeyUsage).value.digital_signature
    aki = extension(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == extension(ca, x509.SubjectKeyIdentifier).value.digest
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=825) <= lifetime <= dt.timedelta(days=825, minutes=10)


def test_hosts_are_normalised_and_deduplicated(ca_dir: Path) -> None:
    paths = issue_server_cert(ca_dir, "ems", ["LocalHost.", "localhost", " 127.0.0.1 ", "[::1]"])
    assert describe(paths.cert).sans == ("localhost", "127.0.0.1", "::1")


def test_wildcard_host(ca_dir: Path) -> None:
    paths = issue_server_cert(ca_dir, "ems", ["*.meet.example.com"])
    assert describe(paths.cert).sans == ("*.meet.example.com",)


def test_client_cert_is_client_auth_only_with_the_name_as_cn(ca_dir: Path) -> None:
    paths = issue_client_cert(ca_dir, "room-7.east")
    assert mode(paths.key) == 0o600
    cert = load(paths.cert)
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert peer_name(cert.public_bytes(serialization.Encoding.DER)) == "room-7.east"
    with pytest.raises(x509.ExtensionNotFound):
        extension(cert, x509.SubjectAlternativeName)


def test_reissuing_a_leaf_replaces_it(ca_dir: Path) -> None:
    first = issue_server_cert(ca_dir, "room1", ["localhost"])
    old_key = first.key.read_bytes()
    second = issue_server_cert(ca_dir, "room1", ["localhost", "room1.example.com"])
    assert second == first
    assert second.key.read_bytes() != old_key
    assert describe(second.cert).sans == ("localhost", "room1.example.com")
    assert not [p for p in ca_dir.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    init_cluster_ca(tmp_path, days=30)
    paths = issue_server_cert(tmp_path, "ems", ["localhost"], days=825)
    assert describe(paths.cert).not_after == describe(tmp_path / CA_CERT).not_after


def test_issuing_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CertError, match=r"no cluster CA in .*moot certs init"):
        issue_server_cert(tmp_path, "ems", ["localhost"])
    with pytest.raises(CertError, match="no cluster CA"):
        issue_client_cert(tmp_path, "room1")


def test_a_ca_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    init_cluster_ca(tmp_path / "a")
    init_cluster_ca(tmp_path / "b")
    (tmp_path / "a" / CA_KEY).write_bytes((tmp_path / "b" / CA_KEY).read_bytes())
    with pytest.raises(CertError, match="do not belong together"):
        issue_server_cert(tmp_path / "a", "ems", ["localhost"])


@pytest.mark.parametrize(
    "name",
    ["", "../etc/passwd", "a/b", "room 1", "-room", ".hidden", "x" * 65, "rööm", "ca", "CA"],
)
def test_bad_names_refused(ca_dir: Path, name: str) -> None:
    with pytest.raises(CertError, match=r"certificate name|CA's file name"):
        issue_server_cert(ca_dir, name, ["localhost"])
    with pytest.raises(CertError, match=r"certificate name|CA's file name"):
        issue_client_cert(ca_dir, name)
    assert sorted(p.name for p in ca_dir.iterdir()) == [CA_KEY, CA_CERT]


def test_no_hosts_refused(ca_dir: Path) -> None:
    with pytest.raises(CertError, match="at least one host name or IP address"):
        issue_server_cert(ca_dir, "ems", [])


def test_one_string_instead_of_a_list_refused(ca_dir: Path) -> None:
    with pytest.raises(CertError, match=r"list of names, not one string: \['localhost'\]"):
        issue_server_cert(ca_dir, "ems", "localhost")


@pytest.mark.parametrize(
    "host",
    ["", "bad host", "-x.example.com", "x-.example.com", "ex_ample.com", "a..b", "127.1",
     "10.0.0.256", "fe80::1%eth0", "*", "*.com", "a.*.com", "münchen.de", "x" * 64 + ".com"],
)  # fmt: skip
def test_bad_hosts_refused(ca_dir: Path, host: str) -> None:
    with pytest.raises(CertError, match="bad host"):
        issue_server_cert(ca_dir, "ems", ["localhost", host])
    assert not (ca_dir / "ems.pem").exists()


# --- init_cluster --------------------------------------------------------------------------


def test_init_cluster_layout(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    made = init_cluster(directory, hosts=["127.0.0.1", "localhost"], servers=["room1", "room2"])
    assert made.directory == directory
    assert made.ca == CertPaths(directory / "ca.pem", directory / "ca.key")
    assert made.ems == CertPaths(directory / "ems.pem", directory / "ems.key")
    assert made.servers == {
        "room1": CertPaths(directory / "room1.pem", directory / "room1.key"),
        "room2": CertPaths(directory / "room2.pem", directory / "room2.key"),
    }
    names = ["ca", "ems", "room1", "room2"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        f"{name}.{kind}" for name in names for kind in ("key", "pem")
    )
    ca = load(made.ca.cert)
    for name, paths in [("ems", made.ems), *made.servers.items()]:
        info = describe(paths.cert)
        assert info.common_name == name
        assert info.sans == ("127.0.0.1", "localhost")
        assert info.server_auth
        assert info.client_auth
        assert mode(paths.key) == 0o600
        load(paths.cert).verify_directly_issued_by(ca)


def test_init_cluster_again_refuses_and_writes_nothing(tmp_path: Path) -> None:
    init_cluster(tmp_path, hosts=["localhost"], servers=["room1"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CertError, match=r"already exists.*force"):
        init_cluster(tmp_path, hosts=["localhost"], servers=["room1", "room2"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_init_cluster_force_makes_a_new_ca_and_reissues(tmp_path: Path) -> None:
    old = init_cluster(tmp_path, hosts=["localhost"], servers=["room1"])
    old_ca = describe(old.ca.cert)
    new = init_cluster(tmp_path, hosts=["localhost"], servers=["room1"], force=True)
    new_ca = describe(new.ca.cert)
    assert new_ca.key_id != old_ca.key_id
    assert describe(new.servers["room1"].cert).authority_key_id == new_ca.key_id


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        (["ems"], "EMS's certificate"),
        (["room1", "ROOM1"], "named twice"),
        (["room1", "bad/name"], "certificate name"),
        (["ca"], "CA's file name"),
        ("room1", "not one string"),
    ],
)
def test_init_cluster_checks_everything_before_writing(
    tmp_path: Path, servers: list[str], message: str
) -> None:
    with pytest.raises(CertError, match=message):
        init_cluster(tmp_path / "certs", hosts=["localhost"], servers=servers)
    assert not (tmp_path / "certs").exists()


def test_init_cluster_with_bad_hosts_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="at least one host"):
        init_cluster(tmp_path / "certs", hosts=[], servers=["room1"])
    assert not (tmp_path / "certs").exists()


# --- describe ------------------------------------------------------------------------------


def test_describe(tmp_path: Path) -> None:
    made = init_cluster(tmp_path, hosts=["localhost", "127.0.0.1"], servers=[])
    ca = describe(made.ca.cert)
    assert ca.is_ca
    assert ca.common_name == "Moot cluster CA"
    assert ca.subject == ca.issuer
    assert re.fullmatch(r"CN=Moot cluster CA,OU=cluster [0-9a-f]{8}", ca.subject)
    assert ca.sans == ()
    ems = describe(made.ems.cert)
    assert not ems.is_ca
    assert ems.subject == "CN=ems"
    assert ems.issuer == ca.subject
    assert ems.sans == ("localhost", "127.0.0.1")
    assert ems.authority_key_id == ca.key_id
    now = dt.datetime.now(dt.UTC)
    assert ems.not_before <= now
    assert dt.timedelta(days=824) < ems.not_after - now <= dt.timedelta(days=825)
    assert len(bytes.fromhex(ems.fingerprint_sha256.replace(":", ""))) == 32


def test_describe_refuses_what_is_not_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="cannot read"):
        describe(tmp_path / "missing.pem")
    init_cluster_ca(tmp_path)
    with pytest.raises(CertError, match="not a PEM certificate"):
        describe(tmp_path / CA_KEY)


# --- contexts ------------------------------------------------------------------------------


def test_client_context_checks_hosts_and_requires_a_certificate(ca_dir: Path) -> None:
    context = client_ssl_context(ca_dir / CA_CERT)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_flags & ssl.VERIFY_X509_STRICT
    assert len(context.get_ca_certs()) == 1  # the cluster CA only, not the system's


def test_server_context_modes(ca_dir: Path) -> None:
    ems = issue_server_cert(ca_dir, "ems", ["localhost"])
    plain = server_ssl_context(ems.cert, ems.key)
    assert plain.verify_mode == ssl.CERT_NONE
    assert plain.minimum_version == ssl.TLSVersion.TLSv1_2
    optional = server_ssl_context(ems.cert, ems.key, client_ca=ca_dir / CA_CERT)
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    required = server_ssl_context(
        ems.cert, ems.key, client_ca=ca_dir / CA_CERT, require_client_cert=True
    )
    assert required.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(CertError, match="needs client_ca"):
        server_ssl_context(ems.cert, ems.key, require_client_cert=True)


def test_context_errors_name_the_file(ca_dir: Path) -> None:
    ems = issue_server_cert(ca_dir, "ems", ["localhost"])
    room = issue_server_cert(ca_dir, "room1", ["localhost"])
    with pytest.raises(CertError, match=r"cannot use certificate .*ems\.pem with key .*room1\.key"):
        server_ssl_context(ems.cert, room.key)
    with pytest.raises(CertError, match=r"no such certificate or key file: .*nope\.pem"):
        server_ssl_context(ca_dir / "nope.pem", ems.key)
    with pytest.raises(CertError, match="no such CA file"):
        client_ssl_context(ca_dir / "nope.pem")
    with pytest.raises(CertError, match="cannot read CA certificates"):
        client_ssl_context(ems.key)
    with pytest.raises(CertError, match="both cert and key"):
        client_ssl_context(ca_dir / CA_CERT, cert=ems.cert)


def test_peer_name_of_bytes_that_are_not_a_certificate() -> None:
    assert peer_name(b"") is None
    assert peer_name(b"not der") is None
