"""The cluster's certificates: one private CA that signs the EMS and every room server.

Moot runs its own certificate authority instead of asking for a public one: the EMS and
the room servers only have to trust each other, and a private CA lets a room server prove
who it is with a client certificate (the EMS matches the certificate's CN to the name the
room server registers with). Browsers trust the cluster once `ca.pem` is installed.

Keys are ECDSA P-256 (SHA-256 signatures). Ed25519 would be smaller, but browsers do not
accept Ed25519 certificates for TLS, and P-256 is the one curve that every TLS stack Moot
meets (Chromium, Firefox, Safari, Python's ssl on any OpenSSL, Go's NATS server) supports.

This module depends on nothing else in Moot, so the CLI, the EMS and the room server can
all use it, and it can be tested alone.

Layout of a certificate directory (what `moot certs init` makes)::

    ca.key      0600  the CA's private key: keep it on the admin's machine
    ca.pem      0644  the CA certificate: give it to every EMS, room server and browser
    ems.key     0600  the EMS's key
    ems.pem     0644  the EMS's certificate (serverAuth and clientAuth)
    NAME.key    0600  one pair per room server, CN = the room server's name
    NAME.pem    0644

A NAME.pem holds the leaf certificate only, no chain file: the CA signs leaves directly
(path length 0, no intermediate), so a peer that trusts ca.pem needs nothing more, and
one that does not trust it would not trust a self-signed root sent with the leaf either.
Private keys are unencrypted PKCS#8 (servers start unattended), protected by mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
EMS_NAME = "ems"

CA_DAYS = 3650
"""Ten years: replacing a CA means handing the new ca.pem to every peer and browser."""

LEAF_DAYS = 825
"""The longest validity Apple's TLS clients accept even from a private CA (since 2019)."""

_BACKDATE = dt.timedelta(minutes=5)
"""Leaves and CA start a little in the past, so a peer whose clock lags still accepts them."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""The room server name rule (the same as the registration protocol): also file-safe."""

_RESERVED = frozenset({"ca"})
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class CertError(Exception):
    """A certificate cannot be made, read or used; the message says what to do."""


@dataclass(frozen=True)
class CertPaths:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterCerts:
    """Everything `init_cluster` wrote: the CA, the EMS and each room server, by name."""

    directory: Path
    ca: CertPaths
    ems: CertPaths
    servers: dict[str, CertPaths] = field(default_factory=dict)


@dataclass(frozen=True)
class CertInfo:
    """What `moot certs list` shows about one certificate file."""

    path: Path
    subject: str
    issuer: str
    common_name: str | None
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    server_auth: bool
    client_auth: bool
    fingerprint_sha256: str
    key_id: str | None
    """Subject key identifier (hex); a leaf whose authority_key_id differs is not the CA's."""
    authority_key_id: str | None


# --- making certificates -------------------------------------------------------------------


def init_cluster_ca(
    directory: Path, *, name: str = "Moot cluster CA", days: int = CA_DAYS, force: bool = False
) -> CertPaths:
    """Make the cluster CA (ca.key, ca.pem) in directory.

    An existing CA is never replaced silently: every certificate it signed would stop being
    trusted by peers that get the new ca.pem. Pass force=True to replace it on purpose.
    """
    _check_days(days)
    if not name.strip() or len(name) > 64:
        raise CertError("the CA name must be 1 to 64 characters")
    paths = CertPaths(cert=directory / CA_CERT, key=directory / CA_KEY)
    if not force:
        _refuse_existing_ca(directory)
    _make_directory(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    # The random OU keeps two clusters' CAs apart even when both keep the default name.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"cluster {secrets.token_hex(4)}"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(paths.key, _key_pem(key), 0o600)
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def issue_server_cert(
    directory: Path, name: str, hosts: Sequence[str], *, days: int = LEAF_DAYS
) -> CertPaths:
    """NAME.key and NAME.pem for an EMS or room server reachable at hosts.

    The certificate is good for serverAuth (it serves HTTPS at those host names and IP
    addresses) and clientAuth (a room server presents it to the EMS to prove its name, CN).
    An existing NAME.key/NAME.pem is replaced: that is how a certificate is renewed or gets
    another host; the old one stays valid until it expires.
    """
    _check_name(name)
    names = _general_names(hosts)
    return _issue(
        directory,
        name,
        days=days,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=names,
    )


def issue_client_cert(directory: Path, name: str, *, days: int = LEAF_DAYS) -> CertPaths:
    """NAME.key and NAME.pem that only prove a name (CN) to a server: clientAuth, no hosts.

    For a room server that does not serve HTTPS itself; replaced like issue_server_cert.
    """
    _check_name(name)
    return _issue(directory, name, days=days, usages=[ExtendedKeyUsageOID.CLIENT_AUTH], sans=[])


def init_cluster(
    directory: Path,
    *,
    hosts: Sequence[str],
    servers: Sequence[str],
    force: bool = False,
    days: int = LEAF_DAYS,
) -> ClusterCerts:
    """What `moot certs init` does: the CA, a certificate for the EMS and one per room server.

    Every certificate is a server certificate for hosts. All names and hosts are checked
    before anything is written. Running it again on a directory that has a CA refuses
    without writing anything (re-issuing under a new CA would invalidate what peers trust);
    with force=True it makes a new CA and re-issues the EMS and the named servers. Leaves
    of the old CA that are not re-issued are left alone and no longer verify.
    """
    if isinstance(servers, str):
        raise CertError(f"servers must be a list of names, not one string: [{servers!r}]")
    _check_days(days)
    _general_names(hosts)
    seen: set[str] = set()
    for server in servers:
        _check_name(server)
        if server.lower() == EMS_NAME:
            raise CertError(
                f"'{EMS_NAME}' is the EMS's certificate; give the room server another name"
            )
        if server.lower() in seen:
            raise CertError(f"room server {server!r} is named twice")
        seen.add(server.lower())
    if not force:
        _refuse_existing_ca(directory)
    ca = init_cluster_ca(directory, force=force)
    ems = issue_server_cert(directory, EMS_NAME, hosts, days=days)
    rooms = {server: issue_server_cert(directory, server, hosts, days=days) for server in servers}
    return ClusterCerts(directory=directory, ca=ca, ems=ems, servers=rooms)


def _issue(
    directory: Path,
    name: str,
    *,
    days: int,
    usages: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName],
) -> CertPaths:
    _check_days(days)
    ca_key, ca_cert = _load_ca(directory)
    now = _now()
    # A leaf cannot outlive its CA; near the CA's end a renewal gets what is left.
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - _BACKDATE, ca_cert.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    paths = CertPaths(cert=directory / f"{name}.pem", key=directory / f"{name}.key")
    _write(paths.key, _key_pem(key), 0o600)
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if not key_path.exists() or not cert_path.exists():
        raise CertError(
            f"no cluster CA in {directory} ({CA_KEY} and {CA_CERT}): "
            "make one first with `moot certs init`"
        )
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"cannot read the cluster CA in {directory}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path} is not an ECDSA key made by Moot")
    if key.public_key() != cert.public_key():
        raise CertError(f"{key_path} and {cert_path} do not belong together")
    if cert.not_valid_after_utc <= _now():
        raise CertError(
            f"the cluster CA in {directory} expired on {cert.not_valid_after_utc:%Y-%m-%d}: "
            "make a new one (moot certs init --force) and re-issue every certificate"
        )
    return key, cert


def _refuse_existing_ca(directory: Path) -> None:
    existing = [name for name in (CA_KEY, CA_CERT) if (directory / name).exists()]
    if existing:
        raise CertError(
            f"a cluster CA already exists in {directory} ({', '.join(existing)}); "
            "replacing it invalidates every certificate it signed. "
            "To replace it anyway, use force=True (moot certs init --force)"
        )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; an ECDSA leaf only signs handshakes."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_directory(directory: Path) -> None:
    """A new directory is 0700: it holds the CA's key. An existing one keeps its mode."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertError(f"cannot make the certificate directory {directory}: {exc}") from exc


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file with the final mode from the start: a key is never
    readable by others, not even for a moment, and a crash never leaves half a file."""
    _make_directory(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --- checking input ------------------------------------------------------------------------


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise CertError(f"days must be a whole number of days, at least 1 (got {days!r})")


def _check_name(name: str) -> None:
    """Names become file names and the CN the EMS matches: the room-server name rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CertError(
            f"bad certificate name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it is the room server's name and a file name)"
        )
    if name.lower() in _RESERVED:
        raise CertError(f"{name!r} is the CA's file name; pick another certificate name")


def check_hosts(hosts: Sequence[str]) -> None:
    """CertError unless every host can go into a certificate (what issuing checks)."""
    _general_names(hosts)


def _general_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """Subject alternative names: IP addresses as IP entries, everything else as DNS names."""
    if isinstance(hosts, str):
        raise CertError(f"hosts must be a list of names, not one string: [{hosts!r}]")
    result: list[x509.GeneralName] = []
    for raw in hosts:
        entry = _general_name(raw)
        if entry not in result:
            result.append(entry)
    if not result:
        raise CertError(
            "give at least one host name or IP address the certificate is for "
            "(for example localhost, 127.0.0.1 or meet.example.com)"
        )
    return result


def _general_name(raw: str) -> x509.GeneralName:
    host = raw.strip() if isinstance(raw, str) else ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise CertError(f"bad host {raw!r}: an IPv6 address in a certificate has no %zone")
        return x509.IPAddress(address)
    name = host.lower().removesuffix(".")
    if not name.isascii():
        raise CertError(f"bad host {raw!r}: write an international name in its xn-- form")
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]  # one wildcard, leftmost, and not for a whole top-level domain
    if (
        not name
        or len(name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise CertError(
            f"bad host {raw!r}: give an IP address (127.0.0.1, ::1) or a host name "
            "(localhost, meet.example.com: letters, digits and '-' between dots)"
        )
    return x509.DNSName(name)


# --- using certificates --------------------------------------------------------------------


def server_ssl_context(
    cert: Path,
    key: Path,
    *,
    client_ca: Path | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later) serving cert.

    With client_ca, clients are asked for a certificate signed by that CA: one signed by
    any other CA fails the handshake; a client without one is let in unless
    require_client_cert (so a room server may still join with the cluster secret).
    """
    if require_client_cert and client_ca is None:
        raise CertError(
            "require_client_cert needs client_ca, the CA that signs client certificates"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    if client_ca is not None:
        _load_trust(context, client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_ssl_context(
    ca: Path | None, *, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A TLS client context that trusts only ca (not the system's CAs) and checks host names.

    ca=None trusts the system's CAs instead: an EMS behind a proxy with a public certificate.
    With cert and key, the client proves its name (the certificate's CN) to the server.
    """
    if (cert is None) != (key is None):
        raise CertError("give both cert and key for a client certificate, or neither")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if ca is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _load_trust(context, ca)
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    return context


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    # ssl's own FileNotFoundError does not say which file is missing.
    for path in (cert, key):
        if not Path(path).is_file():
            raise CertError(f"no such certificate or key file: {path}")
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise CertError(f"cannot use certificate {cert} with key {key}: {exc}") from exc


def _load_trust(context: ssl.SSLContext, ca: Path) -> None:
    # Strict X.509 checking, as Python 3.13 does by default: our certificates pass it.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if not Path(ca).is_file():
        raise CertError(f"no such CA file: {ca}")
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise CertError(f"cannot read CA certificates from {ca}: {exc}") from exc


def peer_name(peer: ssl.SSLObject | ssl.SSLSocket | bytes) -> str | None:
    """The CN of the peer's verified certificate: the name a room server proves to the EMS.

    None when the peer sent no certificate or it was not verified (a context that does not
    ask for client certificates). DER bytes are taken as already verified by the caller.
    """
    if isinstance(peer, bytes):
        der: bytes | None = peer
    else:
        if not peer.getpeercert():  # empty unless the handshake verified the certificate
            return None
        der = peer.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None  # several CNs would make the name ambiguous; Moot's CA never issues them
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def describe(path: Path) -> CertInfo:
    """The facts about a certificate file that an administrator checks: who, for what, until."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise CertError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CertError(f"{path} is not a PEM certificate") from exc
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = names[0].value if names else None
    if isinstance(common_name, bytes):
        common_name = common_name.decode()
    sans: tuple[str, ...] = ()
    usages: list[x509.ObjectIdentifier] = []
    is_ca = False
    key_id = authority_key_id = None
    for extension in cert.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectAlternativeName):
            sans = tuple(
                str(entry.value)
                for entry in value
                if isinstance(entry, x509.DNSName | x509.IPAddress)
            )
        elif isinstance(value, x509.ExtendedKeyUsage):
            usages = list(value)
        elif isinstance(value, x509.BasicConstraints):
            is_ca = value.ca
        elif isinstance(value, x509.SubjectKeyIdentifier):
            key_id = value.digest.hex()
        elif isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier:
            authority_key_id = value.key_identifier.hex()
    return CertInfo(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=common_name,
        sans=sans,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        server_auth=ExtendedKeyUsageOID.SERVER_AUTH in usages,
        client_auth=ExtendedKeyUsageOID.CLIENT_AUTH in usages,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        key_id=key_id,
        authority_key_id=authority_key_id,
    )
