"""The `moot` command. Server commands run processes; admin commands call the REST API."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from moot.bus import UnknownTransport, is_nats, listener_for
from moot.commands.certs import certs_app
from moot.commands.cluster import capacity, config_app, meetings_app, servers_app
from moot.commands.common import fail, settings_of
from moot.commands.users import keys_app, users_app
from moot.infra import logs, tls
from moot.infra.netcheck import PortInUse, ensure_port_free
from moot.infra.retrying import until_reached
from moot.infra.secrets_file import load_or_create_cluster_secret
from moot.infra.settings import EmsSettings, RoomSettings

app = typer.Typer(
    help="Moot: an enterprise meeting server.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="The EMS's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(servers_app, name="servers")
app.add_typer(meetings_app, name="meetings")
app.add_typer(certs_app, name="certs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")


def _tls_or_fail(make: Callable[[], ssl.SSLContext | None]) -> ssl.SSLContext | None:
    try:
        return make()
    except tls.TlsSettingError as exc:
        fail(f"{exc}. See docs/configuration.md.")


def _wait_for_services(database_url: str, bus_url: str) -> None:
    """Until the database (store/reaching.py) and a NATS bus answer, saying what is tried
    and why; before uvicorn, which would ignore Ctrl-C until its start-up is done."""
    from moot.ems.readiness import public_address
    from moot.ems.store.reaching import wait_for_store

    async def reach() -> None:
        await wait_for_store(database_url)
        if is_nats(bus_url):
            from urllib.parse import urlsplit

            where = urlsplit(bus_url)

            async def attempt() -> None:  # NATS greets a client with its INFO line
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(where.hostname, where.port or 4222), 5
                )
                try:
                    greeting = await asyncio.wait_for(reader.readline(), 5)
                finally:
                    writer.close()
                if not greeting.startswith(b"INFO "):
                    raise OSError("what answers there is not NATS")

            await until_reached(
                attempt,
                what=f"NATS at {public_address(bus_url)}",
                errors=(OSError, TimeoutError),
                log=logging.getLogger("moot.ems"),
            )

    try:
        asyncio.run(reach())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    bus_url: Annotated[str | None, typer.Option(help="`direct` or nats://...")] = None,
) -> None:
    """Run the EMS: Meeting Center, REST API and cluster manager."""
    settings = settings_of(
        EmsSettings, host=host, port=port, database_url=database_url, bus_url=bus_url
    )
    logs.setup(settings.log_level, settings.log_format)
    try:
        listener_for(settings.bus_url)
    except UnknownTransport as exc:
        fail(str(exc))
    if is_nats(settings.bus_url) and not settings.resolved_database_url().startswith("postgresql"):
        fail(
            "several EMS nodes (bus_url nats://...) share one PostgreSQL database: "
            "set --database-url / MOOT_DATABASE_URL to postgresql://..."
        )
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
        from moot.infra.asgi_tls import HttpsStartupLine, TlsWebSocketsProtocol, tls_http_protocol

        # Moot runs the TLS handshake, not uvicorn: see moot/infra/asgi_tls.py for why.
        protocols = {"http": tls_http_protocol(https), "ws": TlsWebSocketsProtocol}
        logging.getLogger("uvicorn.error").addFilter(HttpsStartupLine())
    _wait_for_services(settings.resolved_database_url(), settings.bus_url)
    # The app's imports (a second of CPU) once the settings are known to be good: a refusal
    # above answers at once.
    import uvicorn

    from moot.ems.app import create_app

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
    settings = settings_of(
        RoomSettings,
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
    from moot.room.server import run_room  # as for serve: once the settings are good

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
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="Two EMS nodes (PORT, PORT+1) and three room servers on one PostgreSQL "
            "and one NATS, given below or started by the demo.",
        ),
    ] = False,
    database_url: Annotated[
        str, typer.Option(help="--cluster: PostgreSQL URL (else the demo starts one).")
    ] = "",
    bus_url: Annotated[
        str, typer.Option(help="--cluster: nats://... (else the demo starts nats-server).")
    ] = "",
) -> None:
    """Start an EMS and two room servers on 127.0.0.1; Ctrl-C stops all three."""
    from moot.demo import DemoFailed, run_demo
    from moot.demo_cluster import run_cluster_demo

    try:
        if cluster:
            code = run_cluster_demo(
                host="127.0.0.1",
                port=port,
                data_dir=data_dir,
                log_level="warning",
                say=typer.echo,
                database_url=database_url or os.environ.get("MOOT_DATABASE_URL", ""),
                bus_url=bus_url or os.environ.get("MOOT_BUS_URL", ""),
            )
        else:
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


app.command("capacity")(capacity)  # listed after demo, as before the commands moved


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
) -> None:
    """Create or migrate the schema to the newest version."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from moot.ems.store.migrate import upgrade

    settings = settings_of(EmsSettings, database_url=database_url)
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


def main() -> None:
    app()
