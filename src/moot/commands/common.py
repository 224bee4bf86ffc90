"""What the `moot` commands share: failing with a message, settings, and calling the
EMS's REST API as an administrator."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from moot.infra import certs
from moot.infra.settings import CommonSettings, EmsSettings
from moot.infra.settings import load as load_settings

EmsUrl = Annotated[
    str, typer.Option("--ems-url", envvar="MOOT_EMS_URL", help="Address of the EMS.")
]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_of(cls: type[CommonSettings], **overrides: Any) -> Any:
    try:
        return load_settings(cls, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        fail(f"bad setting ({problems}). See docs/configuration.md.")
    except ValueError as exc:
        fail(f"{exc}. See docs/configuration.md.")


# -- admin commands over the REST API ---------------------------------------


def verify() -> ssl.SSLContext | bool:
    """An https:// EMS is checked against MOOT_TLS_CA (the cluster's ca.pem) when it is set."""
    ca = os.environ.get("MOOT_TLS_CA", "").strip()
    if not ca:
        return True
    try:
        return certs.client_ssl_context(Path(ca))
    except certs.CertError as exc:
        fail(f"MOOT_TLS_CA: {exc}")


def credentials() -> dict[str, str]:
    """Administration needs an administrator: MOOT_TOKEN (a sign-in token of a member of the
    admin group), else the cluster secret (MOOT_CLUSTER_SECRET, or the EMS's secret file
    in the data directory on this machine)."""
    token = os.environ.get("MOOT_TOKEN", "").strip()
    if not token:
        settings = settings_of(CommonSettings)
        token = settings.cluster_secret
        secret_file = settings.data_dir / "cluster-secret"
        if not token and secret_file.is_file():
            token = secret_file.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def call(method: str, ems_url: str, path: str, **kwargs: Any) -> Any:
    # Here, not at the top: httpx imports its own command line (rich, pygments) with it,
    # a fifth of a second that `moot serve` and `moot room` have no use for.
    import httpx

    try:
        response = httpx.request(
            method,
            ems_url.rstrip("/") + path,
            timeout=10,
            verify=verify(),
            headers=credentials(),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the EMS at {ems_url} ({exc}); is `moot serve` running? "
            "Set --ems-url or MOOT_EMS_URL."
        )
    if response.status_code in (401, 403) and not credentials():
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


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


DatabaseUrl = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL; default the EMS's (MOOT_DATABASE_URL).")
]


def database_of(database_url: str | None) -> str:
    settings = settings_of(EmsSettings, database_url=database_url)
    return str(settings.resolved_database_url())
