"""The `moot` command. Server commands run processes; admin commands call the REST API."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from moot import certs, config, logs, tls
from moot.netcheck import PortInUse, ensure_port_free
from moot.secrets_file import load_or_create_cluster_secret

app = typer.Typer(
    help="Moot: an enterprise meeting server.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="The EMS's database.", no_args_is_help=True)
servers_app = typer.Typer(
    help="Room servers of the cluster (through the EMS's API).", no_args_is_help=True
)
meetings_app = typer.Typer(help="Meetings (through the EMS's API).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(servers_app, name="servers")
app.add_typer(meetings_app, name="meetings")

EmsUrl = Annotated[
    str, typer.Option("--ems-url", envvar="MOOT_EMS_URL", help="Address of the EMS.")
]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _settings(cls: type[config.CommonSettings], **overrides: Any) -> Any:
    try:
        return config.load(cls, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        fail(f"bad setting ({problems}). See docs/configuration.md.")
    except ValueError as exc:
        fail(f"{exc}. See docs/configuration.md.")


def _tls_or_fail(make: Callable[[], ssl.SSLContext | None]) -> ssl.SSLContext | None:
    try:
        return make()
    except tls.TlsSettingError as exc:
        fail(f"{exc}. See docs/configuration.md.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    bus_url: Annotated[str | None, typer.Option(help="`direct` or nats://...")] = None,
) -> None:
    """Run the EMS: Meeting Center, REST API and cluster manager."""
    import uvicorn

    from moot.ems.app import create_app

    settings = _settings(
        config.EmsSettings, host=host, port=port, database_url=database_url, bus_url=bus_url
    )
    logs.setup(settings.log_level, settings.log_format)
    if settings.bus_url != "direct":
        fail("only MOOT_BUS_URL=direct is available in this release")
    https = _tls_or_fail(lambda: tls.ems_server_context(settings))
    if not settings.cluster_secret:
        secret, path = load_or_create_cluster_secret(settings.data_dir)
        settings.cluster_secret = secret
        logging.getLogger("moot").info(
            "no MOOT_CLUSTER_SECRET set: using the one in %s; give room servers the same", path
        )
    try:
        ensure_port_free(settings.host, settings.port)
    except PortInUse as exc:
        fail(f"{exc}. Choose another with --port or MOOT_PORT.")
    protocols: dict[str, Any] = {}
    if https is not None:
        from moot.asgi_tls import HttpsStartupLine, TlsWebSocketsProtocol, tls_http_protocol

        # Moot runs the TLS handshake, not uvicorn: see moot/asgi_tls.py for why.
        protocols = {"http": tls_http_protocol(https), "ws": TlsWebSocketsProtocol}
        logging.getLogger("uvicorn.error").addFilter(HttpsStartupLine())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        ws_ping_interval=10,
        ws_ping_timeout=10,
        # asyncio's own loop, not uvloop: under saturation uvloop starved some connections
        # (attend p99 150-500 ms against 30 ms; docs/benchmarks.md).
        loop="asyncio",
        **protocols,
    )


@app.command()
def room(
    name: Annotated[str | None, typer.Option(help="Unique name in the cluster.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    url: Annotated[str | None, typer.Option(help="Address browsers use.")] = None,
    ems_url: Annotated[str | None, typer.Option(help="Address of the EMS.")] = None,
) -> None:
    """Run a room server that joins the EMS's cluster."""
    from moot.room.server import run_room

    settings = _settings(
        config.RoomSettings,
        room_name=name,
        room_host=host,
        room_port=port,
        room_url=url,
        ems_url=ems_url,
    )
    logs.setup(settings.log_level, settings.log_format)
    if not settings.room_name:
        fail("give the room server a name: --name or MOOT_ROOM_NAME")
    https = _tls_or_fail(lambda: tls.room_server_context(settings))
    ems_tls = _tls_or_fail(lambda: tls.room_client_context(settings))
    if not settings.cluster_secret and settings.room_client_cert is None:
        fail(
            "set MOOT_CLUSTER_SECRET to the EMS's cluster secret "
            "(the EMS keeps a generated one in its data directory, file cluster-secret), "
            "or give the room server a client certificate signed by the cluster CA "
            "(MOOT_ROOM_CLIENT_CERT and MOOT_ROOM_CLIENT_KEY, with an https:// ems_url)"
        )
    try:
        ensure_port_free(settings.room_host, settings.room_port)
    except PortInUse as exc:
        fail(f"{exc}. Choose another with --port or MOOT_ROOM_PORT.")
    raise typer.Exit(asyncio.run(run_room(settings, https=https, ems_tls=ems_tls)))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="EMS port; the room servers take the next two.")] = 8080,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its state.")] = Path(
        "moot-data"
    ),
    use_tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Everything over TLS, with a cluster CA made in DATA_DIR/certs on first use.",
        ),
    ] = False,
) -> None:
    """Start an EMS and two room servers on 127.0.0.1; Ctrl-C stops all three."""
    from moot.demo import DemoFailed, run_demo

    try:
        code = run_demo(
            host="127.0.0.1",
            port=port,
            data_dir=data_dir,
            log_level="warning",
            say=typer.echo,
            use_tls=use_tls,
        )
    except PortInUse as exc:
        fail(f"{exc}. Stop what uses it or choose another port with --port.")
    except DemoFailed as exc:
        fail(str(exc))
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
) -> None:
    """Create or migrate the schema to the newest version."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from moot.ems.store.migrate import upgrade

    settings = _settings(config.EmsSettings, database_url=database_url)
    url = settings.resolved_database_url()
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        fail(f"{url!r} is not a database URL, e.g. postgresql://user@host:5432/moot")
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        fail(f"could not migrate {shown}: {str(exc).splitlines()[0]}")
    typer.echo(f"database at {shown} is up to date")


# -- admin commands over the REST API ---------------------------------------


def _verify() -> ssl.SSLContext | bool:
    """An https:// EMS is checked against MOOT_TLS_CA (the cluster's ca.pem) when it is set."""
    ca = os.environ.get("MOOT_TLS_CA", "").strip()
    if not ca:
        return True
    try:
        return certs.client_ssl_context(Path(ca))
    except certs.CertError as exc:
        fail(f"MOOT_TLS_CA: {exc}")


def _credentials() -> dict[str, str]:
    """Administration needs an administrator: MOOT_TOKEN (a sign-in token of a member of the
    admin group), else the cluster secret (MOOT_CLUSTER_SECRET, or the EMS's secret file
    in the data directory on this machine)."""
    token = os.environ.get("MOOT_TOKEN", "").strip()
    if not token:
        settings = _settings(config.CommonSettings)
        token = settings.cluster_secret
        secret_file = settings.data_dir / "cluster-secret"
        if not token and secret_file.is_file():
            token = secret_file.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _call(method: str, ems_url: str, path: str, **kwargs: Any) -> Any:
    # Here, not at the top: httpx imports its own command line (rich, pygments) with it,
    # a fifth of a second that `moot serve` and `moot room` have no use for.
    import httpx

    try:
        response = httpx.request(
            method,
            ems_url.rstrip("/") + path,
            timeout=10,
            verify=_verify(),
            headers=_credentials(),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the EMS at {ems_url} ({exc}); is `moot serve` running? "
            "Set --ems-url or MOOT_EMS_URL."
        )
    if response.status_code in (401, 403) and not _credentials():
        fail(
            f"{response.status_code}: the EMS wants an administrator. Set MOOT_TOKEN to the "
            "sign-in token of a member of the admin group, or MOOT_CLUSTER_SECRET to the "
            "cluster secret."
        )
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        if isinstance(detail, list):
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
            )
        fail(f"{response.status_code}: {detail}")
    return response.json() if response.content else None


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@servers_app.command("list")
def servers_list(ems_url: EmsUrl = "http://127.0.0.1:8080", as_json: JsonFlag = False) -> None:
    """Every room server with its status and load."""
    rows = _call("GET", ems_url, "/api/v1/servers")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(
        rows,
        [
            "name",
            "status",
            "url",
            "active_meetings",
            "participants",
            "max_active_meetings",
            "cpu_percent",
        ],
    )


@servers_app.command("add")
def servers_add(
    name: str,
    url: Annotated[str, typer.Option(help="Address browsers use to reach it.")],
    max_active_meetings: int = 100,
    max_users_per_meeting: int = 500,
    instant_meetings: Annotated[int | None, typer.Option(help="Omit for unlimited.")] = None,
    location: str = "",
    ems_url: EmsUrl = "http://127.0.0.1:8080",
) -> None:
    """Add a room server with its capacity."""
    body = {
        "name": name,
        "url": url,
        "max_active_meetings": max_active_meetings,
        "max_users_per_meeting": max_users_per_meeting,
        "instant_meetings": instant_meetings,
        "location": location,
    }
    row = _call("POST", ems_url, "/api/v1/servers", json=body)
    typer.echo(f"added room server {row['name']} ({row['url']})")


_DURATION = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `4h`, `30m`, `90s`, `1d` or `1h30m`."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: give e.g. 4h, 30m, 90s, 1d or 1h30m")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def _in_words(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@servers_app.command("drain")
def servers_drain(
    name: str,
    deadline: Annotated[
        str,
        typer.Option(
            help="When the meetings still running move to other servers: 4h, 30m, 90s, 1d "
            "(at most 7d). Again on a draining server: replaces its deadline."
        ),
    ] = "",
    evacuate: Annotated[
        bool, typer.Option("--evacuate", help="Move its meetings to other servers now.")
    ] = False,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
) -> None:
    """Send no new meetings to a server; its meetings run to their end or the deadline.

    At the deadline (default 4h) or at once with --evacuate, the meetings still
    running there move to other servers, as in a failover: none ends. A drained
    server can be removed.
    """
    body: dict[str, Any] = {}
    if evacuate and deadline:
        fail("--evacuate moves the meetings now: give no --deadline with it")
    if evacuate:
        body["evacuate"] = True
    elif deadline:
        try:
            body["deadline_seconds"] = parse_duration(deadline)
        except ValueError as exc:
            fail(str(exc))
    row = _call("POST", ems_url, f"/api/v1/servers/{name}/drain", json=body)
    running = row["active_meetings"]
    message = f"room server {row['name']} is {row['status']}; {running} meeting(s) still running"
    if row.get("drain_deadline"):
        at = datetime.fromisoformat(row["drain_deadline"].replace("Z", "+00:00"))
        left = (at - datetime.now(UTC)).total_seconds()
        message += f"; deadline {at.isoformat(timespec='seconds')}"
        if evacuate and running:
            message += " (now): those move as soon as another server can take them"
        elif evacuate:
            message += " (now): its meetings moved to other servers"
        elif left > 0:
            message += f" (in {_in_words(left)}): meetings still running then move elsewhere"
        else:
            message += " (passed): its meetings move to other servers"
    typer.echo(message)


@servers_app.command("events")
def servers_events(
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
    as_json: JsonFlag = False,
) -> None:
    """A room server's changes of state (online, suspect, failed, offline), newest first."""
    rows = _call("GET", ems_url, f"/api/v1/servers/{name}/events", params={"limit": limit})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["at", "state", "reason"])


@servers_app.command("remove")
def servers_remove(
    name: str,
    force: Annotated[
        bool,
        typer.Option("--force", help="Move its meetings to other servers first, then remove it."),
    ] = False,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
) -> None:
    """Remove a server that hosts no meeting (drain it first, or --force)."""
    params = {"force": "true"} if force else {}
    _call("DELETE", ems_url, f"/api/v1/servers/{name}", params=params)
    typer.echo(f"removed room server {name}" + (" (its meetings moved first)" if force else ""))


@meetings_app.command("list")
def meetings_list(
    q: Annotated[str | None, typer.Option(help="Name or moderator contains this.")] = None,
    status: Annotated[
        str | None, typer.Option(help="scheduled, in_progress, ended or recorded.")
    ] = None,
    limit: int = 50,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
    as_json: JsonFlag = False,
) -> None:
    """Find meetings."""
    params: dict[str, Any] = {"limit": limit}
    if q:
        params["q"] = q
    if status:
        params["status"] = status
    page = _call("GET", ems_url, "/api/v1/meetings", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    _table(page["items"], ["id", "start", "name", "moderator", "status", "server"])


@meetings_app.command("create")
def meetings_create(
    name: str,
    moderator: str = "Anonymous",
    expected_participants: int = 4,
    start: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 with offset, e.g. 2026-12-01T09:00:00+01:00; omit to start now."
        ),
    ] = None,
    duration_minutes: int = 60,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
) -> None:
    """Schedule a meeting, or start one now."""
    body: dict[str, Any] = {
        "name": name,
        "moderator": moderator,
        "expected_participants": expected_participants,
        "duration_minutes": duration_minutes,
    }
    if start:
        body["start"] = start
    row = _call("POST", ems_url, "/api/v1/meetings", json=body)
    typer.echo(f"meeting {row['id']} ({row['status']}): attend at {row['join_url']}")
    if row.get("moderator_url"):  # made with the cluster secret: nobody signs in as its maker
        typer.echo(
            f"moderator link (shown only now; give it to the moderator): {row['moderator_url']}"
        )


def _when(text: str) -> str:
    return text.replace("T", " ")[:16]


@app.command("capacity")
def capacity(
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="ISO 8601 with offset, e.g. 2026-12-07T09:00:00+01:00; default now."
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="ISO 8601 with offset; default --hours after --from.")
    ] = None,
    hours: Annotated[int, typer.Option(min=1, max=744, help="Hours to show without --to.")] = 24,
    every_hour: Annotated[
        bool, typer.Option("--every-hour", help="Show hours without bookings too.")
    ] = False,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
    as_json: JsonFlag = False,
) -> None:
    """Booked against available capacity per hour, and where bookings exceed it.

    Scheduled meetings book their expected participants on a server for their hours;
    this shows those bookings beside what the servers can carry, so a peak that would
    overflow the cluster is seen before it comes.
    """
    params: dict[str, str] = {}
    for option, value in (("--from", from_), ("--to", to)):
        if value is None:
            continue
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            fail(f"{option} {value!r} is not an ISO 8601 time: give e.g. 2026-12-07T09:00:00+01:00")
        if parsed.tzinfo is None:
            fail(f"{option} needs a time zone offset, e.g. 2026-12-07T09:00:00+01:00 or ...Z")
        params[option.removeprefix("--")] = parsed.isoformat()
    if to is None:  # whole hours from the hour --from falls in, as the plan counts them
        start = datetime.fromisoformat(params["from"]) if "from" in params else datetime.now(UTC)
        start = start.replace(minute=0, second=0, microsecond=0)
        params["from"] = start.isoformat()
        params["to"] = (start + timedelta(hours=hours)).isoformat()
    result = _call("GET", ems_url, "/api/v1/capacity", params=params)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    taking = [s for s in result["servers"] if s["takes_meetings"]]
    typer.echo(
        f"capacity from {_when(result['from'])} to {_when(result['to'])} UTC: "
        f"{len(taking)} of {len(result['servers'])} room server(s) take meetings, "
        f"{sum(s['participants'] for s in taking):,} participants, "
        f"{sum(s['meetings'] for s in taking):,} meetings"
    )
    rows = []
    for hour in result["hours"]:
        if not (every_hour or hour["booked_meetings"]):
            continue
        available = hour["available_participants"]
        rows.append(
            {
                "hour (utc)": _when(hour["start"]),
                "booked": f"{hour['booked_participants']:,} in {hour['booked_meetings']:,}",
                "available": f"{available:,}",
                "use": f"{hour['booked_participants'] / available:.0%}" if available else "-",
                "servers": ", ".join(
                    f"{r['name']} {r['booked_participants']}/{r['participants']}"
                    + (" OVER" if r["over"] else "")
                    for r in hour["servers"]
                ),
            }
        )
    if rows:
        _table(rows, ["hour (utc)", "booked", "available", "use", "servers"])
    else:
        typer.echo("no meeting is booked in this time")
    for warning in result["warnings"]:
        typer.secho(
            f"warning {_when(warning['start'])} {warning['server'] or 'cluster'}: "
            f"{warning['message']}",
            fg=typer.colors.YELLOW,
        )


# -- certificates --------------------------------------------------------------

certs_app = typer.Typer(
    help="The cluster's CA and TLS certificates (docs/admin-guide.md, TLS).",
    no_args_is_help=True,
)
app.add_typer(certs_app, name="certs")

CertDir = Annotated[
    Path | None,
    typer.Option("--dir", help="Certificate directory; default DATA_DIR/certs."),
]


def _cert_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    settings: config.CommonSettings = _settings(config.CommonSettings)
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
    _table(rows, ["file", "name", "kind", "hosts", "until", "signed_by_ca"])


def _usage(server: bool, client: bool) -> str:
    return {(True, True): "server+client", (True, False): "server", (False, True): "client"}.get(
        (server, client), "none"
    )


def _signed(authority: str | None, ca_ids: set[str | None]) -> str:
    if not ca_ids:
        return "no CA here"
    return "yes" if authority is not None and authority in ca_ids else "NO (another CA)"


users_app = typer.Typer(
    help="Local users (the embedded directory), straight in the EMS's database.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")
DatabaseUrl = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL; default the EMS's (MOOT_DATABASE_URL).")
]


def _database(database_url: str | None) -> str:
    settings = _settings(config.EmsSettings, database_url=database_url)
    return str(settings.resolved_database_url())


@users_app.command("add")
def users_add(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Member of the admin group.")] = False,
    group: Annotated[
        list[str] | None, typer.Option(help="A group; give it again for more.")
    ] = None,
    display_name: Annotated[str, typer.Option(help="The name others see.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a local user; without --password-stdin a password is made and shown once."""
    from moot.ems.auth.users import UserError, add_user, new_password

    settings = _settings(config.EmsSettings, database_url=database_url)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else new_password()
    groups = list(group or []) + ([settings.admin_group] if admin else [])
    try:
        user = asyncio.run(
            add_user(
                _database(database_url),
                username,
                password,
                display_name=display_name,
                groups=groups,
            )
        )
    except UserError as exc:
        fail(str(exc))
    typer.echo(
        f"user {user.username} added"
        + (f" (groups: {', '.join(user.groups)})" if user.groups else "")
    )
    if not password_stdin:
        typer.echo(f"password: {password}  (shown only now)")


@users_app.command("list")
def users_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    from moot.ems.auth.users import list_users

    rows = [
        {
            "username": u.username,
            "display_name": u.display_name,
            "groups": ",".join(u.groups),
            "created_at": u.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for u in asyncio.run(list_users(_database(database_url)))
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["username", "display_name", "groups", "created_at"])


@users_app.command("remove")
def users_remove(username: str, database_url: DatabaseUrl = None) -> None:
    from moot.ems.auth.users import UserError, remove_user

    try:
        asyncio.run(remove_user(_database(database_url), username))
    except UserError as exc:
        fail(str(exc))
    typer.echo(f"user {username.strip()} removed; their sign-ins end with them")


@users_app.command("groups")
def users_groups(
    username: str,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="A group to join; give it again for more.")
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="A group to leave; give it again for more."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a local user's groups; their sign-ins end (they sign in again, with these)."""
    from moot.ems.auth.users import UserError, change_groups

    try:
        user = asyncio.run(
            change_groups(_database(database_url), username, add=add or [], remove=remove or [])
        )
    except UserError as exc:
        fail(str(exc))
    typer.echo(
        f"user {user.username} is in {', '.join(user.groups) or 'no group'} now;"
        " their sign-ins end: they sign in again"
    )


keys_app = typer.Typer(help="The keys that sign sign-in tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(
    retire_old: Annotated[
        bool,
        typer.Option(
            "--retire-old", help="Also retire the old keys: everyone signed in must sign in again."
        ),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A new key signs sign-in tokens from now on (straight in the EMS's database)."""
    from moot.ems.auth.users import rotate_keys

    kid, retired = asyncio.run(rotate_keys(_database(database_url), retire_old=retire_old))
    typer.echo(f"new signing key {kid}" + (f"; {retired} old key(s) retired" if retire_old else ""))


config_app = typer.Typer(
    help="The cluster configuration (docs/admin-guide.md, Configuration).", no_args_is_help=True
)
app.add_typer(config_app, name="config")
ServerOption = Annotated[
    str | None, typer.Option("--server", help="One room server's overrides, not the cluster's.")
]


@config_app.command("show")
def config_show(
    server: ServerOption = None,
    ems_url: EmsUrl = "http://127.0.0.1:8080",
    as_json: JsonFlag = False,
) -> None:
    """The cluster's values, or one server's effective values with its overrides marked."""
    answer = _call("GET", ems_url, "/api/v1/config")
    if server is None:
        values, version, overridden = answer["cluster"]["values"], answer["cluster"]["version"], []
        typer.echo(f"cluster configuration, version {version}")
    else:
        found = [s for s in answer["servers"] if s["name"] == server]
        if not found:
            fail(f"404: room server {server} not found")
        values, overridden = found[0]["effective"], found[0]["overridden"]
        typer.echo(
            f"room server {server}: configuration version {found[0]['version']}, "
            f"{found[0]['state']}; overrides version {found[0]['overrides']['version']}"
        )
    if as_json:
        typer.echo(json.dumps(values, indent=2))
        return
    for key in answer["keys"]:
        if key["name"] in values:
            mark = "  (overrides the cluster value)" if key["name"] in overridden else ""
            typer.echo(f"{key['section']}.{key['name']} = {json.dumps(values[key['name']])}{mark}")


@config_app.command("set")
def config_set(
    assignments: Annotated[
        list[str],
        typer.Argument(
            help='KEY=VALUE; VALUE is JSON (500, true, ["chat"], null) or else text. '
            "null: the default (cluster) or the cluster's value (--server)."
        ),
    ],
    server: ServerOption = None,
    comment: Annotated[str, typer.Option(help="Why, for the history.")] = "",
    ems_url: EmsUrl = "http://127.0.0.1:8080",
) -> None:
    """Change keys of the cluster's configuration, or override them on one server."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            fail(f"{assignment!r}: write KEY=VALUE")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    answer = _call("GET", ems_url, "/api/v1/config")
    if server is None:
        path, based_on = "/api/v1/config/cluster", answer["cluster"]["version"]
    else:
        found = [s for s in answer["servers"] if s["name"] == server]
        based_on = found[0]["overrides"]["version"] if found else 0
        path = f"/api/v1/config/servers/{server}"
    body = {"based_on": based_on, "values": values, "comment": comment}
    changed = _call("PATCH", ems_url, path, json=body)
    typer.echo(f"configuration version {changed['version']}")
    for row in changed["servers"]:
        typer.echo(f"  {row['name']}: version {row['version']}, {row['state']}")


def main() -> None:
    app()
