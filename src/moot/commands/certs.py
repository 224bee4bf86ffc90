"""`moot certs`: the cluster's CA and TLS certificates."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Annotated

import typer

from moot.commands.common import (
    JsonFlag,
    fail,
    settings_of,
    table,
)
from moot.infra import certs
from moot.infra.settings import CommonSettings

certs_app = typer.Typer(
    help="The cluster's CA and TLS certificates (docs/admin-guide.md, TLS).",
    no_args_is_help=True,
)

CertDir = Annotated[
    Path | None,
    typer.Option("--dir", help="Certificate directory; default DATA_DIR/certs."),
]


def _cert_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    settings: CommonSettings = settings_of(CommonSettings)
    return settings.data_dir / "certs"


def _default_hosts() -> list[str]:
    """127.0.0.1, localhost and this machine's name, if it is a valid DNS name."""
    hosts = ["127.0.0.1", "localhost"]
    name = socket.gethostname().strip()
    if name and name.lower() not in hosts:
        try:
            certs.check_hosts([name])
        except certs.CertError:
            return hosts  # e.g. an underscore in the name: leave it out, do not fail
        hosts.append(name)
    return hosts


def _settings_block(title: str, pairs: list[tuple[str, str]]) -> None:
    typer.echo(f"\n{title}:")
    for key, value in pairs:
        typer.echo(f"  {key}={value}")


@certs_app.command("init")
def certs_init(
    directory: CertDir = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Host name or IP address the certificates are for (again for more); "
            "default 127.0.0.1, localhost and this machine's name.",
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="Room server to make a certificate for (again for more)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace an existing CA: every certificate it signed stops working."
        ),
    ] = False,
) -> None:
    """Make the cluster CA, the EMS's certificate and one per --server."""
    where = _cert_dir(directory)
    hosts = host or _default_hosts()
    existing = [name for name in (certs.CA_CERT, certs.CA_KEY) if (where / name).exists()]
    if existing and not force:
        fail(
            f"a cluster CA already exists in {where} ({', '.join(existing)}): nothing written. "
            "A new CA would invalidate every certificate the old one signed; to make one "
            "anyway, run again with --force. For one more room server: moot certs issue"
        )
    try:
        made = certs.init_cluster(where, hosts=hosts, servers=server or [], force=force)
    except certs.CertError as exc:
        fail(str(exc))
    top = made.directory.resolve()
    typer.echo(f"made a cluster CA and certificates in {top} for {', '.join(hosts)}:")
    typer.echo(
        f"  {made.ca.cert.name}   the cluster CA: give it to the EMS, room servers, browsers"
    )
    typer.echo(f"  {made.ca.key.name}   the CA's key (mode 0600): keep it safe and private")
    typer.echo(f"  {made.ems.cert.name}, {made.ems.key.name}   the EMS")
    for name, paths in made.servers.items():
        typer.echo(f"  {paths.cert.name}, {paths.key.name}   room server {name}")
    ca = top / made.ca.cert.name
    _settings_block(
        "EMS (moot serve)",
        [
            ("MOOT_TLS_CERT", str(top / made.ems.cert.name)),
            ("MOOT_TLS_KEY", str(top / made.ems.key.name)),
            ("MOOT_TLS_CLIENT_CA", str(ca)),
        ],
    )
    for name, paths in made.servers.items():
        _room_settings(name, top / paths.cert.name, top / paths.key.name, ca)
    if not made.servers:
        typer.echo("\nAdd room servers with `moot certs issue NAME --host HOST`.")


def _room_settings(name: str, cert: Path, key: Path, ca: Path) -> None:
    _settings_block(
        f"room server {name} (moot room --name {name})",
        [
            ("MOOT_ROOM_TLS_CERT", str(cert)),
            ("MOOT_ROOM_TLS_KEY", str(key)),
            ("MOOT_ROOM_CLIENT_CERT", str(cert)),
            ("MOOT_ROOM_CLIENT_KEY", str(key)),
            ("MOOT_TLS_CA", str(ca)),
            ("MOOT_EMS_URL", "https://EMS-HOST:8080"),
        ],
    )


@certs_app.command("issue")
def certs_issue(
    name: Annotated[str, typer.Argument(help="The room server's name (its room_name).")],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Host name or IP address it serves at (again for more)."),
    ] = None,
    client_only: Annotated[
        bool,
        typer.Option(
            "--client-only",
            help="Only prove the name to the EMS (no HTTPS, no --host): clientAuth only.",
        ),
    ] = False,
    directory: CertDir = None,
) -> None:
    """Make (or renew) the certificate of one room server with the cluster CA."""
    where = _cert_dir(directory)
    if client_only and host:
        fail("--client-only makes a certificate without hosts: give no --host with it")
    if not client_only and not host:
        fail(
            f"give the host name or address room server {name} serves at: --host HOST "
            "(again for more), or --client-only"
        )
    try:
        if client_only:
            paths = certs.issue_client_cert(where, name)
        else:
            paths = certs.issue_server_cert(where, name, host or [])
    except certs.CertError as exc:
        fail(str(exc))
    top = where.resolve()
    typer.echo(f"made {top / paths.cert.name} and {top / paths.key.name} for {name}")
    _room_settings(name, top / paths.cert.name, top / paths.key.name, top / certs.CA_CERT)


@certs_app.command("list")
def certs_list(directory: CertDir = None, as_json: JsonFlag = False) -> None:
    """Every certificate in the directory: name, hosts, validity, signed by the CA."""
    where = _cert_dir(directory)
    files = sorted(where.glob("*.pem")) if where.is_dir() else []
    if not files:
        fail(f"no certificates in {where}: make them with `moot certs init`")
    infos = []
    for path in files:
        try:
            infos.append(certs.describe(path))
        except certs.CertError as exc:
            fail(str(exc))
    ca_ids = {info.key_id for info in infos if info.is_ca}
    rows = [
        {
            "file": info.path.name,
            "name": info.common_name or "",
            "kind": "CA" if info.is_ca else _usage(info.server_auth, info.client_auth),
            "hosts": ", ".join(info.sans) or "-",
            "until": info.not_after.date().isoformat(),
            "signed_by_ca": "-" if info.is_ca else _signed(info.authority_key_id, ca_ids),
        }
        for info in infos
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(rows, ["file", "name", "kind", "hosts", "until", "signed_by_ca"])


def _usage(server: bool, client: bool) -> str:
    return {(True, True): "server+client", (True, False): "server", (False, True): "client"}.get(
        (server, client), "none"
    )


def _signed(authority: str | None, ca_ids: set[str | None]) -> str:
    if not ca_ids:
        return "no CA here"
    return "yes" if authority is not None and authority in ca_ids else "NO (another CA)"
