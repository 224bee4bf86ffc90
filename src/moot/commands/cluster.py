"""Administration of the running cluster through the EMS's REST API: room servers,
meetings, the capacity plan and the cluster configuration."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from moot.commands.common import (
    EmsUrl,
    JsonFlag,
    call,
    fail,
    table,
)

servers_app = typer.Typer(
    help="Room servers of the cluster (through the EMS's API).", no_args_is_help=True
)
meetings_app = typer.Typer(help="Meetings (through the EMS's API).", no_args_is_help=True)


@servers_app.command("list")
def servers_list(ems_url: EmsUrl = "http://127.0.0.1:8080", as_json: JsonFlag = False) -> None:
    """Every room server with its status and load."""
    rows = call("GET", ems_url, "/api/v1/servers")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(
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
    row = call("POST", ems_url, "/api/v1/servers", json=body)
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
    row = call("POST", ems_url, f"/api/v1/servers/{name}/drain", json=body)
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
    rows = call("GET", ems_url, f"/api/v1/servers/{name}/events", params={"limit": limit})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(rows, ["at", "state", "reason"])


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
    call("DELETE", ems_url, f"/api/v1/servers/{name}", params=params)
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
    page = call("GET", ems_url, "/api/v1/meetings", params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    table(page["items"], ["id", "start", "name", "moderator", "status", "server"])


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
    row = call("POST", ems_url, "/api/v1/meetings", json=body)
    typer.echo(f"meeting {row['id']} ({row['status']}): attend at {row['join_url']}")
    if row.get("moderator_url"):  # made with the cluster secret: nobody signs in as its maker
        typer.echo(
            f"moderator link (shown only now; give it to the moderator): {row['moderator_url']}"
        )


def _when(text: str) -> str:
    return text.replace("T", " ")[:16]


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
    result = call("GET", ems_url, "/api/v1/capacity", params=params)
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
        table(rows, ["hour (utc)", "booked", "available", "use", "servers"])
    else:
        typer.echo("no meeting is booked in this time")
    for warning in result["warnings"]:
        typer.secho(
            f"warning {_when(warning['start'])} {warning['server'] or 'cluster'}: "
            f"{warning['message']}",
            fg=typer.colors.YELLOW,
        )


config_app = typer.Typer(
    help="The cluster configuration (docs/admin-guide.md, Configuration).", no_args_is_help=True
)
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
    answer = call("GET", ems_url, "/api/v1/config")
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
    answer = call("GET", ems_url, "/api/v1/config")
    if server is None:
        path, based_on = "/api/v1/config/cluster", answer["cluster"]["version"]
    else:
        found = [s for s in answer["servers"] if s["name"] == server]
        based_on = found[0]["overrides"]["version"] if found else 0
        path = f"/api/v1/config/servers/{server}"
    body = {"based_on": based_on, "values": values, "comment": comment}
    changed = call("PATCH", ems_url, path, json=body)
    typer.echo(f"configuration version {changed['version']}")
    for row in changed["servers"]:
        typer.echo(f"  {row['name']}: version {row['version']}, {row['state']}")
