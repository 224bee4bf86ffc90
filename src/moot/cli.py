"""The `moot` command. Server commands run processes; admin commands call the REST API."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from pydantic import ValidationError

from moot import config
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


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
    _logging(settings.log_level)
    if settings.bus_url != "direct":
        fail("only MOOT_BUS_URL=direct is available in this release")
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
    _logging(settings.log_level)
    if not settings.room_name:
        fail("give the room server a name: --name or MOOT_ROOM_NAME")
    if not settings.cluster_secret:
        fail(
            "set MOOT_CLUSTER_SECRET to the EMS's cluster secret "
            "(the EMS keeps a generated one in its data directory, file cluster-secret)"
        )
    try:
        ensure_port_free(settings.room_host, settings.room_port)
    except PortInUse as exc:
        fail(f"{exc}. Choose another with --port or MOOT_ROOM_PORT.")
    raise typer.Exit(asyncio.run(run_room(settings)))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="EMS port; the room servers take the next two.")] = 8080,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its state.")] = Path(
        "moot-data"
    ),
) -> None:
    """Start an EMS and two room servers on 127.0.0.1; Ctrl-C stops all three."""
    from moot.demo import DemoFailed, run_demo

    try:
        code = run_demo(
            host="127.0.0.1", port=port, data_dir=data_dir, log_level="warning", say=typer.echo
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


def _call(method: str, ems_url: str, path: str, **kwargs: Any) -> Any:
    try:
        response = httpx.request(method, ems_url.rstrip("/") + path, timeout=10, **kwargs)
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the EMS at {ems_url} ({exc}); is `moot serve` running? "
            "Set --ems-url or MOOT_EMS_URL."
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


def main() -> None:
    app()
