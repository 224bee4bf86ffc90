"""`moot users` and `moot keys`: local users and the keys that sign sign-in tokens,
straight in the EMS's database."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from moot.commands.common import (
    DatabaseUrl,
    JsonFlag,
    database_of,
    fail,
    settings_of,
    table,
)
from moot.infra.settings import EmsSettings

users_app = typer.Typer(
    help="Local users (the embedded directory), straight in the EMS's database.",
    no_args_is_help=True,
)


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

    settings = settings_of(EmsSettings, database_url=database_url)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else new_password()
    groups = list(group or []) + ([settings.admin_group] if admin else [])
    try:
        user = asyncio.run(
            add_user(
                database_of(database_url),
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
        for u in asyncio.run(list_users(database_of(database_url)))
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(rows, ["username", "display_name", "groups", "created_at"])


@users_app.command("remove")
def users_remove(username: str, database_url: DatabaseUrl = None) -> None:
    from moot.ems.auth.users import UserError, remove_user

    try:
        asyncio.run(remove_user(database_of(database_url), username))
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
            change_groups(database_of(database_url), username, add=add or [], remove=remove or [])
        )
    except UserError as exc:
        fail(str(exc))
    typer.echo(
        f"user {user.username} is in {', '.join(user.groups) or 'no group'} now;"
        " their sign-ins end: they sign in again"
    )


keys_app = typer.Typer(help="The keys that sign sign-in tokens.", no_args_is_help=True)


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

    kid, retired = asyncio.run(rotate_keys(database_of(database_url), retire_old=retire_old))
    typer.echo(f"new signing key {kid}" + (f"; {retired} old key(s) retired" if retire_old else ""))
